"""The streaming contract: stepping 1,000 samples reproduces torch's full-sequence outputs.

Every backend x variant x cell is checked against ``model.step_outputs`` of the torch model that
holds that variant's decoded weights. Tolerances (max abs error on outputs) per backend:
numpy reference path 1e-5 for every variant; fused C kernel 1e-5 for variants with float
weights and 0.05 for int8 (activations are quantized to 8 bits every step); onnxruntime 1e-4
(float weights) and 0.05 (int8: its 8-bit MatMul quantizes activations too); torch 1e-5.
"""

import numpy as np
import pytest
from runtime_helpers import VARIANTS, add_onnx_steps, reference_outputs

from edgernn.runtime import load
from edgernn.runtime.backends.kernel import kernel_status

T = 1000
CELLS = [("lstm", 1), ("lstm", 2), ("gru", 1), ("gru", 2), ("rnn", 1), ("rnn", 2)]
BACKENDS = {  # id -> (backend, options)
    "numpy": ("numpy", {"kernel": "numpy"}),
    "numpy-c": ("numpy", {"kernel": "c"}),
    "onnxruntime": ("onnxruntime", {}),
    "torch": ("torch", {}),
}
TOLERANCE = {"numpy": (1e-5, 1e-5), "numpy-c": (1e-5, 0.05), "onnxruntime": (1e-4, 0.05),
             "torch": (1e-5, 1e-5)}  # (float weights, int8 weights)


def tolerance(backend: str, variant: str) -> float:
    return TOLERANCE[backend]["int8" in variant]


def xs_for(steps=T, features=4, seed=0):
    return np.random.default_rng(seed).normal(size=(steps, features)).astype(np.float32)


def _skip_reason(backend_id: str, path) -> str | None:
    if backend_id == "numpy-c" and not kernel_status()[0]:
        return f"no fused kernel here: {kernel_status()[1]}"
    if backend_id == "onnxruntime" and not add_onnx_steps(path, VARIANTS):
        return "edgernn.converters has no step graph builder"
    if backend_id == "torch":
        pytest.importorskip("torch")
    return None


@pytest.mark.parametrize("backend_id", list(BACKENDS))
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("cell, layers", CELLS)
def test_stepping_reproduces_the_full_sequence(make_bundle, cell, layers, variant, backend_id):
    path = make_bundle(cell, layers, variants=VARIANTS)
    reason = _skip_reason(backend_id, path)
    if reason:
        pytest.skip(reason)
    backend, options = BACKENDS[backend_id]
    # the pure numpy path is ~100 µs a step; 300 steps keep the suite fast
    xs = xs_for(steps=300 if backend_id == "numpy" else T)
    model = load(path, backend=backend, variant=variant, **options)
    err = float(np.abs(model.run(xs) - reference_outputs(path, variant, xs)).max())
    assert err <= tolerance(backend_id, variant), f"max abs error {err:.2e}"


def test_gpu_torch_with_cuda_graphs(make_bundle):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine")
    path = make_bundle("lstm", 2, variants=VARIANTS)
    xs = xs_for()
    model = load(path, backend="torch", device="cuda")
    assert np.abs(model.run(xs) - reference_outputs(path, "fp32", xs)).max() < 1e-4


def test_tensorrt(make_bundle):
    pytest.importorskip("tensorrt", reason="tensorrt is not installed (needs an NVIDIA GPU)")
    path = make_bundle("gru", 1, variants=VARIANTS)
    if not add_onnx_steps(path, ["fp32"]):
        pytest.skip("edgernn.converters has no step graph builder")
    xs = xs_for()
    model = load(path, backend="tensorrt")
    assert np.abs(model.run(xs) - reference_outputs(path, "fp32", xs)).max() < 1e-3
