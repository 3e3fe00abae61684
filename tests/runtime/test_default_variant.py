"""`load` without a variant picks int8 when the bundle has it, else fp32."""

from edgernn.bundle_io import save_model_bundle, variant_entry
from edgernn.models import RecurrentModel
from edgernn.runtime import load
from edgernn.runtime import weights as W
from edgernn.runtime.bundle import safetensors_bytes, update_bundle
from edgernn.runtime.config import ModelConfig


def test_default_variant_is_int8_when_present(tmp_path):
    model = RecurrentModel(ModelConfig(cell="gru", input_size=2, hidden_size=8)).init_weights(0)
    path = tmp_path / "b"
    save_model_bundle(model, path)
    assert load(path, backend="numpy").variant == "fp32"

    entries = {}
    for name, value in model.to_numpy().items():
        entries.update(W.encode(name, value, int8=value.ndim == 2))
    blob = safetensors_bytes(entries)
    record = variant_entry(["weights/int8.safetensors"], "int8", len(blob), 0, {})
    update_bundle(path, {"weights/int8.safetensors": blob},
                  lambda m: m["variants"].__setitem__("int8", record))
    assert load(path, backend="numpy").variant == "int8"
    assert load(path, backend="numpy", variant="fp32").variant == "fp32"
