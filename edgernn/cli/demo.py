"""`edgernn demo` (being written)."""

import click


@click.command("demo", context_settings={"help_option_names": ["-h", "--help"]})
def command() -> None:
    """Not written yet."""
    raise click.ClickException("edgernn demo is not available yet")


COMMANDS = [command]
