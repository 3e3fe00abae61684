"""`edgernn train` through click: sources, summary, --json, refusals and resume."""

import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgernn.cli import main
from edgernn.cli.train import DEFAULTS
from edgernn.models import torch_threads
from edgernn.runtime.bundle import read_bundle
from edgernn.train import TrainConfig, checkpoint_path

TINY = ["--layers", "1", "--hidden", "8", "--epochs", "2"]


@pytest.fixture(autouse=True)
def one_thread():  # tiny models train fastest on one thread, and do not stall on busy cores
    with torch_threads(1):
        yield


def run(*args):
    return CliRunner().invoke(main, list(map(str, args)))


@pytest.fixture
def series_csv(tmp_path):
    path = tmp_path / "load.csv"
    rows = "\n".join(f"{i},{np.sin(i / 4):.4f},{np.cos(i / 9):.4f}" for i in range(160))
    path.write_text("t,load,temp\n" + rows + "\n")
    return path


def test_csv_training_prints_the_summary(series_csv, tmp_path):
    out = tmp_path / "run"
    result = run("train", "--csv", series_csv, "--target", "load", "--features", "load,temp",
                 "--window", 12, *TINY, "--out", out)
    assert result.exit_code == 0, result.output
    for field in ("dataset", "params", "epochs run", "best val rmse", "test",
                  "baseline test rmse", "(last observed value)", "bundle", "wall time"):
        assert field in result.output
    bundle = read_bundle(out)
    assert bundle.config.input_size == 2
    assert bundle.manifest["provenance"]["dataset"]["kind"] == "csv"


def test_json_prints_one_document(tmp_path):
    result = run("train", "--dataset", "digits", *TINY, "--cell", "gru", "--json",
                 "--out", tmp_path / "d")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["dataset"] == "digits" and doc["cell"] == "gru" and doc["epochs_run"] == 2
    assert 0 <= doc["test"]["accuracy"] <= 1 and doc["bundle"] == str(tmp_path / "d")


def test_npz_training(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5, 2)).astype(np.float32)
    np.savez(tmp_path / "d.npz", X=X, y=X[:, :, :1].sum(1))
    result = run("train", "--data", tmp_path / "d.npz", *TINY, "--out", tmp_path / "b")
    assert result.exit_code == 0, result.output
    assert read_bundle(tmp_path / "b").manifest["task"]["metric"] == "rmse"


def test_existing_output_needs_force(series_csv, tmp_path):
    (tmp_path / "run").mkdir()
    args = ["train", "--csv", series_csv, "--target", "load", *TINY, "--out", tmp_path / "run"]
    result = run(*args)
    assert result.exit_code == 1 and "already exists; pass --force" in result.output
    assert run(*args, "--force").exit_code == 0


@pytest.mark.parametrize("args, code, message", [
    (["--dataset", "mnist"], 1, "DataError: unknown dataset 'mnist'; built-in datasets: sine, co2"),
    (["--dataset", "sine", "--cell", "transformer"], 2,
     "'transformer' is not one of 'rnn', 'lstm', 'gru'"),
    ([], 2, "give exactly one of --dataset NAME, --data FILE.npz, --csv FILE"),
    (["--dataset", "sine", "--data", "x.npz"], 2, "give exactly one of"),
    (["--dataset", "sine", "--target", "y"], 2,
     "--target, --features and --difference apply to --csv only"),
    (["--data", "missing.npz"], 1, "DataError: no .npz file at missing.npz"),
    (["--dataset", "sine", "--resume"], 1, "ConfigError: no checkpoint at"),
])
def test_bad_input_gets_a_clear_message(tmp_path, args, code, message):
    result = run("train", *args, "--epochs", 1, "--out", tmp_path / "never")
    assert result.exit_code == code and message in result.output
    assert not (tmp_path / "never").exists()


def test_bad_csv_names_the_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("t,load\n0,1\n1,n/a\n")
    result = run("train", "--csv", path, "--target", "load", "--out", tmp_path / "o")
    assert result.exit_code == 1
    assert "column 'load' is not numeric: line 3 holds 'n/a'" in result.output


def test_resume_continues_from_the_checkpoint(series_csv, tmp_path, monkeypatch):
    """An interrupted run leaves OUT.ckpt/ and no bundle; --resume finishes it."""
    import edgernn.train as train

    out = tmp_path / "run"
    args = ["train", "--csv", series_csv, "--target", "load", "--window", 12, "--batch-size", 32,
            *TINY[:4], "--epochs", 3, "--out", out]
    real_fit = train.fit

    def interrupted_fit(model, dataset, config, after_step=None, progress=True):
        def stop(m, step):
            if step == 7:  # epoch 3 of 3 batches each
                raise KeyboardInterrupt
        return real_fit(model, dataset, config, after_step=stop, progress=progress)

    monkeypatch.setattr(train, "fit", interrupted_fit)
    result = run(*args)
    said = " ".join(result.output.split())
    assert result.exit_code == 130 and "continue with the same command and --resume" in said
    assert not out.exists() and checkpoint_path(out).is_file()
    monkeypatch.setattr(train, "fit", real_fit)
    result = run(*args, "--resume", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["epochs_run"] == 3 and not checkpoint_path(out).parent.exists()


def test_cli_defaults_are_the_library_defaults():
    library = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.name in DEFAULTS}
    assert DEFAULTS == library
