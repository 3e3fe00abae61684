"""`edgernn inspect`: a bundle's manifest as a readable summary (or one JSON document)."""

from __future__ import annotations

import click

from edgernn.cli import console


@click.command("inspect", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("bundle", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of tables.")
def command(bundle: str, as_json: bool) -> None:
    """Show a bundle: model, streaming contract, preprocessing, variants, exports and files.

    The bundle's schema and every checksum are verified first; a tampered or truncated file
    is named and the command exits 1.
    """
    from edgernn.runtime.bundle import read_bundle

    summary = summarize(read_bundle(bundle))
    if as_json:
        console.print_json(summary)
        return
    for section in ("model", "streaming", "preprocessing", "task", "provenance"):
        console.print_table(section, ["field", "value"], list(summary[section].items()))
    columns = ["variant", "precision", "size", "nonzero", "metrics", "delta"]
    console.print_table("variants", columns, [
        (v["name"], v["precision"], console.human_bytes(v["size_bytes"]), v["nonzero_params"],
         _pairs(v["metrics"]), _pairs(v["delta"])) for v in summary["variants"]])
    if summary["exports"]:
        console.print_table("exports", ["format", "variant", "files", "verification"], [
            (e["format"], e["variant"], ", ".join(e["files"]), _pairs(e["verification"]))
            for e in summary["exports"]])
    console.print_table(f"files ({summary['path']})", ["file", "size"],
                        [(f["path"], console.human_bytes(f["size"])) for f in summary["files"]])


def _pairs(values: dict | None) -> str:
    return ", ".join(f"{k} {console.fmt(v)}" for k, v in (values or {}).items())


def summarize(bundle) -> dict:
    """The fields `edgernn inspect` shows, as plain JSON-able data."""
    m = bundle.manifest
    config = m["model"]
    stream = m["streaming"]
    task = m.get("task") or {}
    return {
        "path": str(bundle.path),
        "model": {k: config.get(k) for k in (
            "cell", "num_layers", "hidden_size", "input_size", "output_size", "head", "task",
            "bidirectional", "vocab_size", "dropout", "nonlinearity", "output_activation")},
        "streaming": {
            "streamable": stream["streamable"],
            "input": f"{stream['input']['name']}: {stream['input']['dtype']} "
                     f"{tuple(stream['input']['shape'])} ({stream['input']['meaning']})",
            "states": ", ".join(f"{s['name']} {tuple(s['shape'])} {s['dtype']}"
                                for s in stream["states"]),
            "output": f"{stream['output']['name']}: {tuple(stream['output']['shape'])} "
                      f"({stream['output']['meaning']})",
        },
        "preprocessing": _preprocessing(m["preprocessing"]),
        "task": {k: task.get(k) for k in ("dataset", "metric", "higher_is_better")}
        | {"classes": len(task["class_names"]) if task.get("class_names") else None},
        "provenance": _provenance(m),
        "variants": [_variant(name, v, task.get("metric")) for name, v in m["variants"].items()],
        "exports": [
            {"format": fmt, "variant": variant,
             "files": [v for k, v in entry.items() if isinstance(v, str)],
             "verification": _scalars(entry.get("verification"))}
            for fmt, by_variant in m.get("exports", {}).items()
            for variant, entry in by_variant.items()
        ],
        "files": [{"path": rel, "size": info["size"]} for rel, info in sorted(m["files"].items())],
    }


def _provenance(m: dict) -> dict:
    prov = m.get("provenance", {})
    source = prov.get("dataset") if isinstance(prov.get("dataset"), dict) else {}
    return {"created": m.get("created"), "edgernn_version": m.get("edgernn_version"),
            **_scalars(prov),
            **{f"data {k}": source[k] for k in ("title", "origin", "licence") if k in source},
            **{f"training {k}": v for k, v in _scalars(prov.get("training")).items()}}


def _preprocessing(pre: dict) -> dict:
    out = {}
    if "input_mean" in pre:
        out["inputs"] = f"standardized, {len(pre['input_mean'])} feature(s)"
    if "target_mean" in pre:
        out["targets"] = (f"de-scaled: y * {_short(pre['target_std'])} + "
                          f"{_short(pre['target_mean'])}")
    if "vocabulary" in pre:
        out["vocabulary"] = f"{len(pre['vocabulary'])} tokens"
    return out or {"none": "raw inputs"}


def _short(values: list) -> str:
    shown = ", ".join(console.fmt(float(v)) for v in values[:4])
    return f"[{shown}{', ...' if len(values) > 4 else ''}]"


def _variant(name: str, info: dict, metric: str | None) -> dict:
    test = info.get("metrics", {}).get("test", {})
    shown = {metric: test[metric]} if metric in test else _scalars(test)
    return {"name": name, "precision": info["precision"], "size_bytes": info["size_bytes"],
            "nonzero_params": info["nonzero_params"], "metrics": shown,
            "delta": _delta(info.get("delta"), metric)}


def _delta(value, metric: str | None) -> dict:
    """The variant's metric change against fp32 (compression records one number)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {metric or "metric": value}
    return _scalars(value)


def _scalars(values) -> dict:
    if not isinstance(values, dict):
        return {}
    return {k: v for k, v in values.items() if isinstance(v, (int, float, str, bool))}


COMMANDS = [command]
