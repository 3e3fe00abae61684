"""Latency of streaming models per step call, with baselines measured side by side in one run.

numpy-only at module level, so it runs on a device with only the runtime installed: runtime
backends load their own engines, and each baseline imports torch or onnxruntime inside the
function that runs it; a missing engine skips that baseline with the reason recorded. Timings
are per call, ``time.perf_counter_ns`` around each call, with the garbage collector paused.

So that a noisy machine cannot favour one row, all rows of one stream count are loaded first
and then timed in interleaved rounds: each round times a share of the calls of every row in turn.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import numpy as np

from .bundle import MANIFEST, Bundle, read_bundle
from .device import device_info
from .errors import BackendUnavailableError, ConfigError

PERCENTILES = (50, 90, 99)
REWARM = 16  # untimed calls when a row resumes in a later round
INPUT_CYCLE = 1024  # stream-samples cycled through while timing (values do not change the cost)
FULLSEQ_CELLS = 1 << 15  # streams x sequence length of the torch full-sequence baseline, at most
FULLSEQ = "torch full-seq"
APIS = ("step", "StreamPool.step", "StreamPool.step_arrays", "step_batch")
TORCH_CELLS = {"lstm": "LSTMCell", "gru": "GRUCell", "rnn": "RNNCell"}


class Skipped(Exception):
    """A row that cannot be measured here; the message says why."""


@dataclass
class Settings:
    """What to measure: see ``edgernn bench --help`` for the meaning of each field."""

    steps: int = 10_000
    warmup: int = 500
    threads: int = 1
    rate: float = 16_000.0
    check_steps: int = 200
    seq_len: int = 1000
    repeats: int = 10
    rounds: int = 5
    apis: tuple[str, ...] | None = None  # calls timed; default: step for 1 stream, else pools
    baselines: bool = True
    seed: int = 0
    options: dict[str, dict] = field(default_factory=dict)  # backend -> load() options

    def validate(self) -> None:
        for name in ("steps", "threads", "check_steps", "seq_len", "repeats", "rounds"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        unknown = set(self.apis or ()) - set(APIS)
        if unknown:
            raise ConfigError(f"unknown apis {sorted(unknown)}; choose from {', '.join(APIS)}")
        if self.warmup < 0 or self.rate <= 0:
            raise ConfigError(f"warmup must be >= 0 and rate > 0 (got {self.warmup}, {self.rate})")


@dataclass
class Row:
    """One measured configuration: an edgernn backend x variant, or a baseline."""

    name: str  # the backend, or the baseline
    kind: str  # "edgernn" or "baseline"
    variant: str
    streams: int
    api: str | None = None  # edgernn rows: the call timed (step, StreamPool.step, step_batch)
    samples_ns: np.ndarray | None = None  # one entry per call (a call steps every stream)
    bulk_us: float | None = None  # per stream-step, for baselines timed in bulk
    engine: str | None = None  # what the backend says it runs (kernel, precision)
    load_s: float | None = None
    contract_error: float | None = None
    contract_note: str | None = None
    variant_bytes: int | None = None
    peak_rss_bytes: int | None = None
    vs_torch_fullseq: float | None = None

    @property
    def per_stream_step_us(self) -> float:
        """Median call time / streams (or the bulk figure): the number ratios are taken on."""
        if self.samples_ns is None:
            return self.bulk_us
        return float(np.median(self.samples_ns)) / 1e3 / self.streams

    @property
    def stream_steps_per_s(self) -> float:
        """Throughput over the whole timed run (mean, outliers included)."""
        if self.samples_ns is None:
            return 1e6 / self.bulk_us
        return self.streams * self.samples_ns.size / (self.samples_ns.sum() / 1e9)

    def latency_us(self) -> dict | None:
        if self.samples_ns is None:
            return None
        us = self.samples_ns / 1e3
        stats = {f"p{p}": float(v) for p, v in zip(PERCENTILES, np.percentile(us, PERCENTILES))}
        return {**stats, "max": float(us.max()), "mean": float(us.mean()), "calls": int(us.size)}

    def to_dict(self, rate: float) -> dict:
        return {
            "name": self.name, "api": self.api, "engine": self.engine, "kind": self.kind,
            "variant": self.variant, "streams": self.streams,
            "latency_us": self.latency_us(),
            "per_stream_step_us": self.per_stream_step_us,
            "stream_steps_per_s": self.stream_steps_per_s,
            "real_time_factor": self.stream_steps_per_s / rate,
            "vs_torch_fullseq": self.vs_torch_fullseq,
            "load_s": self.load_s, "contract_error": self.contract_error,
            "contract_note": self.contract_note, "variant_bytes": self.variant_bytes,
            "peak_rss_bytes": self.peak_rss_bytes,
        }


@dataclass
class Report:
    bundle: Path
    settings: Settings
    rows: list[Row] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    threads: dict = field(default_factory=dict)
    load_average: dict = field(default_factory=dict)  # 1-minute load, before and after
    date: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat("T", "seconds"))

    def skip(self, row: str, reason: str) -> None:
        self.skipped.append({"row": row, "reason": reason})

    def to_dict(self, bundle: Bundle) -> dict:
        s = self.settings
        return {
            "date": self.date,
            "bundle": {"path": str(self.bundle), "bytes": bundle_bytes(bundle),
                       "model": bundle.config.to_dict()},
            "settings": {k: getattr(s, k) for k in s.__dataclass_fields__},
            "threads": self.threads,
            "load_average": self.load_average,
            "device": device_info(),
            "rows": [r.to_dict(s.rate) for r in self.rows],
            "skipped": self.skipped,
            "notes": {
                "per_stream_step_us": "median call time / streams",
                "real_time_factor": "(1 / rate) / mean time per stream-step",
                "vs_torch_fullseq": "per_stream_step_us / torch full-sequence per stream-step "
                                    "(fastest of `repeats` runs over T steps) at the same "
                                    "number of streams (batch)",
                "peak_rss_bytes": "process-wide peak so far (getrusage), not per row",
            },
        }


# --- timing primitives ---------------------------------------------------------------------

def time_calls(call: Callable, inputs: Sequence, steps: int, warmup: int) -> np.ndarray:
    """Nanoseconds of each of ``steps`` calls ``call(inputs[i % len(inputs)])`` after warm-up."""
    n = len(inputs)
    for i in range(warmup):
        call(inputs[i % n])
    clock = time.perf_counter_ns
    out = [0] * steps
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(steps):
            x = inputs[i % n]
            t0 = clock()
            call(x)
            out[i] = clock() - t0
    finally:
        if was_enabled:
            gc.enable()
    return np.asarray(out, dtype=np.int64)


def time_bulk(call: Callable, repeats: int, warmup: bool) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``call()`` (after one untimed call if ``warmup``)."""
    if warmup:
        call()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return times


