"""`edgernn inspect`: readable summary, --json, and tampered bundles refused with exit 1."""

import json

import pytest
from click.testing import CliRunner

from edgernn.cli import main
from edgernn.data import load_dataset
from edgernn.models import torch_threads
from edgernn.train import TrainConfig, train_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("inspect") / "sine"
    data = load_dataset("sine", n=120, window=8)
    with torch_threads(1):
        train_bundle(data, out, TrainConfig(epochs=1), layers=1, hidden=8, progress=False)
    return out


def run(*args):
    return CliRunner().invoke(main, list(map(str, args)))


def test_summary_shows_each_section(bundle):
    result = run("inspect", bundle)
    assert result.exit_code == 0, result.output
    for text in ("model", "streaming", "preprocessing", "variants", "files", "lstm",
                 "standardized, 1 feature(s)", "fp32", "weights/fp32.safetensors", "history.json",
                 "h (1, 8) float32", "c (1, 8) float32", "rmse"):
        assert text in result.output


def test_json_is_one_document(bundle):
    result = run("inspect", bundle, "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["model"]["cell"] == "lstm" and doc["task"]["metric"] == "rmse"
    assert doc["variants"][0]["name"] == "fp32" and "rmse" in doc["variants"][0]["metrics"]
    assert {f["path"] for f in doc["files"]} == {"weights/fp32.safetensors", "history.json"}


def test_tampered_file_is_named(bundle, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    history = copy / "history.json"
    history.write_text(history.read_text().replace("1", "2", 1))
    result = run("inspect", copy)
    assert result.exit_code == 1
    assert "BundleError" in result.output and "'history.json'" in result.output


def test_not_a_bundle(tmp_path):
    result = run("inspect", tmp_path)
    assert result.exit_code == 1 and "manifest.json is missing" in result.output


def test_inspect_shows_the_delta_compression_records(tmp_path):
    from click.testing import CliRunner

    from edgernn.cli import main
    from edgernn.cli.inspect import _variant

    row = _variant("int8", {"precision": "int8", "size_bytes": 10, "nonzero_params": 5,
                            "metrics": {"test": {"accuracy": 0.9}}, "delta": -0.01}, "accuracy")
    assert row["delta"] == {"accuracy": -0.01}
    assert CliRunner().invoke(main, ["inspect", str(tmp_path / "missing")]).exit_code == 1
