"""The compiled fused step: ``fused_step.c`` built with the system C compiler, called by ctypes.

The shared library is compiled on first use into a cache directory (``$EDGERNN_CACHE_DIR`` or
``~/.cache/edgernn``), keyed by the source, compiler and CPU, with ``-O3 -march=native``. It needs
AVX-512 with VNNI; where it cannot be built, ``kernel_status`` says why and the numpy backend
falls back to its reference path. Weights are packed once per model; each (state, batch) pairing
gets a prebuilt call record so a step costs one ctypes call. Where Python's and numpy's headers
are present the library is also the module ``_fused_step``, whose ``Stepper`` serves the
single-sample and pool fast paths with no ctypes call and no Python-level copy.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import numpy as np

from .. import weights
from ..errors import BackendUnavailableError, InputError

SOURCE = Path(__file__).with_name("fused_step.c")
MAXL = 8
CHUNK = 32  # streams per pass in fused_step.c: scratch is sized for this many rows
CELL_CODES = {("rnn", "tanh"): 0, ("rnn", "relu"): 1, ("lstm", "tanh"): 2, ("gru", "tanh"): 3}


class Mat(ctypes.Structure):
    _fields_ = [("w", ctypes.c_void_p), ("scale", ctypes.c_void_p), ("rowsum", ctypes.c_void_p),
                ("bias", ctypes.c_void_p), ("K", ctypes.c_int32), ("Kpad", ctypes.c_int32),
                ("Npad", ctypes.c_int32), ("int8", ctypes.c_int32)]


class Model(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int32) for n in ("cell", "layers", "hidden", "input", "output",
                                              "sigmoid_out", "token", "vocab")]
    _fields_ += [("embedding", ctypes.c_void_p), ("wx", Mat * MAXL), ("wh", Mat * MAXL),
                 ("head", Mat)]
    _fields_ += [(n, ctypes.c_void_p)
                 for n in ("gx", "gh", "xin", "uscale", "u", "sh", "sc", "xh")]


class IO(ctypes.Structure):
    _fields_ = [(n, ctypes.c_void_p) for n in ("x", "h_in", "c_in", "h_out", "c_out", "y")]
    _fields_ += [("batch", ctypes.c_int32), ("rows", ctypes.c_void_p)]


def cache_dir() -> Path:
    return Path(os.environ.get("EDGERNN_CACHE_DIR", Path.home() / ".cache" / "edgernn"))


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@functools.lru_cache(maxsize=1)
def _build() -> tuple[ctypes.CDLL | None, object, str]:
    """(library, the library as a module or None, "built") or (None, None, why not); tried once."""
    try:
        return (*_load(), "built")
    except (BackendUnavailableError, OSError, ImportError) as exc:
        return None, None, str(exc)


def _library() -> ctypes.CDLL:
    lib, _, why = _build()
    if lib is None:
        raise BackendUnavailableError(f"the fused kernel is unavailable: {why}")
    return lib


def _load() -> tuple[ctypes.CDLL, object]:
    flags = _cpu_flags()
    if not {"avx512f", "avx512_vnni"} <= flags:
        raise BackendUnavailableError("the CPU lacks AVX-512 VNNI")
    if not SOURCE.is_file():
        raise BackendUnavailableError(f"{SOURCE} is missing from this installation")
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise BackendUnavailableError("no C compiler found (install gcc or set CC)")
    # no FMA contraction of plain C: the module's scaling must round as numpy's does
    cmd = [compiler, "-O3", "-march=native", "-fno-math-errno", "-ffp-contract=off", "-shared",
           "-fPIC"]
    include = Path(sysconfig.get_paths()["include"])
    numpy_include = Path(np.get_include())
    if (include / "Python.h").is_file() and (numpy_include / "numpy" / "arrayobject.h").is_file():
        cmd += ["-DEDGERNN_PYMODULE", f"-I{include}", f"-I{numpy_include}"]
    key = hashlib.sha256(SOURCE.read_bytes() + " ".join(cmd).encode() + np.__version__.encode()
                         + " ".join(sorted(flags)).encode()).hexdigest()[:16]
    lib = cache_dir() / "kernels" / f"fused_step-{key}.so"
    if not lib.exists():
        try:
            _compile(cmd, lib)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BackendUnavailableError(f"cannot build {lib} with {compiler}: {exc}") from exc
    cdll = ctypes.CDLL(str(lib))
    cdll.edgernn_step.restype = ctypes.c_int
    module = None
    if "-DEDGERNN_PYMODULE" in cmd:
        spec = importlib.util.spec_from_file_location("_fused_step", lib)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return cdll, module


def _compile(cmd: list[str], lib: Path) -> None:
    lib.parent.mkdir(parents=True, exist_ok=True)
    tmp = lib.with_suffix(f".{os.getpid()}.tmp")
    result = subprocess.run([*cmd, str(SOURCE), "-o", str(tmp), "-lm"],
                            capture_output=True, text=True, timeout=120)
    if result.returncode:
        raise BackendUnavailableError(f"compiling {SOURCE.name} failed: {result.stderr[-500:]}")
    os.replace(tmp, lib)


def kernel_status() -> tuple[bool, str]:
    """(usable, reason): whether the fused kernel builds and loads on this machine."""
    lib, _, why = _build()
    return lib is not None, why


def _pad(n: int, m: int) -> int:
    return -(-n // m) * m


def _padded(values: np.ndarray, size: int, fill: float = 0.0) -> np.ndarray:
    """float32 ``values`` followed by ``fill`` up to ``size`` (the kernel's padded columns)."""
    out = np.full(size, fill, np.float32)
    out[:len(values)] = values
    return out


class FusedStep:
    """Packed weights of one model variant and the call into the compiled step."""

    def __init__(self, spec):
        c = spec.config
        if c.num_layers > MAXL:
            raise BackendUnavailableError(f"the fused kernel handles up to {MAXL} layers")
        self._step = _library().edgernn_step
        self.config = c
        self._keep = []  # arrays the C struct points into
        t = spec.tensors
        m = Model(cell=CELL_CODES[(c.cell, c.nonlinearity)], layers=c.num_layers,
                  hidden=c.hidden_size, input=c.input_size, output=c.output_size,
                  sigmoid_out=int(c.output_activation == "sigmoid"), token=int(c.token_input),
                  vocab=c.vocab_size or 0)
        if c.token_input:
            m.embedding = self._ptr(weights.decode(t, "embedding.weight"))
        self.int8 = False
        for k in range(c.num_layers):
            names = (f"rnn.weight_ih_l{k}", f"rnn.bias_ih_l{k}", f"rnn.weight_hh_l{k}",
                     f"rnn.bias_hh_l{k}")
            if c.cell != "gru" and not any(weights.encoding_of(t, n).endswith("int8")
                                           for n in names[::2]):
                # LSTM/RNN float layers: one product over [x | h] (wh[k] stays empty, K = 0)
                w_ih, b_ih, w_hh, b_hh = (weights.decode(t, n) for n in names)
                m.wx[k] = self._f32_mat(np.concatenate([w_ih, w_hh], 1), b_ih + b_hh)
            else:
                m.wx[k] = self._mat(t, *names[:2])
                m.wh[k] = self._mat(t, *names[2:])
        m.head = self._mat(t, "head.weight", "head.bias")
        self._model = m
        self._model_ref = ctypes.byref(m)
        self._npad = max([m.head.Npad] + [m.wx[k].Npad for k in range(c.num_layers)])
        self._kpad = max([m.head.Kpad] + [max(m.wx[k].Kpad, m.wh[k].Kpad)
                                           for k in range(c.num_layers)])
        self._scratch = self._allocate_scratch()
        self._calls: dict = {}

    def describe(self) -> str:
        return "fused C kernel, int8 VNNI" if self.int8 else "fused C kernel, fp32"

    def _ptr(self, a: np.ndarray) -> int:
        self._keep.append(a)
        return a.ctypes.data

    def _mat(self, tensors, name: str, bias_name: str) -> Mat:
        bias = weights.decode(tensors, bias_name)
        if not weights.encoding_of(tensors, name).endswith("int8"):
            return self._f32_mat(weights.decode(tensors, name), bias)
        q, scale = weights.decode_int8(tensors, name)
        n, k = q.shape
        npad, kpad = _pad(n, 16), _pad(k, 4)
        qp = np.zeros((npad, kpad), np.int8)
        qp[:n, :k] = q
        packed = np.ascontiguousarray(
            qp.reshape(npad // 16, 16, kpad // 4, 4).transpose(0, 2, 1, 3))
        rowsum = (128 * qp.astype(np.int32).sum(1)).astype(np.int32)
        self.int8 = True
        return Mat(w=self._ptr(packed), scale=self._ptr(_padded(scale, npad, 1.0)),
                   rowsum=self._ptr(rowsum), bias=self._ptr(_padded(bias, npad)), K=k,
                   Kpad=kpad, Npad=npad, int8=1)

    def _f32_mat(self, w: np.ndarray, bias: np.ndarray) -> Mat:
        n, k = w.shape
        npad = _pad(n, 16)
        wp = np.zeros((npad, k), np.float32)
        wp[:n] = w
        packed = np.ascontiguousarray(wp.reshape(npad // 16, 16, k).transpose(0, 2, 1))
        return Mat(w=self._ptr(packed), bias=self._ptr(_padded(bias, npad)), K=k,
                   Kpad=_pad(k, 4), Npad=npad, int8=0)

    def _allocate_scratch(self) -> list[np.ndarray]:
        """Per-chunk work arrays (the kernel steps CHUNK streams at a time), pointed to by C."""
        c, m = self.config, self._model
        lh = c.num_layers * c.hidden_size
        scratch = [np.zeros((CHUNK, self._npad), np.float32) for _ in range(2)]
        scratch += [np.zeros((CHUNK, max(c.input_size, 1)), np.float32),
                    np.zeros(CHUNK, np.float32), np.zeros((CHUNK, self._kpad), np.uint8),
                    np.zeros((CHUNK, lh), np.float32), np.zeros((CHUNK, lh), np.float32),
                    np.zeros((CHUNK, max(c.input_size, c.hidden_size) + c.hidden_size),
                             np.float32)]
        m.gx, m.gh, m.xin, m.uscale, m.u, m.sh, m.sc, m.xh = (a.ctypes.data for a in scratch)
        return scratch

    def _call(self, batch: int, state_in: dict, state_out: dict):
        key = (id(state_in), id(state_out), batch)
        entry = self._calls.get(key)
        if entry is not None and self._same(entry[1], state_in, state_out):
            return entry
        c = self.config
        xbuf = np.zeros((batch,) if c.token_input else (batch, c.input_size),
                        np.int64 if c.token_input else np.float32)
        ybuf = np.zeros((batch, c.output_size), np.float32)
        io = IO(x=xbuf.ctypes.data, h_in=state_in["h"].ctypes.data,
                h_out=state_out["h"].ctypes.data, y=ybuf.ctypes.data, batch=batch)
        if c.cell == "lstm":
            io.c_in, io.c_out = state_in["c"].ctypes.data, state_out["c"].ctypes.data
        if len(self._calls) >= 64:
            self._calls.clear()
        held = (state_in["h"], state_out["h"])
        if c.cell == "lstm":
            held += (state_in["c"], state_out["c"])
        # the record holds the state dicts and arrays, so their ids and addresses stay valid
        entry = (ctypes.byref(io), held, xbuf, ybuf, io, state_in, state_out)
        self._calls[key] = entry
        return entry

    @staticmethod
    def _same(held: tuple, state_in: dict, state_out: dict) -> bool:
        """Whether the dicts still hold the arrays a call record points into."""
        if held[0] is not state_in["h"] or held[1] is not state_out["h"]:
            return False
        return len(held) == 2 or (held[2] is state_in["c"] and held[3] is state_out["c"])

    def stepper(self, state: dict | None, lock, nan_error: tuple | None, affine: tuple):
        """The compiled fast path (see fused_step.c), or None where the module was not built.

        ``state``: the (validated) batch-1 tensors a call advances in place, or None for a
        stepper used only through ``pool``; ``lock``: the caller's lock, whose being held makes
        a call return None; ``nan_error``: (exception type, message) raised for NaN/Inf input,
        None to propagate; ``affine``: (input shift, input scale, output scale, output shift)
        float32 arrays or None, applied as numpy's preprocessing does."""
        module = _build()[1]
        if module is None:
            return None
        state = state or {}
        error, message = nan_error or (None, "")
        return module.stepper(ctypes.addressof(self._model), self, lock, error, message,
                              state.get("h"), state.get("c"), *affine)

    def step(self, x, state_in, state_out, check_finite: bool, nan_message) -> np.ndarray:
        """Run the compiled step; the states were validated by the backend base."""
        entry = self._call(x.shape[0], state_in, state_out)
        np.copyto(entry[2], x)
        if self._step(self._model_ref, entry[0], check_finite):
            raise InputError(nan_message())
        return entry[3]
