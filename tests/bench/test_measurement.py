import json
import subprocess
import sys

import numpy as np
import pytest

from edgernn.runtime import bench
from edgernn.runtime.errors import BackendUnavailableError, BundleError, ConfigError

QUICK = bench.Settings(steps=120, warmup=5, check_steps=24, seq_len=40, repeats=2)


def test_time_calls_times_every_call_after_warmup():
    seen = []
    ns = bench.time_calls(seen.append, [1, 2, 3], steps=7, warmup=2)
    assert seen == [1, 2, 1, 2, 3, 1, 2, 3, 1]
    assert ns.shape == (7,) and ns.dtype == np.int64 and (ns > 0).all()


@pytest.mark.parametrize("steps, count", [(120, 5), (7, 3), (2, 5), (1, 1)])
def test_rounds_split_every_call_once(steps, count):
    shares = bench.rounds(steps, count)
    assert sum(shares) == steps and len(shares) == min(steps, count)
    assert max(shares) - min(shares) <= 1


def test_rows_are_timed_in_interleaved_rounds():
    order = []
    timed = [bench.per_call(bench.Row(name, "edgernn", "fp32", 1), order.append, [name],
                            bench.Settings(warmup=0)) for name in "ab"]
    for calls in bench.rounds(6, 3):
        for t in timed:
            t.more(calls)
    resumed = bench.REWARM + 2
    assert "".join(order) == "aabb" + ("a" * resumed + "b" * resumed) * 2
    assert [t.row.samples_ns.size for t in timed] == [6, 6]


def test_row_statistics_are_consistent():
    samples = np.array([4000, 1000, 2000, 3000, 10_000] * 20, dtype=np.int64)
    row = bench.Row("x", "edgernn", "fp32", 4, samples_ns=samples)
    lat = row.latency_us()
    assert lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"] == 10.0
    assert lat["calls"] == 100 and lat["mean"] == pytest.approx(4.0)
    assert row.per_stream_step_us == pytest.approx(3.0 / 4)
    assert row.stream_steps_per_s == pytest.approx(4 / 4e-6)
    assert row.to_dict(rate=16_000)["real_time_factor"] == pytest.approx(1e6 / 16_000)


@pytest.fixture(scope="module")
def report(lstm_bundle):
    return bench.run(lstm_bundle, ["numpy"], ["fp32", "int8"], [1, 3], QUICK)


def test_rows_baselines_and_ratios(report):
    rep, _ = report
    names = {(r.name, r.api, r.variant, r.streams) for r in rep.rows}
    for n, apis in ((1, ["step"]), (3, ["StreamPool.step", "StreamPool.step_arrays"])):
        assert {("numpy", api, v, n) for api in apis for v in ("fp32", "int8")} <= names
        assert {("torch full-seq", None, "fp32", n), ("torch LSTMCell", None, "fp32", n)} <= names
    for r in rep.rows:
        assert r.vs_torch_fullseq == pytest.approx(
            r.per_stream_step_us / next(f.per_stream_step_us for f in rep.rows
                                        if f.name == bench.FULLSEQ and f.streams == r.streams))
        if r.samples_ns is not None:
            assert r.samples_ns.size == QUICK.steps
    assert any("ONNX step graph" in s["reason"] for s in rep.skipped)


def test_contract_error_is_small_with_preprocessing(report):
    rep, _ = report
    for r in rep.rows:
        if r.kind == "edgernn":
            limit = 1e-4 if r.variant == "fp32" else 0.05  # int8 kernels quantize activations too
            assert r.contract_error is not None and r.contract_error < limit, r
            assert r.load_s > 0 and r.variant_bytes > 0


def test_json_document_has_every_field(report):
    rep, opened = report
    doc = json.loads(json.dumps(rep.to_dict(opened)))
    keys = {"date", "bundle", "settings", "threads", "load_average", "device", "rows", "skipped",
            "notes"}
    assert keys <= set(doc)
    assert doc["bundle"]["bytes"] > 0 and doc["device"]["cores"] >= 1
    row = next(r for r in doc["rows"] if r["kind"] == "edgernn")
    for key in ("latency_us", "per_stream_step_us", "stream_steps_per_s", "real_time_factor",
                "vs_torch_fullseq", "load_s", "contract_error", "variant_bytes", "peak_rss_bytes"):
        assert row[key] is not None, key


@pytest.mark.parametrize("cell, vocab", [("gru", None), ("rnn", 11)])
def test_other_cells_and_token_input(bundle_factory, cell, vocab):
    path = bundle_factory(cell, cell=cell, vocab=vocab, int8=False)
    rep, _ = bench.run(path, ["numpy"], None, [1, 2], QUICK)
    edgernn_rows = [r for r in rep.rows if r.kind == "edgernn"]
    assert [(r.streams, r.api) for r in edgernn_rows] == [
        (1, "step"), (2, "StreamPool.step"), (2, "StreamPool.step_arrays")]
    assert all(r.contract_error < 1e-4 for r in edgernn_rows)
    assert any(r.name == f"torch {cell.upper()}Cell" for r in rep.rows)


