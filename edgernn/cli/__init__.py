"""The edgernn command line: one click group; each command group lives in its own module."""

from __future__ import annotations

import os
import sys

import click

from edgernn.runtime import __version__
from edgernn.runtime.errors import EdgeRNNError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Group(click.Group):
    """Turns edgernn's own errors into clean messages and exit code 1 (tracebacks with --debug)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EdgeRNNError as exc:
            if os.environ.get("EDGERNN_DEBUG"):
                raise
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
        except KeyboardInterrupt:
            click.echo("interrupted; nothing half-written was kept", err=True)
            sys.exit(130)


@click.group(cls=Group, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="edgernn")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def main(debug: bool) -> None:
    """Train, compress, export and stream recurrent models (LSTM / GRU / RNN) on edge devices.

    \b
    A typical path:
      edgernn train --dataset sine --out runs/sine
      edgernn compress runs/sine --int8
      edgernn export runs/sine --format onnx --variant fp32,int8
      edgernn bench runs/sine --backend numpy,onnxruntime
    """
    if debug:
        os.environ["EDGERNN_DEBUG"] = "1"


def _register() -> None:
    from edgernn.cli import bench, compress, demo, export, info, inspect, train

    for module in (train, inspect, compress, export, bench, demo, info):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
