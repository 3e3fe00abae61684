"""`edgernn bench`: per-step latency of a bundle's variants on runtime backends, with baselines."""

from __future__ import annotations

from pathlib import Path

import click

from edgernn.cli import console

LATENCY_COLUMNS = ("row", "variant", "streams", "p50", "p90", "p99", "max", "µs/step",
                   "× torch\nfull-seq")
OTHER_COLUMNS = ("row", "variant", "streams", "stream-\nsteps/s", "RTF", "contract\nerror",
                 "load s", "engine")


def _csv(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def _streams(ctx, param, value: str) -> list[int]:
    try:
        counts = [int(v) for v in _csv(value)]
    except ValueError:
        counts = []
    if not counts or any(n < 1 for n in counts):
        raise click.BadParameter(f"{value!r}: give positive integers separated by commas, "
                                 "e.g. 1,64,256")
    return counts


def _options(ctx, param, values: tuple[str, ...]) -> dict[str, dict]:
    """``("torch.device=cuda", ...)`` -> ``{"torch": {"device": "cuda"}}``; numbers and
    true/false are parsed, anything else stays a string."""
    import json

    options: dict[str, dict] = {}
    for item in values:
        key, sep, value = item.partition("=")
        backend, dot, name = key.partition(".")
        if not (sep and dot and backend and name):
            raise click.BadParameter(f"{item!r}: write BACKEND.KEY=VALUE, e.g. torch.device=cuda")
        try:
            value = json.loads(value)
        except ValueError:
            pass
        options.setdefault(backend, {})[name] = value
    return options


@click.command("bench", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("bundle", type=click.Path(exists=True, path_type=Path))
@click.option("--backend", "backends", default=None, metavar="LIST",
              help="Runtime backends, comma-separated (numpy, onnxruntime, tensorrt, torch, auto). "
                   "Default: every backend available here.")
@click.option("--variant", "variants", default=None, metavar="LIST",
              help="Bundle variants, comma-separated (fp32, int8, ...). Default: all of them.")
@click.option("--streams", default="1", callback=_streams, metavar="LIST", show_default=True,
              help="Stream counts, comma-separated. Above 1, one call steps all streams of a "
                   "StreamPool.")
@click.option("--steps", default=10_000, type=click.IntRange(min=1), show_default=True,
              help="Timed step calls per row.")
@click.option("--warmup", default=500, type=click.IntRange(min=0), show_default=True,
              help="Untimed step calls before timing.")
@click.option("--threads", default=1, type=click.IntRange(min=1), show_default=True,
              help="Threads for BLAS, onnxruntime and torch.")
@click.option("--rate", default=16_000.0, type=click.FloatRange(min=0, min_open=True),
              show_default=True, help="Sample rate (Hz) for the real-time factor.")
@click.option("--rounds", default=5, type=click.IntRange(min=1), show_default=True,
              help="Rows of one stream count are timed in this many interleaved rounds, so "
                   "machine noise is shared fairly between them.")
@click.option("--check-steps", default=200, type=click.IntRange(min=1), show_default=True,
              help="Steps compared with torch for the contract error.")
@click.option("--json", "json_out", default=None, metavar="FILE",
              help="Write the results as one JSON document to FILE ('-' for stdout, no table).")
@click.option("--plot", "plot_out", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Draw latency distributions per backend x variant to a PNG (needs matplotlib).")
@click.option("--option", "options", multiple=True, callback=_options, metavar="BACKEND.KEY=VALUE",
              help="A load() option of one backend, repeatable: torch.device=cuda, "
                   "numpy.kernel=numpy, onnxruntime.provider=CUDAExecutionProvider.")
@click.option("--no-baselines", is_flag=True, help="Measure only edgernn rows.")
def command(bundle, backends, variants, streams, steps, warmup, threads, rate, rounds,
            check_steps, json_out, plot_out, options, no_baselines) -> None:
    """Measure per-step latency of BUNDLE's variants on runtime backends.

    \b
    Each row is loaded and checked, warmed up, then STEPS calls are timed one by one
    (perf_counter_ns), in ROUNDS interleaved with the other rows of the same stream count.
    One stream times model.step(x); more streams time StreamPool.step({id: x}) and its
    array form StreamPool.step_arrays(ids, xs), each stepping every stream per call.
      p50/p90/p99/max µs   per call
      µs/step              median call time / streams (per stream-step); ratios use it
      stream-steps/s       throughput over the timed run (mean, outliers included)
      RTF                  real-time factor = (1/rate) / mean time per stream-step: how many
                           times faster than real time one stream at RATE samples/s runs
                           (with N streams: how many such streams the pool sustains)
      × torch full-seq     µs/step over torch's full-sequence forward per stream-step with
                           the same batch, same run (below 1: streaming is cheaper)
      contract error       max abs difference vs the torch model with the variant's weights

    Baselines, with the same weights in the same run: torch's full-sequence forward over T
    steps / T (the fastest of 10 runs, so a preempted run cannot flatter the ratio), torch
    LSTMCell/GRUCell/RNNCell stepping, and onnxruntime's plain session.run on the exported step
    graph. Without torch they are skipped and say so. An unavailable backend is skipped with a
    warning; if no backend can run, the command fails. Peak RSS is process-wide.

    \b
    Example:
      edgernn bench runs/sine --backend numpy,onnxruntime --variant fp32,int8 \\
          --streams 1,64,256 --json bench.json --plot bench.png
    """
    from edgernn.runtime import bench

    settings = bench.Settings(steps=steps, warmup=warmup, threads=threads, rate=rate,
                              rounds=rounds, check_steps=check_steps, options=options,
                              baselines=not no_baselines)
    with console.progress() as bar:
        task = bar.add_task("bench", total=None, status="")

        def on_task(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, total=total, status=label)

        report, opened = bench.run(bundle, _csv(backends), _csv(variants), streams, settings,
                                   on_task=on_task)
    for skipped in report.skipped:
        console.warn(f"skipped {skipped['row']}: {skipped['reason']}")
    document = report.to_dict(opened)
    if json_out == "-":
        console.print_json(document)
    else:
        _print_tables(document)
        if json_out:
            import json

            Path(json_out).write_text(json.dumps(document, indent=2) + "\n")
            console.info(f"wrote {json_out}")
    if plot_out:
        plot_latency(report, plot_out)
        console.info(f"wrote {plot_out}")


def _print_tables(doc: dict) -> None:
    s = doc["settings"]
    latency, other = [], []
    for r in doc["rows"]:
        lat = r["latency_us"] or {}
        key = [row_label(r["name"], r["api"]), r["variant"], r["streams"]]
        latency.append([*key, *(_short(lat.get(k)) for k in ("p50", "p90", "p99", "max")),
                        _short(r["per_stream_step_us"]), _short(r["vs_torch_fullseq"])])
        engine = (r["engine"] or "").removeprefix(f"{r['name']} (").removesuffix(")")
        other.append([*key, _short(r["stream_steps_per_s"]), _short(r["real_time_factor"]),
                      r["contract_error"], _short(r["load_s"]), engine or None])
    console.print_table(f"µs per call ({s['steps']} calls, {s['threads']} thread(s)); "
                        "µs/step = p50 / streams", LATENCY_COLUMNS, latency)
    console.print_table(f"throughput (RTF at {s['rate']:g} Hz), contract error vs torch, load",
                        OTHER_COLUMNS, other)
    peak = max((r["peak_rss_bytes"] or 0 for r in doc["rows"]), default=0)
    facts = {**doc["device"], "bundle": f"{doc['bundle']['path']} "
                                        f"({console.human_bytes(doc['bundle']['bytes'])})",
             "peak RSS (process)": console.human_bytes(peak),
             "BLAS threads": doc["threads"].get("blas"),
             "load average (1 min)": "{before} before, {after} after".format(**doc["load_average"])}
    console.print_table("machine", ("", "value"), list(facts.items()))


def _short(value: float | None) -> str | None:
    """Three significant digits, k/M suffixes: keeps the tables narrow."""
    if value is None:
        return None
    for at_least, unit, suffix in ((1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if abs(value) >= at_least:
            return f"{value / unit:.3g}{suffix}"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def row_label(name: str, api: str | None) -> str:
    """The backend or baseline, with the call timed when it is not a plain ``step``."""
    return name if api in (None, "step") else f"{name} {api}"


def plot_latency(report, path: Path) -> None:
    """Box plot (log µs per call) of every timed row, one panel per stream count."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import LogFormatter, LogLocator
    except ImportError as exc:
        raise click.ClickException(f"--plot needs matplotlib ({exc}); pip install matplotlib") \
            from exc
    import numpy as np

    counts = sorted({r.streams for r in report.rows})
    panels = [[r for r in report.rows if r.streams == n and r.samples_ns is not None][::-1]
              for n in counts]  # reversed: the first row is drawn at the top
    fig, axes = plt.subplots(len(counts), 1, squeeze=False, layout="constrained", figsize=(
        10, sum(0.32 * len(timed) + 1.3 for timed in panels) + 0.5),
        height_ratios=[len(timed) + 3 for timed in panels])
    for ax, n, timed in zip(axes[:, 0], counts, panels):
        data = [r.samples_ns / 1e3 for r in timed]
        ax.boxplot(data, orientation="horizontal", whis=(1, 99), showfliers=False, widths=0.6)
        ax.set_yticks(range(1, len(timed) + 1),
                      [f"{row_label(r.name, r.api)} · {r.variant}" for r in timed], fontsize=8)
        for i, d in enumerate(data, start=1):
            p50 = np.median(d)
            ax.annotate(f"p50 {_short(p50)}", (p50, i + 0.32), fontsize=7, ha="center")
        for r in report.rows:
            if r.streams == n and r.samples_ns is None:
                per_call = r.per_stream_step_us * n
                ax.axvline(per_call, ls="--", color="tab:red", lw=1,
                           label=f"{r.name}: {per_call:.3g} µs per {n} stream-step(s)")
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(LogLocator(subs=(2, 5)))
        ax.xaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(3, 1)))
        ax.tick_params(axis="x", which="minor", labelsize=7)
        ax.set_xlabel(f"µs per call ({n} stream{'s' if n > 1 else ''} per call); "
                      "box p25–p75, whiskers p1–p99")
        ax.set_title(f"{n} stream{'s' if n > 1 else ''}", fontsize=10, loc="left")
        ax.grid(axis="x", which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="lower right", bbox_to_anchor=(1, 1), frameon=False)
    s = report.settings
    fig.suptitle(f"step latency: {report.bundle.name}, {s.steps} calls per row, "
                 f"{s.threads} thread(s)", fontsize=11)
    fig.savefig(path, dpi=120)
    plt.close(fig)


COMMANDS = [command]
