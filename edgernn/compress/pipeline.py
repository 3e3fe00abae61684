"""compress_bundle: add int8 / fp16 / pruned variants to a bundle, each scored on held-out data."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgernn.bundle_io import load_model
from edgernn.compress.evaluation import HeldOut
from edgernn.compress.finetune import finetune, finetune_config, steps_per_epoch
from edgernn.compress.heldout_data import training_data
from edgernn.compress.masks import apply_masks, check_sparsity, parse_pattern
from edgernn.compress.prune import SCHEDULES, final_masks, pattern_keeper, unstructured_keeper
from edgernn.compress.quantize import encode_tensors, fallback_search
from edgernn.compress.structured import prune_units, units_to_keep
from edgernn.compress.variants import write_variant
from edgernn.models import RecurrentModel
from edgernn.runtime.bundle import Bundle, read_bundle
from edgernn.runtime.errors import BundleError, ConfigError


@dataclass
class Options:
    """What to produce; ``validate`` rejects bad values before any work starts."""

    int8: bool = True
    per_tensor: bool = False
    fp16: bool = False
    sparsity: float | None = None
    schedule: str = "gradual"
    finetune_epochs: int = 2
    structured: float | None = None
    pattern: str | None = None
    max_drop: float | None = None

    def validate(self, hidden_size: int) -> None:
        if self.sparsity is not None:
            check_sparsity(self.sparsity)
        if self.pattern is not None:
            parse_pattern(self.pattern)
        if self.structured is not None:
            units_to_keep(hidden_size, self.structured)
        if self.schedule not in SCHEDULES:
            raise ConfigError(
                f"unknown schedule {self.schedule!r}; choose {' or '.join(SCHEDULES)}")
        if self.finetune_epochs < 0:
            raise ConfigError(f"finetune_epochs must be >= 0, got {self.finetune_epochs}")
        if self.max_drop is not None and (self.max_drop < 0 or not self.int8):
            raise ConfigError("max_drop needs int8 and a value >= 0 (absolute metric drop)")
        if self.per_tensor and not self.int8:
            raise ConfigError("per_tensor (--per-tensor) applies to int8; add int8 (--int8)")
        if not (self.int8 or self.fp16 or self.pruning):
            raise ConfigError("nothing to do: ask for int8, fp16, sparsity, structured or pattern")

    @property
    def pruning(self) -> bool:
        return any(v is not None for v in (self.sparsity, self.structured, self.pattern))


class Compressor:
    """Produces and writes variants one by one; each write is atomic and verified."""

    def __init__(self, bundle: Bundle, options: Options, progress: bool, seed: int,
                 data: str | Path | None, dataset):
        self.bundle, self.options, self.progress = bundle, options, progress
        self.held = HeldOut(training_data(bundle, data, dataset))
        train_config = (bundle.manifest.get("provenance") or {}).get("train_config")
        self.ft = finetune_config(train_config, options.finetune_epochs, seed)
        self.fp32 = load_model(bundle, "fp32")
        self.base = self.held.metrics(self.fp32)
        self.fp32_bytes = bundle.variant("fp32")["size_bytes"]
        self.reports = [self._report("fp32", bundle.variant("fp32"), 0.0)]

    def _report(self, name: str, record: dict, seconds: float) -> dict:
        metrics = record["metrics"] if name != "fp32" else self.base
        return {
            "variant": name, "precision": record["precision"], "size_bytes": record["size_bytes"],
            "size_ratio": record["size_bytes"] / self.fp32_bytes,
            "nonzero_params": record["nonzero_params"], "metric": self.held.metric,
            "test": self.held.value(metrics), "val": self.held.value(metrics, "val"),
            "delta": self.held.delta(metrics, self.base), "time_s": round(seconds, 3),
            **{k: record[k] for k in ("fallback", "budget_met", "max_drop", "measured_drop")
               if k in record},
        }

    def write(self, name: str, config, entries: dict, started: float, metrics: dict | None = None,
              **extra) -> None:
        metrics = metrics or self.held.score(config, entries)
        seconds = time.perf_counter() - started
        if config != self.bundle.config:
            extra["model"] = config.to_dict()
        self.bundle, record = write_variant(
            self.bundle, name, entries, metrics, delta=self.held.delta(metrics, self.base),
            time_s=round(seconds, 3), **extra)
        self.reports.append(self._report(name, record, seconds))

    def quantized(self) -> None:
        o = self.options
        name = "int8-per-tensor" if o.per_tensor else "int8"
        started, tensors = time.perf_counter(), self.fp32.to_numpy()
        extra = {"per_channel": not o.per_tensor}
        if o.max_drop is None:
            entries = encode_tensors(tensors, int8=True, per_channel=not o.per_tensor)
            self.write(name, self.bundle.config, entries, started, **extra)
            return
        result = fallback_search(
            tensors, o.max_drop, per_channel=not o.per_tensor,
            score=lambda e: self.held.score(self.bundle.config, e),
            drop=lambda m: self.held.worst_drop(m, self.base),
            sensitivity_drop=lambda m: self.held.drop(m, self.base, "val"),
        )
        self.write(name, self.bundle.config, result.entries, started, result.metrics,
                   fallback=result.fallback, max_drop=o.max_drop, budget_met=result.met,
                   measured_drop=round(result.drop, 6), **extra)

    def half(self) -> None:
        started = time.perf_counter()
        self.write("fp16", self.bundle.config, encode_tensors(self.fp32.to_numpy(), fp16=True),
                   started)

    def pruned(self, name: str, make: Callable[[RecurrentModel], RecurrentModel], **extra) -> None:
        """Write ``name`` from ``make(copy of fp32)``, and ``name-int8`` too when int8 is on."""
        started = time.perf_counter()
        model = make(copy.deepcopy(self.fp32))
        tensors = model.to_numpy()
        self.write(name, model.config, encode_tensors(tensors), started, **extra)
        if self.options.int8:
            per_channel = not self.options.per_tensor
            entries = encode_tensors(tensors, int8=True, per_channel=per_channel)
            self.write(f"{name}-int8", model.config, entries, started, per_channel=per_channel,
                       **extra)

    def _finetune(self, model: RecurrentModel, after_step=None) -> RecurrentModel:
        return finetune(model, self.held.dataset, self.ft, self.options.finetune_epochs,
                        after_step, self.progress)

    def unstructured(self) -> None:
        o = self.options

        def make(model):
            total = o.finetune_epochs * steps_per_epoch(self.held.dataset, self.ft)
            keeper = unstructured_keeper(model, o.sparsity, o.schedule, total)
            model = self._finetune(model, keeper)
            apply_masks(model, final_masks(model, keeper, o.sparsity))
            return model

        self.pruned(f"sparse{round(o.sparsity * 100)}", make, sparsity=o.sparsity,
                    schedule=o.schedule, finetune_epochs=o.finetune_epochs)

    def structured(self) -> None:
        o = self.options
        train = self.held.dataset.train

        def make(model):
            import torch

            x = torch.as_tensor(train.X[:1024])
            lengths = None if train.lengths is None else train.lengths[:1024]
            return self._finetune(prune_units(model, o.structured, x, lengths))

        self.pruned(f"structured{round(o.structured * 100)}", make, structured=o.structured,
                    finetune_epochs=o.finetune_epochs)

    def semi_structured(self) -> None:
        o = self.options
        n, m = parse_pattern(o.pattern)

        def make(model):
            keeper = pattern_keeper(model, n, m)
            model = self._finetune(model, keeper)
            apply_masks(model, keeper.masks)
            return model

        self.pruned(f"sparse{n}of{m}", make, pattern=f"{n}:{m}", sparsity=1 - n / m,
                    finetune_epochs=o.finetune_epochs)


def compress_bundle(
    path: str | Path, int8: bool = True, per_tensor: bool = False, fp16: bool = False,
    sparsity: float | None = None, schedule: str = "gradual", finetune_epochs: int = 2,
    structured: float | None = None, pattern: str | None = None, max_drop: float | None = None,
    progress: bool = False, seed: int = 0, data: str | Path | None = None, dataset=None,
) -> list[dict]:
    """Add compressed variants to the bundle at ``path``; returns one report per variant.

    Variants: ``int8`` (``int8-per-tensor`` with ``per_tensor``; under ``max_drop`` the most
    sensitive matrices fall back to fp32), ``fp16``, ``sparse{S}`` (unstructured, ``schedule``
    gradual or oneshot), ``structured{P}`` (hidden units removed), ``sparse{N}of{M}``
    (``pattern="N:M"``); with ``int8`` each pruned variant also gets an ``-int8`` twin. Pruned
    variants are fine-tuned for ``finetune_epochs`` epochs. The first report is fp32's. A report
    with ``budget_met`` False means no mix met ``max_drop``; that variant is kept, labelled.
    Held-out scores come from the built-in dataset the bundle records, from ``data`` (the .npz
    or CSV file it was trained on, read with the recorded options) or from a ``Dataset``;
    either way it must reproduce the bundle's preprocessing statistics.
    """
    options = Options(int8, per_tensor, fp16, sparsity, schedule, finetune_epochs, structured,
                      pattern, max_drop)
    if Path(path).is_file():
        raise BundleError(f"{path} is a file; compress adds variants to a bundle directory "
                          "(unzip it first, pack it again afterwards)")
    bundle = read_bundle(path)
    options.validate(bundle.config.hidden_size)
    job = Compressor(bundle, options, progress, seed, data, dataset)
    if int8:
        job.quantized()
    if fp16:
        job.half()
    if sparsity is not None:
        job.unstructured()
    if structured is not None:
        job.structured()
    if pattern is not None:
        job.semi_structured()
    return job.reports
