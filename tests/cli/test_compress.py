"""`edgernn compress`: the table, --json, exit codes and messages on bad input."""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from edgernn.cli import main
from edgernn.compress import quantize
from edgernn.runtime.bundle import read_bundle


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A one-layer GRU trained on digits through `edgernn train`."""
    out = tmp_path_factory.mktemp("cli") / "gru"
    args = ["train", "--dataset", "digits", "--out", str(out), "--cell", "gru", "--layers", "1",
            "--hidden", "16", "--epochs", "2"]
    assert CliRunner().invoke(main, args).exit_code == 0
    return out


@pytest.fixture
def bundle(trained, tmp_path):
    return str(shutil.copytree(trained, tmp_path / "b"))


def run(*args):
    return CliRunner().invoke(main, ["compress", *args])


def test_table_lists_every_new_variant(bundle):
    result = run(bundle, "--int8", "--fp16", "--sparsity", "0.5", "--finetune-epochs", "1")
    assert result.exit_code == 0, result.output
    for name in ("fp32", "int8", "fp16", "sparse50", "sparse50-int8"):
        assert name in result.stdout
    assert "accuracy" in result.stdout and "nonzero" in result.stdout
    assert set(read_bundle(bundle).variants) == {"fp32", "int8", "fp16", "sparse50",
                                                 "sparse50-int8"}


def test_json_is_one_document_with_the_table_fields(bundle):
    result = run(bundle, "--int8", "--per-tensor", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    int8 = doc["variants"][1]
    assert int8["variant"] == "int8-per-tensor" and int8["precision"] == "int8"
    assert {"size_bytes", "size_ratio", "nonzero_params", "test", "delta", "time_s"} <= set(int8)


@pytest.mark.parametrize("args, message", [
    (["--sparsity", "1.2"], "sparsity must be in [0, 1)"),
    (["--pattern", "3:2"], "0 < N < M"),
    (["--structured", "0.99"], "leaves no hidden units"),
    (["--int8", "--schedule", "oneshot"], "--schedule applies to --sparsity"),
    (["--per-tensor"], "applies to int8"),
    ([], "nothing to do"),
])
def test_bad_input_is_one_line_and_exit_code_1(bundle, args, message):
    result = run(bundle, *args)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_tampered_bundle_is_refused(bundle):
    with open(f"{bundle}/weights/fp32.safetensors", "ab") as fh:
        fh.write(b"\0")
    result = run(bundle, "--int8")
    assert result.exit_code == 1 and "BundleError" in result.output


def test_unmet_budget_keeps_the_best_variant_labelled_and_fails(bundle, monkeypatch):
    real = quantize.fallback_search

    def impossible(*args, **kwargs):  # each fallback helps, but never enough
        drops = iter([0.3, 0.2, 0.1, 0.05])
        kwargs["drop"] = lambda metrics: next(drops)
        return real(*args, **kwargs)

    monkeypatch.setattr("edgernn.compress.pipeline.fallback_search", impossible)
    result = run(bundle, "--int8", "--max-drop", "0.001")
    assert result.exit_code == 1
    assert "no int8 mix meets --max-drop 0.001" in result.output
    record = read_bundle(bundle).variant("int8")
    assert record["budget_met"] is False and record["max_drop"] == 0.001
    # one-layer GRU: three matrices, so the best mix keeps two of them in fp32
    assert record["precision"] == "mixed" and len(record["fallback"]) == 2
    assert record["measured_drop"] == 0.1


def test_a_bundle_trained_on_a_user_file_is_scored_on_that_file(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 6, 3)).astype(np.float32)
    np.savez(tmp_path / "mine.npz", X=X, y=(X[:, :, 0].sum(1) > 0).astype(np.int64))
    out = tmp_path / "mine"
    args = ["train", "--data", str(tmp_path / "mine.npz"), "--out", str(out), "--layers", "1",
            "--hidden", "8", "--epochs", "1"]
    assert CliRunner().invoke(main, args).exit_code == 0
    result = run(str(out), "--int8")
    assert result.exit_code == 1 and "--data FILE" in result.output
    np.savez(tmp_path / "other.npz", X=X * 2, y=np.zeros(120, np.int64))
    result = run(str(out), "--int8", "--data", str(tmp_path / "other.npz"))
    assert result.exit_code == 1 and "not the one the model was trained on" in result.output
    result = run(str(out), "--int8", "--data", str(tmp_path / "mine.npz"), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["variants"][1]["variant"] == "int8"
