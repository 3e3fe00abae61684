"""`edgernn demo --quick`: every stage runs and the summary holds what it promises."""

import json

from click.testing import CliRunner

from edgernn.cli import main


def test_demo_quick_runs_every_stage(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--quick", "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary["stage_seconds"]) == {"train", "compress", "export", "bench", "summary"}
    variants = {v["variant"]: v for v in summary["variants"]}
    assert {"fp32", "int8", "fp16", "sparse80", "sparse80-int8"} == set(variants)
    assert variants["int8"]["size_bytes"] < variants["fp32"]["size_bytes"]
    numpy_rows = [lat for lat in variants["int8"]["latency"] if lat["name"] == "numpy"]
    assert numpy_rows and numpy_rows[0]["contract_error"] < 0.1
    assert all(row["status"].startswith("verified") for row in summary["exports"])
    assert any(path.endswith("fp32-step.onnx") for path in summary["artifacts"]["onnx"])
    assert (out / "co2-lstm" / "manifest.json").is_file()


def test_demo_help_lists_the_stages():
    result = CliRunner().invoke(main, ["demo", "-h"])
    assert result.exit_code == 0 and "Jetson TensorRT build plan" in result.output


def test_demo_refuses_to_replace_a_directory_it_did_not_write(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    result = CliRunner().invoke(main, ["demo", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "not an earlier demo's output" in result.output
    assert (tmp_path / "precious.txt").read_text() == "keep me"
