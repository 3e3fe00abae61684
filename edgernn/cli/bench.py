"""`edgernn bench` (being written)."""

import click


@click.command("bench", context_settings={"help_option_names": ["-h", "--help"]})
def command() -> None:
    """Not written yet."""
    raise click.ClickException("edgernn bench is not available yet")


COMMANDS = [command]
