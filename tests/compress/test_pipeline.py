"""compress_bundle end to end on small digits bundles: records, sizes, masks, bad input."""

import numpy as np
import pytest
import torch

from edgernn.bundle_io import load_model
from edgernn.compress import compress_bundle
from edgernn.compress.evaluation import HeldOut
from edgernn.runtime import weights as W
from edgernn.runtime.bundle import read_bundle
from edgernn.runtime.errors import BundleError, ConfigError

RECORD_FIELDS = {"files", "precision", "size_bytes", "nonzero_params", "metrics", "delta", "time_s"}


def rnn_matrices(bundle, variant):
    tensors = W.decode_all(read_bundle(bundle).tensors(variant))
    return {k: v for k, v in tensors.items() if k.startswith("rnn.weight_")}


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_int8_variant_of_every_cell_is_recorded_and_scored_by_its_decoded_weights(
        cell, untrained, digits):
    path = untrained(cell, hidden=32)
    reports = compress_bundle(path, int8=True, fp16=True)
    assert [r["variant"] for r in reports] == ["fp32", "int8", "fp16"]
    bundle = read_bundle(path)
    record = bundle.variant("int8")
    assert RECORD_FIELDS <= set(record) and record["precision"] == "int8"
    assert record["per_channel"] is True
    entries, fp32 = bundle.tensors("int8"), bundle.tensors("fp32")
    assert entries["rnn.weight_hh_l0.q"].dtype == np.int8 and "head.weight.q" in entries
    quantized = [k for k in entries if k.endswith(".q")]
    assert 4 * sum(entries[k].nbytes for k in quantized) == sum(
        fp32[k[:-2]].nbytes for k in quantized)
    # biases and scales stay fp32: small models pay more than a quarter overall
    assert record["size_bytes"] < bundle.variant("fp16")["size_bytes"]
    assert {v.dtype for v in bundle.tensors("fp16").values()} == {np.dtype(np.float16)}
    # the recorded metric is the torch model holding the variant's decoded weights
    rescored = HeldOut(digits).metrics(load_model(bundle, "int8"))
    assert rescored["test"]["accuracy"] == record["metrics"]["test"]["accuracy"]
    assert record["delta"] == pytest.approx(
        record["metrics"]["test"]["accuracy"] - reports[0]["test"])


def test_gradual_sparsity_holds_per_gate_masks_and_combines_with_int8(bundle):
    reports = {r["variant"]: r for r in compress_bundle(bundle, sparsity=0.8, finetune_epochs=1)}
    assert set(reports) == {"fp32", "int8", "sparse80", "sparse80-int8"}
    for variant in ("sparse80", "sparse80-int8"):
        for name, w in rnn_matrices(bundle, variant).items():
            for block in np.split(w, 4):  # LSTM gates i, f, g, o
                assert np.mean(block == 0) == pytest.approx(0.8, abs=0.01), (variant, name)
    record = read_bundle(bundle).variant("sparse80-int8")
    assert record["sparsity"] == 0.8 and record["schedule"] == "gradual"
    assert "rnn.weight_hh_l0.mask" in read_bundle(bundle).tensors("sparse80-int8")
    size = {k: r["size_bytes"] for k, r in reports.items()}
    assert size["sparse80-int8"] < min(size["int8"], size["sparse80"]) < size["fp32"]
    assert reports["sparse80"]["nonzero_params"] < 0.4 * reports["fp32"]["nonzero_params"]


def test_structured_pruning_gives_a_smaller_dense_model(bundle):
    reports = compress_bundle(bundle, int8=False, structured=0.5, finetune_epochs=1)
    assert [r["variant"] for r in reports] == ["fp32", "structured50"]
    b = read_bundle(bundle)
    assert b.variant("structured50")["model"]["hidden_size"] == 8
    assert b.config_for("structured50").hidden_size == 8
    model = load_model(b, "structured50")
    assert model.rnn.weight_ih_l1.shape == (32, 8) and model.head.weight.shape == (10, 8)
    assert model(torch.zeros(2, 8, 8)).shape == (2, 10)
    assert reports[1]["size_ratio"] < 0.4


def test_two_of_four_pattern_holds_after_fine_tuning(bundle):
    compress_bundle(bundle, int8=False, pattern="2:4", finetune_epochs=1)
    record = read_bundle(bundle).variant("sparse2of4")
    assert record["pattern"] == "2:4" and record["sparsity"] == 0.5
    for w in rnn_matrices(bundle, "sparse2of4").values():
        groups = (w != 0).reshape(w.shape[0], -1, 4).sum(-1)
        assert groups.max() <= 2 and groups.mean() > 1.9


def test_a_met_budget_is_recorded(bundle):
    reports = compress_bundle(bundle, max_drop=1.0)
    record = read_bundle(bundle).variant("int8")
    assert record["budget_met"] is True and record["fallback"] == []
    assert record["max_drop"] == 1.0 and reports[1]["budget_met"] is True


@pytest.mark.parametrize("options, message", [
    ({"sparsity": 1.0}, r"\[0, 1\)"),
    ({"sparsity": -0.2}, r"\[0, 1\)"),
    ({"pattern": "4:2"}, "N < M"),
    ({"pattern": "2-4"}, "N:M"),
    ({"structured": 0.99}, "leaves no hidden units"),
    ({"int8": False, "per_tensor": True}, "per_tensor"),
    ({"int8": False}, "nothing to do"),
    ({"schedule": "linear", "sparsity": 0.5}, "schedule"),
])
def test_bad_options_are_refused_before_anything_is_written(bundle, options, message):
    before = (bundle / "manifest.json").read_text()
    with pytest.raises(ConfigError, match=message):
        compress_bundle(bundle, **options)
    assert (bundle / "manifest.json").read_text() == before


def test_a_bundle_failing_its_checksums_is_refused(bundle):
    weights = bundle / "weights" / "fp32.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256"):
        compress_bundle(bundle)
    assert "int8" not in read_bundle(bundle, verify=False).variants


def test_a_zipped_bundle_is_refused_rather_than_updated_in_a_temporary_copy(bundle):
    from edgernn.runtime.bundle import pack_bundle

    zipped = pack_bundle(bundle, bundle.parent / "bundle.zip")
    with pytest.raises(BundleError, match="unzip"):
        compress_bundle(zipped)


def test_a_bundle_without_its_dataset_is_refused(untrained, digits):
    path = untrained("gru")
    manifest = read_bundle(path).manifest
    from edgernn.runtime.bundle import update_bundle

    update_bundle(path, {}, lambda m: m["task"].pop("dataset"))
    with pytest.raises(BundleError, match="task.dataset"):
        compress_bundle(path)
    assert compress_bundle(path, dataset=digits)[1]["variant"] == "int8"
    assert manifest["variants"]["fp32"]


def test_an_interrupted_run_keeps_finished_variants_and_nothing_half_written(bundle, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("edgernn.compress.pipeline.finetune", interrupted)
    with pytest.raises(KeyboardInterrupt):
        compress_bundle(bundle, int8=True, sparsity=0.5)
    assert set(read_bundle(bundle).variants) == {"fp32", "int8"}  # verified: checksums hold
    assert [p.name for p in bundle.parent.iterdir()] == ["bundle"]
