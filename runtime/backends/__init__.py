"""Backend registry: names to lazily imported classes, availability with reasons, ``auto`` choice.

Importing this package imports no engine; ``backend_status`` probes each engine and reports why
one is unavailable instead of failing.
"""

from __future__ import annotations

import importlib
import importlib.util

from ..errors import BackendUnavailableError, ConfigError

BACKENDS = {
    "numpy": ("numpy_backend", "NumpyBackend"),
    "onnxruntime": ("onnxruntime_backend", "OnnxRuntimeBackend"),
    "tensorrt": ("tensorrt_backend", "TensorRTBackend"),
    "torch": ("torch_backend", "TorchBackend"),
}
# fastest first, for backend="auto"
AUTO_ORDER = ("tensorrt", "numpy-c", "onnxruntime", "numpy")


def backend_class(name: str):
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; choose one of auto, {', '.join(BACKENDS)}")
    module, cls = BACKENDS[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def _probe(name: str) -> tuple[bool, str]:
    if name == "numpy":
        from .kernel import kernel_status

        ok, why = kernel_status()
        return True, "fused C kernel" if ok else f"reference path only ({why})"
    module = {"onnxruntime": "onnxruntime", "tensorrt": "tensorrt", "torch": "torch"}[name]
    try:
        missing = importlib.util.find_spec(module) is None
    except (ImportError, ValueError) as exc:
        return False, f"{module} cannot be imported: {exc}"
    if missing:
        hint = {"onnxruntime": "pip install onnxruntime",
                "tensorrt": "pip install tensorrt (the 'tensorrt' extra) where there is a GPU",
                "torch": "pip install torch"}[name]
        return False, f"{module} is not installed ({hint})"
    try:
        return backend_class(name).probe()
    except Exception as exc:  # an engine that fails to import must not break `edgernn info`
        return False, f"{module} fails to load: {exc}"


def backend_status() -> dict[str, dict]:
    """``{name: {"available": bool, "reason": str}}`` for every backend on this machine."""
    return {name: dict(zip(("available", "reason"), _probe(name))) for name in BACKENDS}


def create(name: str, spec, nan_policy: str = "raise", threads: int = 1, **options):
    """Build backend ``name`` (or the fastest usable one for ``auto``) for ``spec``."""
    if name != "auto":
        return backend_class(name)(spec, nan_policy=nan_policy, threads=threads, **options)
    if options:
        raise ConfigError(f"options {sorted(options)} belong to one backend; name it "
                          "(backend='numpy', 'onnxruntime', ...) instead of 'auto'")
    errors = []
    for candidate in AUTO_ORDER:
        if candidate.startswith("numpy") and threads != 1:
            errors.append("numpy: runs on one thread only")
            continue
        if candidate == "numpy-c":
            from .kernel import kernel_status

            if not kernel_status()[0]:
                continue
            candidate = "numpy"
        ok, why = _probe(candidate)
        if not ok:
            errors.append(f"{candidate}: {why}")
            continue
        try:
            return backend_class(candidate)(spec, nan_policy=nan_policy, threads=threads)
        except BackendUnavailableError as exc:
            errors.append(f"{candidate}: {exc}")
    raise BackendUnavailableError("no backend can run this bundle: " + "; ".join(errors))
