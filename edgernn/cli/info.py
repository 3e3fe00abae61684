"""`edgernn info`: versions, the machine, and which runtime backends are usable here."""

from __future__ import annotations

import click

from edgernn.cli import console


@click.command("info", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of tables.")
def command(as_json: bool) -> None:
    """Show library versions, the device and each backend's availability (with the reason)."""
    from edgernn.runtime.backends import backend_status
    from edgernn.runtime.device import device_info

    device = device_info()
    backends = backend_status()
    if as_json:
        console.print_json({"device": device, "backends": backends})
        return
    console.print_table("device", ["field", "value"], [(k, v) for k, v in device.items()])
    console.print_table(
        "runtime backends", ["backend", "status"],
        [(name, "available" if s["available"] else f"unavailable: {s['reason']}")
         for name, s in backends.items()],
    )


COMMANDS = [command]
