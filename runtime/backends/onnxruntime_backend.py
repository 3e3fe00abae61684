"""onnxruntime backend: the bundle's verified step graph, run with preallocated I/O bindings.

The graph is ``manifest["exports"]["onnx"][variant]["step"]`` (inputs ``x``, ``state_h_in``
[, ``state_c_in``]; outputs ``y``, ``state_h_out`` [, ``state_c_out``]). Every (state buffers,
batch) pairing gets one ``IOBinding`` bound straight to the numpy buffers, so a step copies only
``x`` and the state's two buffer sets swap instead of being copied.
"""

from __future__ import annotations

import numpy as np

from ..errors import BackendUnavailableError, BundleError
from .base import Backend, ModelSpec

PROVIDERS = ("CPUExecutionProvider", "CUDAExecutionProvider")


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    @staticmethod
    def probe() -> tuple[bool, str]:
        import onnxruntime as ort

        return True, f"onnxruntime {ort.__version__} ({', '.join(ort.get_available_providers())})"

    def __init__(self, spec: ModelSpec, nan_policy: str = "raise", threads: int = 1,
                 provider: str = "CPUExecutionProvider"):
        super().__init__(spec, nan_policy, threads)
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailableError(
                "onnxruntime is not installed: pip install onnxruntime") from exc
        if provider not in PROVIDERS or provider not in ort.get_available_providers():
            raise BackendUnavailableError(
                f"provider {provider!r} is not available; this onnxruntime has "
                f"{ort.get_available_providers()}")
        record = spec.bundle.manifest.get("exports", {}).get("onnx", {}).get(spec.variant, {})
        if not record.get("step"):
            raise BackendUnavailableError(
                f"bundle {spec.bundle.path} has no ONNX step graph for variant {spec.variant!r}; "
                f"run `edgernn export {spec.bundle.path} --format onnx --variant {spec.variant}`")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        path = spec.bundle.file(record["step"])
        self.session = ort.InferenceSession(str(path), options, providers=[provider])
        self._check_names(path)
        self._device = "cuda" if provider == "CUDAExecutionProvider" else "cpu"
        self._bindings: dict = {}

    def _check_names(self, path) -> None:
        names = [f"state_{n}" for n in self.state_names]
        want_in = {"x", *(f"{n}_in" for n in names)}
        want_out = {"y", *(f"{n}_out" for n in names)}
        got_in = {i.name for i in self.session.get_inputs()}
        got_out = {o.name for o in self.session.get_outputs()}
        if got_in != want_in or got_out != want_out:
            raise BundleError(
                f"{path}: step graph has inputs {sorted(got_in)} and outputs {sorted(got_out)}; "
                f"expected {sorted(want_in)} and {sorted(want_out)}")

    def _binding(self, batch: int, state_in: dict, state_out: dict):
        key = (id(state_in), id(state_out), batch)
        entry = self._bindings.get(key)
        if entry is not None and entry[3] is state_in["h"] and entry[4] is state_out["h"]:
            return entry
        c = self.config
        xbuf = np.zeros((batch, *self.input_shape), self.input_dtype)
        ybuf = np.zeros((batch, c.output_size), np.float32)
        b = self.session.io_binding()
        b.bind_input("x", "cpu", 0, xbuf.dtype, xbuf.shape, xbuf.ctypes.data)
        b.bind_output("y", "cpu", 0, np.float32, ybuf.shape, ybuf.ctypes.data)
        for n in self.state_names:
            t_in, t_out = state_in[n], state_out[n]
            b.bind_input(f"state_{n}_in", "cpu", 0, np.float32, t_in.shape, t_in.ctypes.data)
            b.bind_output(f"state_{n}_out", "cpu", 0, np.float32, t_out.shape, t_out.ctypes.data)
        if len(self._bindings) >= 64:
            self._bindings.clear()
        # the record holds the dicts and arrays it is bound to, so they stay alive and unique
        entry = (b, xbuf, ybuf, state_in["h"], state_out["h"], state_in, state_out,
                 tuple(state_in.values()), tuple(state_out.values()))
        self._bindings[key] = entry
        return entry

    def _step(self, x, state_in, state_out):
        binding, xbuf, ybuf = self._binding(x.shape[0], state_in, state_out)[:3]
        np.copyto(xbuf, x)
        self.session.run_with_iobinding(binding)  # no RunOptions: that path costs ~30 µs
        return ybuf

    def close(self) -> None:
        self._bindings.clear()
        self.session = None

    def describe(self) -> str:
        return f"onnxruntime ({self.session.get_providers()[0]})"