@dataclass
class Timed:
    """A loaded row; ``more(calls)`` times that many more calls (bulk rows: their share of
    repeats) and updates the row."""

    row: Row
    more: Callable[[int], None]


def per_call(row: Row, call: Callable, inputs: Sequence, s: Settings) -> Timed:
    """Time ``call`` once per input (cycled), warm-up before the first round."""
    chunks: list[np.ndarray] = []

    def more(calls: int) -> None:
        chunks.append(time_calls(call, inputs, calls, REWARM if chunks else s.warmup))
        row.samples_ns = np.concatenate(chunks)

    return Timed(row, more)


def rounds(steps: int, count: int) -> list[int]:
    """``steps`` calls split into ``count`` near-equal rounds (no empty round)."""
    return [n for n in np.diff(np.linspace(0, steps, count + 1).round().astype(int)) if n]


def peak_rss_bytes() -> int | None:
    """Peak resident set size of this process so far (None where getrusage is unavailable)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def load_average() -> float | None:
    """The 1-minute system load (runnable processes): how busy the machine was."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # Windows
        return None


def bundle_bytes(bundle: Bundle) -> int:
    files = sum(info["size"] for info in bundle.manifest["files"].values())
    return files + (bundle.path / MANIFEST).stat().st_size


@contextmanager
def pinned_threads(threads: int):
    """Limit BLAS/OpenMP pools to ``threads`` for the block; yields how that was done."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
        pinned = all(v == str(threads) for v in env.values())
        how = "environment" if pinned else "not pinned: install threadpoolctl or set " \
            f"OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} before starting"
        yield {"requested": threads, "blas": how}
        return
    with threadpool_limits(limits=threads):
        yield {"requested": threads, "blas": "threadpoolctl"}


# --- inputs and the torch reference ----------------------------------------------------------

def make_inputs(bundle: Bundle, streams: int, steps: int, seed: int) -> np.ndarray:
    """Seeded raw inputs, one row per call: (steps, streams, F) float32 or (steps, streams) ids."""
    rng = np.random.default_rng(seed)
    c = bundle.config
    if c.token_input:
        return rng.integers(0, c.vocab_size, size=(steps, streams), dtype=np.int64)
    return rng.standard_normal((steps, streams, c.input_size), dtype=np.float32)


def batch_first(xs: np.ndarray) -> np.ndarray:
    """(steps, streams, ...) -> (streams, steps, ...), contiguous: what torch's forward takes."""
    return np.ascontiguousarray(np.swapaxes(xs, 0, 1))


