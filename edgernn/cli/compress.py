"""`edgernn compress` (being written)."""

import click


@click.command("compress", context_settings={"help_option_names": ["-h", "--help"]})
def command() -> None:
    """Not written yet."""
    raise click.ClickException("edgernn compress is not available yet")


COMMANDS = [command]
