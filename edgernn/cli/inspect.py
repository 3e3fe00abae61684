"""`edgernn inspect` (being written)."""

import click


@click.command("inspect", context_settings={"help_option_names": ["-h", "--help"]})
def command() -> None:
    """Not written yet."""
    raise click.ClickException("edgernn inspect is not available yet")


COMMANDS = [command]
