"""The runtime is the device floor: numpy only at import, and it works where torch is absent."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

BLOCK_TORCH = textwrap.dedent("""
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is not installed on this device")

    sys.meta_path.insert(0, Block())
""")


def _run(code: str, tmp_path, block_torch: bool = False) -> subprocess.CompletedProcess:
    env_path = []
    if block_torch:
        (tmp_path / "sitecustomize.py").write_text(BLOCK_TORCH)
        env_path = [str(tmp_path)]
    paths = env_path + [os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120)


def test_import_loads_no_engine(tmp_path):
    out = _run("import sys, json, edgernn.runtime\n"
               "print(json.dumps([m for m in ('torch', 'onnxruntime', 'tensorrt', 'onnx') "
               "if m in sys.modules]))", tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


def test_load_and_step_without_torch(make_bundle, tmp_path):
    path = make_bundle("lstm", 2)
    code = textwrap.dedent(f"""
        import numpy as np
        try:
            import torch
            raise SystemExit("torch importable")
        except ImportError:
            pass
        import edgernn.runtime as rt
        from edgernn.runtime.backends import backend_status
        for kernel in ("numpy", "auto"):
            m = rt.load({str(path)!r}, backend="numpy", kernel=kernel)
            y = m.run(np.ones((5, 4), np.float32))
            assert y.shape == (5, 3) and np.isfinite(y).all()
        status = backend_status()
        assert not status["torch"]["available"], status
        print("ok", status["torch"]["reason"])
    """)
    out = _run(code, tmp_path, block_torch=True)
    assert out.returncode == 0, out.stderr + out.stdout
    assert out.stdout.startswith("ok")


def test_backend_status_reports_every_backend():
    from edgernn.runtime.backends import backend_status

    status = backend_status()
    assert set(status) == {"numpy", "onnxruntime", "tensorrt", "torch"}
    assert status["numpy"]["available"]
    for s in status.values():
        assert s["reason"]


def test_numpy_path_when_the_kernel_cannot_be_built(make_bundle, tmp_path):
    path = make_bundle("gru", 1)
    code = textwrap.dedent(f"""
        import numpy as np
        import edgernn.runtime as rt
        from edgernn.runtime.backends import backend_status
        m = rt.load({str(path)!r}, backend="numpy")
        assert m.backend.fused is None and "reference" in m.backend.describe()
        assert np.isfinite(m.run(np.ones((3, 4), np.float32))).all()
        try:
            rt.load({str(path)!r}, backend="numpy", kernel="c")
            raise SystemExit("kernel='c' should have failed")
        except rt.BackendUnavailableError as exc:
            assert "compiling" in str(exc), exc
        print(backend_status()["numpy"]["reason"])
    """)
    env = {**os.environ, "CC": "false", "EDGERNN_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr + out.stdout
    assert out.stdout.startswith("reference path only")


def test_the_kernel_builds_wherever_it_can():
    """Where the CPU, a compiler and the headers allow it, the fused kernel and its module must
    build: otherwise the kernel's tests would skip and the runtime quietly run its slow path."""
    import shutil
    import sysconfig
    from pathlib import Path

    import numpy as np

    from edgernn.runtime.backends import kernel

    headers = (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file() and \
        (Path(np.get_include()) / "numpy" / "arrayobject.h").is_file()
    if not ({"avx512f", "avx512_vnni"} <= kernel._cpu_flags() and headers
            and (shutil.which("cc") or shutil.which("gcc"))):
        pytest.skip("no AVX-512 VNNI CPU, C compiler or Python/numpy headers here")
    assert kernel.kernel_status() == (True, "built")
    assert kernel._build()[1] is not None
