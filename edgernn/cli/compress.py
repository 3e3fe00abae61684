"""`edgernn compress`: add int8 / fp16 / pruned variants to a bundle and show what each cost."""

from __future__ import annotations

import click

from edgernn.cli import console

COLUMNS = ["variant", "size", "x fp32", "nonzero", "{metric}", "delta", "time s", "note"]


@click.command("compress", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("bundle", type=click.Path())
@click.option("--int8", is_flag=True,
              help="Dynamic int8: int8 weights, per-output-channel scales (adds 'int8'); with "
                   "pruning, also an int8 twin of each pruned variant.")
@click.option("--per-tensor", is_flag=True,
              help="One int8 scale per matrix instead of per channel ('int8-per-tensor').")
@click.option("--fp16", is_flag=True, help="All weights in float16 (adds 'fp16').")
@click.option("--sparsity", type=float, metavar="S",
              help="Unstructured magnitude pruning of each gate matrix to S in [0, 1) "
                   "(0.8 adds 'sparse80').")
@click.option("--schedule", type=click.Choice(["gradual", "oneshot"]),
              help="With --sparsity: cubic ramp during fine-tuning (default) or all at once.")
@click.option("--finetune-epochs", type=click.IntRange(min=0), metavar="N",
              help="Fine-tuning epochs after pruning, masks held at zero (default 2).")
@click.option("--structured", type=float, metavar="F",
              help="Remove a fraction F of hidden units -> a smaller dense model "
                   "(0.5 adds 'structured50').")
@click.option("--pattern", metavar="N:M",
              help="Keep N of every M consecutive weights, e.g. 2:4 (adds 'sparse2of4').")
@click.option("--max-drop", type=float, metavar="X",
              help="Budget for int8: the largest drop of the held-out metric, in its own units "
                   "(0.005 = half a point of accuracy). The most sensitive matrices fall back "
                   "to fp32 until val and test both meet it; if no mix does, the best is kept, "
                   "labelled, and the command exits 1.")
@click.option("--data", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
              help="The .npz or CSV file the bundle was trained on (built-in datasets are "
                   "reloaded by themselves); its held-out split scores the variants.")
@click.option("--seed", type=int, default=0, show_default=True, help="Fine-tuning seed.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
def command(bundle, int8, per_tensor, fp16, sparsity, schedule, finetune_epochs, structured,
            pattern, max_drop, data, seed, as_json) -> None:
    """Add compressed variants to BUNDLE, each scored on the held-out split of its dataset.

    \b
    Examples:
      edgernn compress runs/digits --int8 --fp16
      edgernn compress runs/digits --int8 --sparsity 0.8 --finetune-epochs 3
      edgernn compress runs/digits --structured 0.5 --pattern 2:4
      edgernn compress runs/digits --int8 --max-drop 0.005
    """
    from edgernn.compress import compress_bundle
    from edgernn.runtime.errors import ConfigError

    pruning = any(v is not None for v in (sparsity, structured, pattern))
    if schedule is not None and sparsity is None:
        raise ConfigError("--schedule applies to --sparsity; add --sparsity S or drop --schedule")
    if finetune_epochs is not None and not pruning:
        raise ConfigError("--finetune-epochs applies to --sparsity, --structured or --pattern")
    reports = compress_bundle(
        bundle, int8=int8, per_tensor=per_tensor, fp16=fp16, sparsity=sparsity,
        schedule=schedule or "gradual", structured=structured, pattern=pattern,
        finetune_epochs=2 if finetune_epochs is None else finetune_epochs, max_drop=max_drop,
        progress=not as_json, seed=seed, data=data,
    )
    if as_json:
        console.print_json({"bundle": bundle, "variants": reports})
    else:
        metric = reports[0]["metric"]
        rows = [_row(r) for r in reports]
        columns = [c.format(metric=metric) for c in COLUMNS]
        if not any(row[-1] for row in rows):
            columns, rows = columns[:-1], [row[:-1] for row in rows]
        console.print_table(
            f"variants of {bundle}: size, nonzero parameters, test {metric}, delta vs fp32",
            columns, rows,
        )
    missed = [r for r in reports if r.get("budget_met") is False]
    if missed:
        r = missed[0]
        raise click.ClickException(
            f"no int8 mix meets --max-drop {r['max_drop']}: the best, {r['variant']!r} with "
            f"{', '.join(r['fallback']) or 'nothing'} in fp32, drops {r['measured_drop']:.4g}; "
            "it is kept in the bundle, labelled budget_met=false"
        )


def _row(r: dict) -> list:
    note = ""
    if r.get("fallback"):
        note = "fp32: " + ", ".join(r["fallback"])
    if r.get("budget_met") is False:
        note = (note + "; " if note else "") + f"over budget {r['max_drop']}"
    return [r["variant"], console.human_bytes(r["size_bytes"]),
            f"{r['size_ratio']:.3f}", r["nonzero_params"], f"{r['test']:.4f}",
            f"{r['delta']:+.3g}", f"{r['time_s']:.1f}", note]


COMMANDS = [command]