def torch_reference(bundle: Bundle, variant: str, threads: int):
    """(torch, the RecurrentModel holding ``variant``'s decoded weights); Skipped without torch."""
    try:
        import torch

        from edgernn.bundle_io import load_model
    except ImportError as exc:
        raise Skipped(f"needs torch, which is not installed ({exc})") from exc
    torch.set_num_threads(threads)
    return torch, load_model(bundle, variant)


def reference_outputs(bundle: Bundle, variant: str, xs: np.ndarray, threads: int) -> np.ndarray:
    """What stepping raw ``xs`` (streams, steps, ...) must give: ``step_outputs`` with the
    bundle's preprocessing, (streams, steps, O)."""
    torch, model = torch_reference(bundle, variant, threads)
    prep = bundle.preprocessing
    if not bundle.config.token_input:  # as the runtime does: (x - mean) / std, each optional
        xs = (xs - np.float32(prep.get("input_mean", 0))) / np.float32(prep.get("input_std", 1))
    with torch.inference_mode():
        ys = model.step_outputs(torch.from_numpy(np.ascontiguousarray(xs))).numpy()
    if bundle.config.task == "regression":  # as the runtime does: outputs back to target units
        ys = ys * np.float32(prep.get("target_std", 1.0)) + np.float32(prep.get("target_mean", 0))
    return ys


# --- edgernn rows ----------------------------------------------------------------------------

def edgernn_row(bundle: Bundle, backend: str, variant: str, streams: int, s: Settings,
                api: str = "step") -> Timed:
    """Load ``variant`` on ``backend`` and check the contract; then calls of ``api`` are timed:
    ``step`` (one stream), ``StreamPool.step`` ({id: x} for every stream),
    ``StreamPool.step_arrays`` (ids and a (streams, F) array) or ``step_batch`` (the model's
    array call on one State)."""
    from . import StreamPool, load

    options = s.options.get(backend, {})
    t0 = time.perf_counter()
    try:
        model = load(bundle.path, backend=backend, variant=variant, threads=s.threads, **options)
    except BackendUnavailableError as exc:
        raise Skipped(str(exc)) from exc
    except TypeError as exc:  # an option the backend does not take
        if not options:
            raise
        raise ConfigError(f"backend {backend!r} does not take options {options}: {exc}") from exc
    row = Row(backend, "edgernn", variant, streams, api=api, engine=model.backend.describe(),
              load_s=time.perf_counter() - t0,
              variant_bytes=bundle.variant(variant).get("size_bytes"))
    if api == "step":
        call, feed, outputs = model.step, lambda xs: list(xs[:, 0]), lambda o: np.stack(o)[:, None]
    elif api == "step_batch":
        call = partial(model.step_batch, state=model.new_state(streams))
        feed, outputs = list, np.stack
    elif api == "StreamPool.step_arrays":
        pool = StreamPool(model, capacity=streams)
        call = partial(pool.step_arrays, [pool.open() for _ in range(streams)])
        feed, outputs = list, np.stack
    else:
        pool = StreamPool(model, capacity=streams)
        ids = [pool.open() for _ in range(streams)]
        call = pool.step

        def feed(xs: np.ndarray) -> list:
            return [dict(zip(ids, x)) for x in xs]

        def outputs(outs: list) -> np.ndarray:
            return np.stack([[o[i] for i in ids] for o in outs])

    check = make_inputs(bundle, streams, s.check_steps, s.seed + 1)
    got = outputs([call(x) for x in feed(check)])
    row.contract_error, row.contract_note = _contract(bundle, variant, check, got, s.threads)
    row.peak_rss_bytes = peak_rss_bytes()
    return per_call(row, call, feed(make_inputs(bundle, streams, _cycle(streams), s.seed)), s)


