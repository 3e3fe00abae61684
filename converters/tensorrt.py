"""TensorRT engine builds from an ONNX graph (TensorRT 10.x and 11.x; imported lazily).

fp32 / fp16 / int8 with explicit Q/DQ, one optimization profile over the stream-batch axis,
2:4 sparse weights on request, a persistent timing cache and a JSON build report. TensorRT 11
drops the FP16/INT8 builder flags: networks are strongly typed, so precision is what the graph's
types say. Weight-only int8 (DequantizeLinear on weights) is built strongly typed on 10.x too.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from edgernn.runtime.errors import BackendUnavailableError, VerificationError

from .spec import ExportSpec
from .targets import Target

INSTALL = ("building a TensorRT engine needs the tensorrt package and an NVIDIA GPU: "
           "pip install 'edgernn[tensorrt]' (on Jetson it ships with JetPack)")


@dataclass
class BuildSettings:
    """What a build needs besides the ONNX: precision, profile shapes, sparsity, memory."""

    precision: str
    profile: dict[str, list[list[int]]]  # input -> [min, opt, max] shapes
    sparse: bool = False
    workspace_mb: int = 256
    timing_cache: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def settings_for(spec: ExportSpec, target: Target, max_streams: int,
                 sparse: bool = False) -> BuildSettings:
    profile = {k: [list(s) for s in v] for k, v in spec.profile_shapes(max_streams).items()}
    return BuildSettings(spec.precision, profile, sparse=sparse and target.sparse,
                         timing_cache="tensorrt/timing.cache")


def load_tensorrt():
    try:
        import tensorrt
    except ImportError as exc:
        raise BackendUnavailableError(INSTALL) from exc
    return tensorrt


def build_engine(onnx_bytes: bytes, settings: BuildSettings,
                 cache_path: Path | None = None) -> tuple[bytes, dict]:
    """Serialize an engine; returns (plan bytes, build report). Updates the timing cache file."""
    trt = load_tensorrt()
    major = int(trt.__version__.split(".")[0])
    strongly_typed = major >= 11 or (major >= 10 and settings.precision in ("int8", "mixed"))
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    creation = trt.NetworkDefinitionCreationFlag
    if strongly_typed and hasattr(creation, "STRONGLY_TYPED"):  # the only mode left in 11.x
        flags |= 1 << int(creation.STRONGLY_TYPED)
    elif major < 10:
        flags |= 1 << int(creation.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise VerificationError(f"TensorRT's ONNX parser rejected the graph: {errors}",
                                report={"parser_errors": errors})
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_mb << 20)
    flag_names = []
    if not strongly_typed and settings.precision == "fp16":
        flag_names.append("FP16")
    if not strongly_typed and settings.precision in ("int8", "mixed"):
        flag_names += ["INT8", "FP16"]
    if settings.sparse:
        flag_names.append("SPARSE_WEIGHTS")
    for name in flag_names:
        if not hasattr(trt.BuilderFlag, name):
            raise BackendUnavailableError(f"TensorRT {trt.__version__} has no BuilderFlag.{name}")
        config.set_flag(getattr(trt.BuilderFlag, name))
    profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in settings.profile.items():
        profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(profile)
    cache_data = cache_path.read_bytes() if cache_path and cache_path.is_file() else b""
    cache = config.create_timing_cache(cache_data)
    config.set_timing_cache(cache, ignore_mismatch=False)
    start = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise VerificationError("TensorRT could not build the engine (see its log above)",
                                report=settings.to_dict())
    engine = bytes(plan)
    if cache_path is not None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache_path.write_bytes(bytes(config.get_timing_cache().serialize()))
    return engine, {
        "tensorrt": trt.__version__, "strongly_typed": strongly_typed, "flags": flag_names,
        # strongly typed: computed in the graph's types (fp16/int8-stored weights, fp32 math)
        "compute": "graph types" if strongly_typed else settings.precision,
        "settings": settings.to_dict(), "build_seconds": round(time.perf_counter() - start, 3),
        "engine_bytes": len(engine), "engine_sha256": hashlib.sha256(engine).hexdigest(),
    }