def test_every_call_gives_the_same_contract_error(lstm_bundle):
    settings = bench.Settings(steps=10, warmup=0, check_steps=16, baselines=False,
                              apis=bench.APIS[1:])
    rep, _ = bench.run(lstm_bundle, ["numpy"], ["fp32"], [3], settings)
    assert [r.api for r in rep.rows] == list(bench.APIS[1:])
    assert all(r.contract_error < 1e-4 for r in rep.rows)


def test_bad_requests_say_what_exists(lstm_bundle):
    with pytest.raises(ConfigError, match="numpy"):
        bench.run(lstm_bundle, ["nope"], ["fp32"], [1], QUICK)
    with pytest.raises(BundleError, match="int8"):
        bench.run(lstm_bundle, ["numpy"], ["int4"], [1], QUICK)
    with pytest.raises(ConfigError, match="streams"):
        bench.run(lstm_bundle, ["numpy"], ["fp32"], [0], QUICK)
    with pytest.raises(ConfigError, match="steps"):
        bench.run(lstm_bundle, ["numpy"], ["fp32"], [1], bench.Settings(steps=0))
    with pytest.raises(ConfigError, match="StreamPool.step"):
        bench.run(lstm_bundle, ["numpy"], ["fp32"], [1], bench.Settings(apis=("pool",)))
    with pytest.raises(ConfigError, match="one stream"):
        bench.run(lstm_bundle, ["numpy"], ["fp32"], [2], bench.Settings(apis=("step",)))


def test_unavailable_backend_is_skipped_or_fails_alone(lstm_bundle, monkeypatch):
    from edgernn.runtime import backends

    status = backends.backend_status()
    status["tensorrt"] = {"available": False, "reason": "tensorrt is not installed"}
    monkeypatch.setattr(backends, "backend_status", lambda: status)
    rep, _ = bench.run(lstm_bundle, ["numpy", "tensorrt"], ["fp32"], [1],
                       bench.Settings(steps=20, warmup=0, check_steps=4, baselines=False))
    assert [r.name for r in rep.rows] == ["numpy"]
    assert rep.skipped == [{"row": "tensorrt", "reason": "tensorrt is not installed"}]
    with pytest.raises(BackendUnavailableError, match="tensorrt is not installed"):
        bench.run(lstm_bundle, ["tensorrt"], ["fp32"], [1], QUICK)


def test_without_torch_baselines_and_contract_are_skipped(lstm_bundle, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    rep, _ = bench.run(lstm_bundle, ["numpy"], ["fp32"], [1], QUICK)
    assert [r.name for r in rep.rows] == ["numpy"]
    assert rep.rows[0].contract_error is None and "torch" in rep.rows[0].contract_note
    assert any("torch" in s["reason"] for s in rep.skipped)


def test_module_imports_no_engine():
    code = ("import sys, edgernn.runtime.bench; "
            "print(sorted(m for m in ('torch', 'onnxruntime', 'tensorrt', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_available_backend_and_the_onnxruntime_run_baseline(bundle_factory):
    from edgernn.converters.export import export_bundle
    from edgernn.runtime.backends import backend_status

    path = bundle_factory("exported", int8=False)
    export_bundle(path, "onnx", "fp32", steps=8)
    rep, _ = bench.run(path, None, ["fp32"], [1, 2], QUICK)
    ort = [r for r in rep.rows if r.name == "onnxruntime run"]
    assert [r.streams for r in ort] == [1, 2] and "fp32-step.onnx" in ort[0].engine
    assert all(r.samples_ns.size == QUICK.steps and r.vs_torch_fullseq > 0 for r in ort)
    available = [name for name, st in backend_status().items() if st["available"]]
    ours = [r for r in rep.rows if r.kind == "edgernn"]
    assert sorted({r.name for r in ours}) == sorted(available)
    assert all(r.contract_error < 1e-4 for r in ours)


def test_progress_counts_up_to_its_total(lstm_bundle):
    seen = []
    settings = bench.Settings(steps=9, warmup=0, check_steps=4, rounds=3, baselines=False)
    bench.run(lstm_bundle, ["numpy"], ["fp32", "int8"], [1, 2], settings,
              on_task=lambda done, total, label: seen.append((done, total)))
    rows = 2 * (1 + 2)  # variants x (step | StreamPool.step, StreamPool.step_arrays)
    assert [d for d, _ in seen] == list(range(1, rows * 4 + 1))
    assert {t for _, t in seen} == {rows * 4}
