import json
import zipfile

import numpy as np
import pytest
import torch

from edgernn.bundle_io import FP32_FILE, load_model, save_model_bundle
from edgernn.models import RecurrentModel
from edgernn.runtime.bundle import MANIFEST, pack_bundle, read_bundle, update_bundle
from edgernn.runtime.config import ModelConfig
from edgernn.runtime.errors import BundleError


@pytest.fixture
def bundle_dir(tmp_path):
    model = RecurrentModel(ModelConfig(cell="lstm", input_size=3, hidden_size=8, num_layers=2,
                                       output_size=2)).init_weights(0)
    save_model_bundle(model, tmp_path / "b", metrics={"test": {"rmse": 0.5}},
                      preprocessing={"input_mean": [0, 0, 0], "input_std": [1, 1, 1]})
    return tmp_path / "b"


def test_bundle_round_trip_is_exact(bundle_dir):
    bundle = read_bundle(bundle_dir)
    manifest = json.loads((bundle_dir / MANIFEST).read_text())
    assert manifest["schema_version"] == 1 and manifest["variants"]["fp32"]["files"] == [FP32_FILE]
    assert manifest["streaming"]["states"][1]["name"] == "c"
    assert manifest["streaming"]["states"][0]["shape"] == [2, 8]
    model = load_model(bundle)
    x = torch.randn(2, 5, 3)
    reference = RecurrentModel(bundle.config).init_weights(0)
    assert torch.equal(model(x), reference.eval()(x))
    assert not any(p.suffix in {".pt", ".pkl", ".pth"} for p in bundle_dir.rglob("*"))


def test_refuses_to_overwrite_without_force(bundle_dir):
    model = RecurrentModel(ModelConfig()).init_weights(0)
    with pytest.raises(BundleError, match="already exists"):
        save_model_bundle(model, bundle_dir)
    save_model_bundle(model, bundle_dir, force=True)
    assert read_bundle(bundle_dir).config.hidden_size == 64


def test_tampered_file_is_named(bundle_dir):
    path = bundle_dir / FP32_FILE
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="weights/fp32.safetensors' fails its sha256"):
        read_bundle(bundle_dir)


def test_truncated_file_is_named(bundle_dir):
    path = bundle_dir / FP32_FILE
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(BundleError, match="truncated"):
        read_bundle(bundle_dir)


def test_corrupted_manifest_and_wrong_schema(bundle_dir):
    manifest = bundle_dir / MANIFEST
    good = manifest.read_text()
    manifest.write_text(good[:50])
    with pytest.raises(BundleError, match="not valid JSON"):
        read_bundle(bundle_dir)
    manifest.write_text(good.replace('"schema_version": 1', '"schema_version": 99'))
    with pytest.raises(BundleError, match="schema version 99 is not supported"):
        read_bundle(bundle_dir)


def test_failed_update_leaves_bundle_untouched(bundle_dir):
    before = (bundle_dir / MANIFEST).read_text()

    def explode(manifest):
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        update_bundle(bundle_dir, {"extra.bin": b"x"}, explode)
    assert (bundle_dir / MANIFEST).read_text() == before
    assert not (bundle_dir / "extra.bin").exists()
    assert [p.name for p in bundle_dir.parent.iterdir()] == ["b"]


def test_update_adds_checksummed_file(bundle_dir):
    bundle = update_bundle(bundle_dir, {"notes/a.txt": b"hello"},
                           lambda m: m["exports"].setdefault("notes", "notes/a.txt"))
    assert bundle.manifest["files"]["notes/a.txt"]["size"] == 5


def test_zip_round_trip_and_bad_zip(bundle_dir, tmp_path):
    zipped = pack_bundle(bundle_dir, tmp_path / "b.zip")
    bundle = read_bundle(zipped)
    assert set(bundle.tensors("fp32")) == set(read_bundle(bundle_dir).tensors("fp32"))
    assert zipfile.is_zipfile(zipped)
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(BundleError):
        read_bundle(tmp_path / "bad.zip")


def test_unknown_variant_lists_what_exists(bundle_dir):
    with pytest.raises(BundleError, match=r"variant 'int8' is not in bundle .* it has \['fp32'\]"):
        read_bundle(bundle_dir).tensors("int8")


def test_tensors_are_float32_numpy(bundle_dir):
    tensors = read_bundle(bundle_dir).tensors()
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in tensors.values())
