"""`edgernn train` (being written)."""

import click


@click.command("train", context_settings={"help_option_names": ["-h", "--help"]})
def command() -> None:
    """Not written yet."""
    raise click.ClickException("edgernn train is not available yet")


COMMANDS = [command]
