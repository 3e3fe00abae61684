"""`edgernn export` and `edgernn build-engine` through click's CliRunner."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from edgernn.bundle_io import save_model_bundle
from edgernn.cli import console, main
from edgernn.models import RecurrentModel
from edgernn.runtime.bundle import read_bundle
from edgernn.runtime.config import ModelConfig

torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).parents[1] / "converters"))
from converter_fixtures import add_int8_variant  # noqa: E402

HAS_TRT = importlib.util.find_spec("tensorrt") is not None


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(console.out, "_width", 200)


@pytest.fixture
def bundle(tmp_path):
    config = ModelConfig(cell="gru", input_size=2, hidden_size=6, num_layers=2, output_size=1)
    path = tmp_path / "b"
    save_model_bundle(RecurrentModel(config).init_weights(0), path)
    return path


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_export_prints_the_verification_table(bundle):
    result = invoke("export", bundle, "--format", "onnx,triton", "--steps", "50")
    assert result.exit_code == 0, result.output
    for word in ("max abs", "drift", "onnx", "triton", "step", "sequence", "verified"):
        assert word in result.output
    assert "triton" in read_bundle(bundle).manifest["exports"]


def test_json_is_one_document(bundle):
    result = invoke("export", bundle, "--steps", "20", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert {r["graph"] for r in doc["rows"]} == {"step", "sequence"}
    assert all(r["max_abs"] < 1e-4 for r in doc["rows"])


def test_bad_input_exits_non_zero(bundle):
    result = invoke("export", bundle, "--format", "tflite")
    assert result.exit_code == 1 and "unknown format 'tflite'" in result.output
    result = invoke("export", bundle, "--variant", "int8")
    assert result.exit_code == 1 and "variant 'int8' is not in bundle" in result.output
    result = invoke("export", bundle, "--target", "jetson-tx1")
    assert result.exit_code == 2 and "jetson-orin" in result.output
    assert invoke("export").exit_code == 2


def test_refused_export_keeps_the_report(tmp_path):
    config = ModelConfig(cell="rnn", input_size=2, hidden_size=6, output_size=1)
    path = tmp_path / "b"
    save_model_bundle(RecurrentModel(config).init_weights(0), path)
    add_int8_variant(path)
    report = tmp_path / "report.json"
    result = invoke("export", path, "--format", "tensorrt", "--variant", "int8", "--target",
                    "jetson-nano", "--steps", "10", "--report", report)
    assert result.exit_code == 1
    assert "export refused" in result.output and "has no int8 support" in result.output
    doc = json.loads(report.read_text())
    assert doc["variants"]["int8"]["trt_compat"]["ok"] is False
    assert doc["variants"]["int8"]["step"]["passed"]
    assert "onnx" not in read_bundle(path).manifest["exports"]


@pytest.mark.skipif(HAS_TRT, reason="tensorrt is installed here")
def test_tensorrt_without_tensorrt_writes_onnx_and_fails_clearly(bundle):
    result = invoke("export", bundle, "--format", "tensorrt", "--steps", "10")
    assert result.exit_code == 1 and "pip install 'edgernn[tensorrt]'" in result.output
    assert "step" in read_bundle(bundle).manifest["exports"]["onnx"]["fp32"]
    result = invoke("build-engine", bundle)
    assert result.exit_code == 1 and "tensorrt" in result.output


def test_build_engine_needs_a_plan(bundle):
    result = invoke("build-engine", bundle, "--variant", "fp32")
    assert result.exit_code == 1 and "no TensorRT build plan" in result.output


MODULE = """
import torch
from torch import nn

class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 5, batch_first=True)
        self.fc = nn.Linear(5, 2)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])

def build():
    return Tagger()
"""


def test_from_torch_adopts_and_exports(tmp_path):
    source = tmp_path / "tagger.py"
    source.write_text(MODULE)
    namespace: dict = {}
    exec(MODULE, namespace)
    torch.manual_seed(0)
    weights = tmp_path / "w.pt"
    torch.save(namespace["build"]().state_dict(), weights)
    out = tmp_path / "adopted"
    result = invoke("export", "--from-torch", f"{source}:build", "--weights", weights,
                    "--out", out, "--steps", "20")
    assert result.exit_code == 0, result.output
    bundle = read_bundle(out)
    assert bundle.config.cell == "lstm" and "step" in bundle.manifest["exports"]["onnx"]["fp32"]
    assert invoke("export", "--from-torch", f"{source}:nope", "--weights", weights,
                  "--out", tmp_path / "x").exit_code == 2
