"""TensorRT backend (TensorRT 10 Python API, CUDA through cuda-python).

The engine comes from the bundle (``manifest["exports"]["tensorrt"][variant][target]["engine"]``)
or is built on first load from the variant's ONNX step graph and cached under
``$EDGERNN_CACHE_DIR/engines``. Each batch size gets two device state buffer sets; a step binds
one as input and the other as output and the roles swap (no device-side copy). The enqueue of
each of the two bindings is captured once as a CUDA graph and replayed. Host states stay numpy
and are the source of truth: each step copies x and the state in, y and the state out.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..errors import BackendUnavailableError, BundleError
from .base import Backend, ModelSpec
from .kernel import cache_dir

INSTALL = ("pip install tensorrt cuda-python (the 'tensorrt' extra) on a machine with an NVIDIA "
           "GPU")


def _cuda():
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError as exc:
            raise BackendUnavailableError(f"cuda-python is not installed: {INSTALL}") from exc
    return cudart


def _check(result):
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise BackendUnavailableError(f"CUDA call failed: {err}")
    return rest[0] if len(rest) == 1 else rest


class TensorRTBackend(Backend):
    name = "tensorrt"

    @staticmethod
    def probe() -> tuple[bool, str]:
        import tensorrt as trt

        count = _check(_cuda().cudaGetDeviceCount())
        if not count:
            return False, f"tensorrt {trt.__version__} is installed but there is no CUDA GPU"
        return True, f"tensorrt {trt.__version__} ({count} GPU)"

    def __init__(self, spec: ModelSpec, nan_policy: str = "raise", threads: int = 1,
                 target: str | None = None, max_streams: int = 64, cuda_graphs: bool = True):
        super().__init__(spec, nan_policy, threads)
        try:
            import tensorrt as trt
        except ImportError as exc:
            raise BackendUnavailableError(f"tensorrt is not installed: {INSTALL}") from exc
        self.trt, self.cudart = trt, _cuda()
        if not _check(self.cudart.cudaGetDeviceCount()):
            raise BackendUnavailableError("TensorRT needs an NVIDIA GPU; none is visible")
        self.max_streams = max_streams
        self.cuda_graphs = cuda_graphs
        logger = trt.Logger(trt.Logger.WARNING)
        self.engine = trt.Runtime(logger).deserialize_cuda_engine(self._plan(spec, target, logger))
        if self.engine is None:
            raise BundleError("TensorRT could not deserialize the engine (built for another "
                              "GPU or TensorRT version?); delete it to rebuild from ONNX")
        self.context = self.engine.create_execution_context()
        self.stream = _check(self.cudart.cudaStreamCreate())
        self._sets: dict[int, dict] = {}

    # ---- the engine ----
    def _plan(self, spec: ModelSpec, target: str | None, logger) -> bytes:
        records = spec.bundle.manifest.get("exports", {}).get("tensorrt", {}).get(spec.variant, {})
        for name, record in records.items():
            if (target is None or name == target) and record.get("engine"):
                return spec.bundle.file(record["engine"]).read_bytes()
        onnx_record = spec.bundle.manifest.get("exports", {}).get("onnx", {}).get(spec.variant, {})
        if not onnx_record.get("step"):
            raise BackendUnavailableError(
                f"bundle has neither a TensorRT engine nor an ONNX step graph for {spec.variant!r};"
                f" run `edgernn export {spec.bundle.path} --format tensorrt --variant "
                f"{spec.variant}`")
        onnx_bytes = spec.bundle.file(onnx_record["step"]).read_bytes()
        props = _check(self.cudart.cudaGetDeviceProperties(0))
        key = hashlib.sha256(onnx_bytes + self.trt.__version__.encode() + bytes(props.name)
                             + str(self.max_streams).encode()).hexdigest()[:20]
        path = cache_dir() / "engines" / f"{key}.plan"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(self._build(onnx_bytes, onnx_record.get("precision", "fp32"), logger))
            tmp.replace(path)
        return path.read_bytes()

    def _build(self, onnx_bytes: bytes, precision: str, logger) -> bytes:
        trt = self.trt
        builder = trt.Builder(logger)
        flags = 0
        if precision in ("int8", "mixed"):  # weight-only int8 (Q/DQ) builds strongly typed
            flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse(onnx_bytes):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise BundleError(f"TensorRT's ONNX parser rejected the step graph: {errors}")
        config = builder.create_builder_config()
        if precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        profile = builder.create_optimization_profile()
        for i in range(network.num_inputs):
            t = network.get_input(i)
            rest = tuple(t.shape)[1:]
            profile.set_shape(t.name, (1, *rest), (max(1, self.max_streams // 2), *rest),
                              (self.max_streams, *rest))
        config.add_optimization_profile(profile)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise BundleError("TensorRT could not build an engine from the step graph")
        return bytes(plan)

    # ---- device buffers, one set per batch size ----
    def _malloc(self, nbytes: int) -> int:
        return int(_check(self.cudart.cudaMalloc(max(nbytes, 4))))

    def _set(self, batch: int) -> dict:
        if batch > self.max_streams:
            raise BackendUnavailableError(
                f"{batch} streams exceed the engine's profile (max_streams={self.max_streams})")
        s = self._sets.get(batch)
        if s is None:
            c = self.config
            state_bytes = batch * c.num_layers * c.hidden_size * 4
            s = {"x": self._malloc(batch * max(1, int(np.prod(self.input_shape))) * 8),
                 "y": self._malloc(batch * c.output_size * 4),
                 "state": [{n: self._malloc(state_bytes) for n in self.state_names}
                           for _ in range(2)],
                 "graphs": [None, None], "cur": 0}
            self._sets[batch] = s
        return s

    def _bind(self, s: dict, batch: int, parity: int) -> None:
        ctx = self.context
        ctx.set_input_shape("x", (batch, *self.input_shape))
        ctx.set_tensor_address("x", s["x"])
        ctx.set_tensor_address("y", s["y"])
        for n in self.state_names:
            ctx.set_input_shape(f"state_{n}_in", (batch, *self.state_shape))
            ctx.set_tensor_address(f"state_{n}_in", s["state"][parity][n])
            ctx.set_tensor_address(f"state_{n}_out", s["state"][1 - parity][n])

    def _enqueue(self, s: dict, batch: int, parity: int) -> None:
        cudart = self.cudart
        graph = s["graphs"][parity]
        if graph is not None:
            _check(cudart.cudaGraphLaunch(graph, self.stream))
            return
        self._bind(s, batch, parity)
        if not self.context.execute_async_v3(self.stream):
            raise BackendUnavailableError("TensorRT failed to enqueue the step")
        if self.cuda_graphs:  # capture after one plain run, as TensorRT requires
            mode = cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
            _check(cudart.cudaStreamBeginCapture(self.stream, mode))
            self.context.execute_async_v3(self.stream)
            captured = _check(cudart.cudaStreamEndCapture(self.stream))
            s["graphs"][parity] = _check(cudart.cudaGraphInstantiate(captured, 0))

    def _copy(self, dst: int, src: int, nbytes: int, kind) -> None:
        _check(self.cudart.cudaMemcpyAsync(dst, src, nbytes, kind, self.stream))

    def _step(self, x, state_in, state_out):
        cudart = self.cudart
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        batch = x.shape[0]
        s = self._set(batch)
        parity = s["cur"]
        x = np.ascontiguousarray(x)
        self._copy(s["x"], x.ctypes.data, x.nbytes, h2d)
        for n in self.state_names:
            self._copy(s["state"][parity][n], state_in[n].ctypes.data, state_in[n].nbytes, h2d)
        self._enqueue(s, batch, parity)
        y = np.empty((batch, self.config.output_size), np.float32)
        self._copy(y.ctypes.data, s["y"], y.nbytes, d2h)
        for n in self.state_names:
            out = state_out[n]
            self._copy(out.ctypes.data, s["state"][1 - parity][n], out.nbytes, d2h)
        _check(cudart.cudaStreamSynchronize(self.stream))
        s["cur"] = 1 - parity
        return y

    def close(self) -> None:
        cudart = self.cudart
        for s in self._sets.values():
            for g in s["graphs"]:
                if g is not None:
                    cudart.cudaGraphExecDestroy(g)
            for ptr in (s["x"], s["y"], *[p for d in s["state"] for p in d.values()]):
                cudart.cudaFree(ptr)
        self._sets.clear()
        cudart.cudaStreamDestroy(self.stream)
        self.context = self.engine = None