def _cycle(streams: int) -> int:
    return max(16, INPUT_CYCLE // streams)


def _contract(bundle: Bundle, variant: str, xs: np.ndarray, got: np.ndarray,
              threads: int) -> tuple[float | None, str]:
    """Max abs difference of stepped outputs ``got`` (steps, streams, O) for inputs ``xs`` vs
    the torch model holding the variant's weights."""
    try:
        want = reference_outputs(bundle, variant, batch_first(xs), threads)
    except Skipped as exc:
        return None, str(exc)
    return float(np.abs(batch_first(got) - want).max()), f"max abs vs torch, {len(xs)} steps"


# --- baselines -------------------------------------------------------------------------------

def torch_fullseq(bundle: Bundle, variant: str, streams: int, s: Settings) -> Timed:
    """torch's full-sequence forward (``step_outputs``) over T steps, per stream-step: the
    fastest of ``repeats`` runs spread over the rounds. A run lasts milliseconds, long enough to
    be preempted on a busy machine where a median call of a few µs is not, so the baseline takes
    its best run: ratios against it can only err in torch's favour."""
    torch, model = torch_reference(bundle, variant, s.threads)
    seq = max(1, min(s.seq_len, FULLSEQ_CELLS // streams))
    x = torch.from_numpy(batch_first(make_inputs(bundle, streams, seq, s.seed)))
    row = Row(FULLSEQ, "baseline", variant, streams, peak_rss_bytes=peak_rss_bytes(),
              engine=f"nn.{type(model.rnn).__name__}, T={seq}")
    times: list[float] = []

    def more(calls: int) -> None:
        with torch.inference_mode():
            times.extend(time_bulk(lambda: model.step_outputs(x), max(1, s.repeats // s.rounds),
                                   warmup=not times))
        row.bulk_us = min(times) * 1e6 / (seq * streams)

    return Timed(row, more)


def torch_cell(bundle: Bundle, variant: str, streams: int, s: Settings) -> Timed:
    """torch ``nn.LSTMCell``/``GRUCell``/``RNNCell`` per layer + head, stepping all streams."""
    torch, model = torch_reference(bundle, variant, s.threads)
    c = bundle.config
    cells = []
    for k in range(c.num_layers):
        cls = getattr(torch.nn, TORCH_CELLS[c.cell])
        kwargs = {"nonlinearity": c.nonlinearity} if c.cell == "rnn" else {}
        cell = cls(c.input_size if k == 0 else c.hidden_size, c.hidden_size, **kwargs)
        for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, p).data.copy_(getattr(model.rnn, f"{p}_l{k}"))
        cells.append(cell.eval())
    zeros = torch.zeros(streams, c.hidden_size)
    state = [(zeros.clone(), zeros.clone()) if c.cell == "lstm" else zeros.clone() for _ in cells]

    def step(x):
        if model.embedding is not None:
            x = model.embedding(x)
        for k, cell in enumerate(cells):
            state[k] = cell(x, state[k])
            x = state[k][0] if c.cell == "lstm" else state[k]
        return model.activate(model.head(x))

    def step_no_grad(x):
        with torch.inference_mode():
            return step(x)

    xs = torch.from_numpy(make_inputs(bundle, streams, _cycle(streams), s.seed))
    row = Row(f"torch {TORCH_CELLS[c.cell]}", "baseline", variant, streams,
              engine=f"{c.num_layers} layer(s) + head, batch {streams}",
              peak_rss_bytes=peak_rss_bytes())
    return per_call(row, step_no_grad, list(xs), s)


def ort_run(bundle: Bundle, variant: str, streams: int, s: Settings) -> Timed:
    """onnxruntime's plain ``session.run`` on the bundle's exported step graph, state fed back."""
    rel = bundle.manifest.get("exports", {}).get("onnx", {}).get(variant, {}).get("step")
    if rel is None:
        raise Skipped(f"the bundle has no ONNX step graph for {variant!r} (edgernn export)")
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise Skipped(f"needs onnxruntime, which is not installed ({exc})") from exc
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = s.threads, 1
    sess = ort.InferenceSession(str(bundle.file(rel)), opts, providers=["CPUExecutionProvider"])
    outputs = [o.name for o in sess.get_outputs()]
    feeds = {i.name: np.zeros((streams, *i.shape[1:]), np.float32)
             for i in sess.get_inputs() if i.name.startswith("state_")}
    loop = {i: f"state_{n[len('state_'):-len('_out')]}_in" for i, n in enumerate(outputs)
            if n.startswith("state_")}

    def step(x):
        feeds["x"] = x
        out = sess.run(None, feeds)
        for i, name in loop.items():
            feeds[name] = out[i]

    row = Row("onnxruntime run", "baseline", variant, streams, engine=f"session.run, {rel}",
              peak_rss_bytes=peak_rss_bytes())
    return per_call(row, step, list(make_inputs(bundle, streams, _cycle(streams), s.seed)), s)


# --- the whole run ---------------------------------------------------------------------------

def plan(backends: Sequence[str], variants: Sequence[str], streams: int,
         s: Settings) -> list[tuple]:
    """The rows of one stream count: (label, ``prepare(bundle, streams=, s=) -> Timed``).

    By default one stream times ``step``; more time ``StreamPool.step`` and its array form
    ``StreamPool.step_arrays``.
    """
    base = "fp32" if "fp32" in variants or not variants else variants[0]
    apis = s.apis or (APIS[:1] if streams == 1 else APIS[1:3])
    if streams > 1 and "step" in apis:
        raise ConfigError(f"the 'step' call takes one stream; time one of {', '.join(APIS[1:])}")
    tasks = [(f"{b} {v} {api}", partial(edgernn_row, backend=b, variant=v, api=api))
             for b in backends for v in variants for api in apis]
    if s.baselines:
        tasks.insert(0, (f"{FULLSEQ} {base}", partial(torch_fullseq, variant=base)))
        tasks.append((f"torch cell {base}", partial(torch_cell, variant=base)))
        tasks += [(f"onnxruntime run {v}", partial(ort_run, variant=v)) for v in variants]
    return tasks


def run(bundle_path, backends: Sequence[str] | None = None, variants: Sequence[str] | None = None,
        streams: Sequence[int] = (1,), settings: Settings | None = None,
        on_task: Callable[[int, int, str], None] | None = None) -> tuple[Report, Bundle]:
    """Measure every backend x variant x streams count (and baselines); returns the report.

    ``backends`` defaults to every backend available here, ``variants`` to all in the bundle.
    Unknown names raise (listing what exists); an unavailable backend, or a baseline whose engine
    or graph is missing, is skipped with its reason; if no edgernn row could be measured at all,
    BackendUnavailableError says why. ``on_task(done, total, label)`` reports progress.
    """
    s = settings or Settings()
    s.validate()
    if not streams or any(not isinstance(n, int) or n < 1 for n in streams):
        raise ConfigError(f"streams must be positive integers, got {list(streams)}")
    bundle = read_bundle(bundle_path)
    variants = list(variants or bundle.variants)
    for v in variants:
        bundle.variant(v)
    report = Report(Path(bundle_path), s)
    usable = _usable_backends(backends, report)
    stray = sorted(set(s.options) - set(backends or usable))
    if stray:
        raise ConfigError(f"options given for {stray}, which this run does not measure")
    shares = rounds(s.steps, s.rounds)
    # progress units: one per row loaded and one per row per round
    total = sum(len(plan(usable, variants, n, s)) for n in streams) * (1 + len(shares))
    done = 0

    def tick(label: str) -> None:
        nonlocal done
        done += 1
        if on_task:
            on_task(done, total, label)

    report.load_average["before"] = load_average()
    with pinned_threads(s.threads) as report.threads:
        for n in streams:
            loaded = []
            for label, prepare in plan(usable, variants, n, s):
                try:
                    loaded.append((label, prepare(bundle, streams=n, s=s)))
                except Skipped as exc:
                    total -= len(shares)
                    if not any(x["reason"] == str(exc) for x in report.skipped):
                        report.skip(f"{label} x{n}", str(exc))
                tick(f"loaded {label} x{n}")
            for k, calls in enumerate(shares):
                for label, timed in loaded:
                    timed.more(calls)
                    tick(f"round {k + 1}/{len(shares)}: {label} x{n}")
            report.rows += [timed.row for _, timed in loaded]
    report.load_average["after"] = load_average()
    if not any(r.kind == "edgernn" for r in report.rows):
        reasons = "; ".join(f"{x['row']}: {x['reason']}" for x in report.skipped)
        raise BackendUnavailableError(f"nothing could be measured ({reasons})")
    _ratios(report.rows)
    return report, bundle


def _usable_backends(requested: Sequence[str] | None, report: Report) -> list[str]:
    """The requested backends that can run here; the others are recorded as skipped."""
    from .backends import BACKENDS, backend_status

    status = backend_status()
    if requested is None:
        return [name for name, st in status.items() if st["available"]]
    unknown = [b for b in requested if b != "auto" and b not in BACKENDS]
    if unknown or not requested:
        raise ConfigError(f"unknown backend(s) {unknown}; choose from auto, {', '.join(BACKENDS)}")
    usable = []
    for b in dict.fromkeys(requested):
        if b == "auto" or status[b]["available"]:
            usable.append(b)
        else:
            report.skip(b, status[b]["reason"])
    return usable


def _ratios(rows: list[Row]) -> None:
    reference = {r.streams: r.per_stream_step_us for r in rows if r.name == FULLSEQ}
    for r in rows:
        if r.streams in reference:
            r.vs_torch_fullseq = r.per_stream_step_us / reference[r.streams]
