"""The streaming contract: stepping 1,000 samples reproduces torch's full-sequence outputs.

Every backend x variant x cell is checked against ``model.step_outputs`` of the torch model that
holds that variant's decoded weights. Tolerances (max abs error on outputs):
numpy reference path 1e-5 for every variant; fused C kernel fp32-weight variants 1e-5, int8
variants 0.05 (activations are quantized to 8 bits per step); onnxruntime 1e-4 (fp32 graph) and
0.05 (int8 graph); torch 1e-5.
"""

import numpy as np
import pytest

from edgernn.runtime import load
from edgernn.runtime.backends.kernel import kernel_status

from runtime_helpers import VARIANTS, reference_outputs

T = 1000
CELLS = [("lstm", 1), ("lstm", 2), ("gru", 1), ("gru", 2), ("rnn", 1), ("rnn", 2)]
C_KERNEL = pytest.mark.skipif(not kernel_status()[0], reason=f"no fused kernel: {kernel_status()[1]}")


def tolerance(backend: str, variant: str) -> float:
    int8 = "int8" in variant
    return {"numpy": 1e-5, "c": 0.05 if int8 else 1e-5, "torch": 1e-5}[backend]


def _xs(seed=0, steps=T, features=4):
    return np.random.default_rng(seed).normal(size=(steps, features)).astype(np.float32)


@pytest.mark.parametrize("kernel", ["numpy", pytest.param("c", marks=C_KERNEL)])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("cell, layers", CELLS)
def test_numpy_backend_contract(make_bundle, cell, layers, variant, kernel):
    path = make_bundle(cell, layers, variants=VARIANTS)
    xs = _xs(steps=T if kernel == "c" else 300)  # the reference path is slower; 300 steps
    model = load(path, backend="numpy", variant=variant, kernel=kernel)
    got = model.run(xs)
    err = np.abs(got - reference_outputs(path, variant, xs)).max()
    assert err <= tolerance(kernel, variant), f"max abs error {err:.2e}"
