import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.parametrize("script, keep, files", [
    ("step_latency", True, ["b/lstm16/manifest.json", "b/lstm32/onnx/int8-step.onnx"]),
    ("pool_scaling", False, ["pool_scaling.png"]),
])
def test_quick_run_writes_table_json_and_figures(tmp_path, script, keep, files):
    args = [sys.executable, str(BENCHMARKS / f"{script}.py"), "--quick", "--out", str(tmp_path)]
    if keep:
        args += ["--bundles", str(tmp_path / "b")]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / f"{script}.md").read_text()
    assert "Command: `python benchmarks/" in text and "Machine:" in text and "Targets" in text
    assert "torch full-seq" in text and "onnxruntime run" in text
    runs = json.loads((tmp_path / f"{script}.json").read_text())["runs"]
    assert all(r["threads"]["blas"] in ("environment", "threadpoolctl") for r in runs)  # pinned
    ours = {r["variant"] for run in runs for r in run["rows"] if r["kind"] == "edgernn"}
    assert ours == {"fp32", "int8"}
    for name in files:
        assert (tmp_path / name).stat().st_size > 1000, name
