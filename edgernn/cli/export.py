"""`edgernn export` (being written)."""

import click


@click.command("export", context_settings={"help_option_names": ["-h", "--help"]})
def command() -> None:
    """Not written yet."""
    raise click.ClickException("edgernn export is not available yet")


COMMANDS = [command]
