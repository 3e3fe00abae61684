"""`edgernn train`: train a recurrent model on a built-in set, an .npz or a CSV; write a bundle."""

from __future__ import annotations

import click

from edgernn.cli import console
from edgernn.runtime.config import CELLS, NONLINEARITIES

# The defaults of TrainConfig (kept equal by a test; defined here so `--help` needs no torch).
DEFAULTS = {"epochs": 40, "batch_size": 32, "lr": 5e-3, "optimizer": "adam", "weight_decay": 0.0,
            "clip": 1.0, "schedule": "plateau", "patience": 8, "seed": 0, "tbptt": 0}


def _csv_list(ctx, param, value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@click.command("train", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--dataset", metavar="NAME", help="Built-in dataset: sine, co2, chars or digits.")
@click.option("--data", type=click.Path(dir_okay=False),
              help="Your data as .npz (X, y[, lengths]).")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False), help="A CSV time series.")
@click.option("--target", help="CSV: the column to forecast.")
@click.option("--features", callback=_csv_list, help="CSV: input columns, comma-separated "
              "[default: the target column].")
@click.option("--window", type=click.IntRange(1), default=24, show_default=True,
              help="CSV: steps the model sees.")
@click.option("--horizon", type=click.IntRange(1), default=1, show_default=True,
              help="CSV: how many rows ahead to forecast.")
@click.option("--difference", is_flag=True, help="CSV: learn row-to-row changes (for trending "
              "series such as prices or CO2).")
@click.option("--cell", type=click.Choice(CELLS), default="lstm", show_default=True)
@click.option("--layers", type=click.IntRange(1), default=2, show_default=True)
@click.option("--hidden", type=click.IntRange(1), default=64, show_default=True)
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.0,
              show_default=True)
@click.option("--bidirectional", is_flag=True, help="Read both ways (not streamable).")
@click.option("--nonlinearity", type=click.Choice(NONLINEARITIES), default="tanh",
              show_default=True, help="rnn cell only.")
@click.option("--embedding-dim", type=click.IntRange(1), default=32, show_default=True,
              help="Token datasets (chars): embedding width.")
@click.option("--epochs", type=click.IntRange(1), default=DEFAULTS["epochs"], show_default=True)
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=DEFAULTS["lr"],
              show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=DEFAULTS["batch_size"],
              show_default=True)
@click.option("--optimizer", type=click.Choice(["adam", "adamw"]), default=DEFAULTS["optimizer"],
              show_default=True)
@click.option("--weight-decay", type=click.FloatRange(0), default=DEFAULTS["weight_decay"],
              show_default=True)
@click.option("--schedule", type=click.Choice(["plateau", "cosine", "none"]),
              default=DEFAULTS["schedule"], show_default=True, help="Learning-rate schedule.")
@click.option("--patience", type=click.IntRange(0), default=DEFAULTS["patience"],
              show_default=True, help="Stop after this many epochs without a better val metric "
              "(0: never).")
@click.option("--clip", type=click.FloatRange(0), default=DEFAULTS["clip"], show_default=True,
              help="Gradient-norm clipping (0: off).")
@click.option("--seed", type=int, default=DEFAULTS["seed"], show_default=True)
@click.option("--tbptt", type=click.IntRange(0), default=DEFAULTS["tbptt"], show_default=True,
              help="Truncated BPTT window in steps, state carried across windows (0: off).")
@click.option("--threads", type=click.IntRange(1), help="CPU threads for torch [default: torch's "
              "choice]; 1 is often fastest for small models or on a busy machine.")
@click.option("--resume", is_flag=True, help="Continue from the checkpoint in OUT.ckpt/.")
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Bundle directory.")
def command(dataset, data, csv_file, target, features, window, horizon, difference, cell, layers,
            hidden, dropout, bidirectional, nonlinearity, embedding_dim, threads, resume, force,
            as_json, out, **train) -> None:
    """Train a recurrent model and write it as a verified bundle at OUT.

    Exactly one of --dataset, --data, --csv. Training keeps the best epoch by the validation
    metric, stops early, and checkpoints every epoch to OUT.ckpt/ (removed once the bundle is
    written): after Ctrl-C, run the same command with --resume.

    \b
      edgernn train --dataset digits --out runs/digits
      edgernn train --csv series.csv --target load --window 48 --out runs/load
      edgernn train --csv edgernn/data/files/co2_weekly.csv --target co2 --window 52 \\
          --difference --out runs/co2
    """
    sources = [s for s in (dataset, data, csv_file) if s]
    if len(sources) != 1:
        raise click.UsageError("give exactly one of --dataset NAME, --data FILE.npz, --csv FILE")
    if not csv_file and (target or features or difference):
        raise click.UsageError("--target, --features and --difference apply to --csv only")
    if csv_file and not target:
        raise click.UsageError("--csv needs --target COLUMN")

    from edgernn.models import torch_threads
    from edgernn.train import TrainConfig, checkpoint_path, train_bundle

    config = TrainConfig(**train, resume=resume)
    loaded = _load(dataset, data, csv_file, target, features, window, horizon, difference,
                   config.seed)
    try:
        with torch_threads(threads):
            summary = train_bundle(
                loaded, out, config, cell=cell, layers=layers, hidden=hidden, dropout=dropout,
                bidirectional=bidirectional, nonlinearity=nonlinearity,
                embedding_dim=embedding_dim, force=force, progress=not as_json,
            )
    except KeyboardInterrupt:
        console.info(f"the last finished epoch is kept in {checkpoint_path(out)}; "
                     "continue with the same command and --resume")
        raise
    if as_json:
        console.print_json(summary)
        return
    console.print_table("edgernn train", ["field", "value"], _rows(summary))


def _load(dataset, data, csv_file, target, features, window, horizon, difference, seed):
    from edgernn.data import load_csv, load_dataset, load_npz

    if dataset:
        return load_dataset(dataset, seed=seed)
    if data:
        return load_npz(data, seed=seed)
    return load_csv(csv_file, target, features, window=window, horizon=horizon,
                    difference=difference)


def _rows(summary: dict) -> list[tuple]:
    metric = summary["metric"]
    test = ", ".join(f"{k} {console.fmt(v)}" for k, v in summary["test"].items())
    rows = [
        ("dataset", summary["dataset"]), ("cell", summary["cell"]), ("params", summary["params"]),
        ("epochs run", f"{summary['epochs_run']} (best {summary['best_epoch']}"
                       f"{', stopped early' if summary['stopped_early'] else ''})"),
        (f"best val {metric}", summary["best_val"]), ("test", test),
    ]
    baseline = summary.get("baseline")
    if baseline and "test_rmse" in baseline:
        rows.append(("baseline test rmse",
                     f"{console.fmt(baseline['test_rmse'])} ({baseline['name']})"))
    rows += [("bundle", summary["bundle"]), ("wall time", f"{summary['wall_time_s']:.1f} s")]
    return rows


COMMANDS = [command]
