import json

import pytest
from click.testing import CliRunner

from edgernn.bundle_io import save_model_bundle
from edgernn.cli import console, main
from edgernn.compress.quantize import encode_tensors
from edgernn.compress.variants import write_variant
from edgernn.models import RecurrentModel
from edgernn.runtime.config import ModelConfig

QUICK = ["--backend", "numpy", "--steps", "50", "--warmup", "2", "--check-steps", "8"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli-bench") / "gru"
    model = RecurrentModel(ModelConfig(cell="gru", input_size=4, hidden_size=12,
                                       head="every")).init_weights(1)
    opened = save_model_bundle(model, path)
    write_variant(opened, "int8", encode_tensors(model.to_numpy(), int8=True), metrics={})
    return str(path)


def invoke(*args):
    return CliRunner().invoke(main, ["bench", *args])


def test_json_to_stdout_is_one_document(bundle):
    result = invoke(bundle, *QUICK, "--streams", "1,2", "--json", "-")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    rows = {(r["name"], r["variant"], r["streams"]) for r in doc["rows"]}
    assert {("numpy", v, n) for v in ("fp32", "int8") for n in (1, 2)} <= rows
    assert ("torch GRUCell", "fp32", 2) in rows
    timed = [r for r in doc["rows"] if r["latency_us"]]
    assert all(r["latency_us"]["p50"] <= r["latency_us"]["p99"] <= r["latency_us"]["max"]
               for r in timed)
    assert doc["settings"]["steps"] == 50 and doc["device"]["cpu"]


def test_table_json_file_and_plot(bundle, tmp_path, monkeypatch):
    monkeypatch.setattr(console.out, "_width", 160)
    out, png = tmp_path / "b.json", tmp_path / "b.png"
    result = invoke(bundle, *QUICK, "--variant", "int8", "--json", str(out), "--plot", str(png))
    assert result.exit_code == 0, result.output
    for text in ("× torch", "full-seq", "torch GRUCell", "contract", "peak RSS", "cpu_flags"):
        assert text in result.stdout, text
    rows = json.loads(out.read_text())["rows"]
    assert [r["variant"] for r in rows if r["kind"] == "edgernn"] == ["int8"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_no_baselines(bundle):
    result = invoke(bundle, *QUICK, "--variant", "fp32", "--no-baselines", "--json", "-")
    assert result.exit_code == 0, result.output
    assert [r["kind"] for r in json.loads(result.stdout)["rows"]] == ["edgernn"]


def test_backend_options_reach_load(bundle):
    result = invoke(bundle, *QUICK, "--variant", "fp32", "--no-baselines", "--json", "-",
                    "--option", "numpy.kernel=numpy")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"][0]["engine"] == "numpy (reference)"


@pytest.mark.parametrize("args, code, message", [
    (["--backend", "numpy", "--option", "numpy.bogus=1"], 1, "does not take"),
    (["--backend", "numpy", "--option", "torch.device=cuda"], 1, "does not measure"),
    (["--option", "kernel=numpy"], 2, "BACKEND.KEY=VALUE"),
    (["--backend", "cuda"], 1, "unknown backend"),
    (["--variant", "int4"], 1, "fp32"),
    (["--streams", "1,x"], 2, "positive integers"),
    (["--streams", "0"], 2, "positive integers"),
    (["--steps", "0"], 2, "--steps"),
])
def test_bad_input_is_a_clear_error(bundle, args, code, message):
    result = invoke(bundle, *args)
    assert result.exit_code == code and message in result.output, result.output


@pytest.mark.parametrize("value, text", [(None, None), (0.000123, "0.000123"), (9.876, "9.88"),
                                         (123.4, "123"), (9999.0, "9999"), (12_345.0, "12.3k"),
                                         (2_500_000.0, "2.5M")])
def test_table_numbers_stay_short(value, text):
    from edgernn.cli.bench import _short

    assert _short(value) == text
