"""Every example runs, on small settings, so none rots."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(name: str, *argv: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(list(argv))


def test_forecast_co2(tmp_path):
    rmse = run("forecast_co2", "--epochs", "2", "--out", str(tmp_path / "co2"))
    assert np.isfinite(rmse) and rmse < 1.5  # ppm; the series' weekly changes have std ~1


def test_classify_digits_compressed(tmp_path, capsys):
    result = run("classify_digits_compressed", "--epochs", "3", "--finetune-epochs", "1",
                 "--hidden", "32", "--out", str(tmp_path / "digits"))
    names = [r["variant"] for r in result["reports"]]
    assert {"fp32", "int8", "sparse80", "sparse80-int8"} <= set(names)
    assert result["accuracy"] > 0.5  # 10 classes: chance is 0.1
    streamed = next(r for r in result["reports"] if r["variant"] == "sparse80-int8")
    assert abs(streamed["test"] - result["accuracy"]) < 0.02  # device agrees with the build side


def test_generate_text(tmp_path):
    text = run("generate_text", "--epochs", "1", "--hidden", "32", "--length", "40",
               "--out", str(tmp_path / "chars"))
    assert text.startswith("The ") and len(text) == 44


def test_sensor_pool(tmp_path):
    report = run("sensor_pool", "--devices", "16", "--ticks", "30", "--epochs", "1",
                 "--out", str(tmp_path / "sine"))
    assert report["devices_at_end"] == 12 and report["p50_us"] > 0


def test_adopt_tutorial_lstm(tmp_path):
    pytest.importorskip("onnxruntime")
    result = run("adopt_tutorial_lstm", "--epochs", "3", "--out", str(tmp_path / "adopted"))
    assert result["diff"] < 1e-4
