"""Training: ``fit`` a RecurrentModel on a Dataset, ``evaluate`` it, ``train_bundle`` the whole job.

``fit`` uses Adam/AdamW, gradient-norm clipping, a plateau or cosine schedule, early stopping on
the validation metric (best weights kept), truncated BPTT with carried state, and an atomic
per-epoch checkpoint it can resume from. ``after_step(model, global_step)`` runs after every
optimizer step (pruning masks are re-applied there during fine-tuning).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from edgernn.data.types import Dataset, Split
from edgernn.models import RecurrentModel
from edgernn.runtime.config import ModelConfig
from edgernn.runtime.errors import BundleError, ConfigError

OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("plateau", "cosine", "none")
CHECKPOINT_FORMAT = "edgernn-train-checkpoint-1"


@dataclass
class TrainConfig:
    """How to train. ``clip`` is the gradient-norm limit (0 = off); ``patience`` the epochs
    without a better validation metric before stopping (0 = never); ``tbptt`` the truncated-BPTT
    window in steps (0 = full sequences); ``checkpoint`` a file written after every epoch, and
    ``resume`` continues from it."""

    epochs: int = 40
    batch_size: int = 32
    lr: float = 5e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    clip: float = 1.0
    schedule: str = "plateau"
    patience: int = 8
    seed: int = 0
    tbptt: int = 0
    checkpoint: str | None = None
    resume: bool = False

    def __post_init__(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ConfigError(msg)

        need(self.optimizer in OPTIMIZERS,
             f"unknown optimizer {self.optimizer!r}; choose {', '.join(OPTIMIZERS)}")
        need(self.schedule in SCHEDULES,
             f"unknown schedule {self.schedule!r}; choose {', '.join(SCHEDULES)}")
        need(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        need(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        need(self.lr > 0, f"lr must be > 0, got {self.lr}")
        for name in ("weight_decay", "clip", "patience", "tbptt"):
            need(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class TrainResult:
    """What ``fit`` returns; ``model`` holds the best weights (by the validation metric)."""

    model: RecurrentModel
    history: list[dict]
    best_metric: float
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    wall_time_s: float
    global_step: int = 0
    resumed_from: int | None = None


def build_model(dataset: Dataset, cell: str = "lstm", layers: int = 2, hidden: int = 64,
                dropout: float = 0.0, bidirectional: bool = False, nonlinearity: str = "tanh",
                embedding_dim: int = 32, seed: int = 0) -> RecurrentModel:
    """A RecurrentModel shaped for ``dataset``, initialized with ``init_weights(seed)``."""
    if bidirectional and dataset.task == "language_model":
        raise ConfigError("a bidirectional language model would see the tokens it predicts; "
                          "drop --bidirectional")
    config = ModelConfig(
        cell=cell, input_size=embedding_dim if dataset.vocab_size else dataset.input_size,
        hidden_size=hidden, num_layers=layers, output_size=dataset.output_size, head=dataset.head,
        task=dataset.task, nonlinearity=nonlinearity, dropout=dropout,
        bidirectional=bidirectional, vocab_size=dataset.vocab_size,
    )
    return RecurrentModel(config).init_weights(seed)


# ----------------------------------------------------------------------------- batches and loss

def _batches(split: Split, batch_size: int, per_step: bool, rng: np.random.Generator | None):
    """Batches (X, y, lengths) as tensors, shuffled by ``rng``, trimmed to the longest sequence."""
    order = rng.permutation(len(split)) if rng is not None else np.arange(len(split))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        X, y, lengths = split.X[idx], split.y[idx], split.lengths
        if lengths is not None:
            lengths = lengths[idx]
            t = int(lengths.max())
            X, y = X[:, :t], (y[:, :t] if per_step else y)
            lengths = torch.from_numpy(lengths)
        yield torch.from_numpy(X), torch.from_numpy(y), lengths


def _mask(y: torch.Tensor, lengths, head: str) -> torch.Tensor | None:
    if head != "every" or lengths is None:
        return None
    return torch.arange(y.shape[1])[None, :] < lengths[:, None]


def _elementwise_loss(out: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    """Loss per sequence (head last) or per step (head every), before masking."""
    if task == "regression":
        return F.mse_loss(out, y.float(), reduction="none").mean(dim=-1)
    return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1).long(),
                           reduction="none").reshape(y.shape)


def _reduce(values: torch.Tensor, mask) -> tuple[torch.Tensor, int]:
    """(sum, count) over the valid elements."""
    if mask is None:
        return values.sum(), values.numel()
    return values[mask].sum(), int(mask.sum())


# ----------------------------------------------------------------------------- evaluation

@torch.no_grad()
def evaluate(model: RecurrentModel, split: Split, dataset: Dataset, batch_size: int = 256) -> dict:
    """Held-out metrics: accuracy (classification), rmse/mae in original target units
    (regression), loss/bpc (language model); always includes ``dataset.metric`` and ``loss``."""
    was_training = model.training
    model.eval()
    task, head = dataset.task, dataset.head
    loss_sum, count, correct, sq_err, abs_err, n_values = 0.0, 0, 0, 0.0, 0.0, 0
    std = torch.tensor(dataset.preprocessing.get("target_std", [1.0]), dtype=torch.float32)
    for X, y, lengths in _batches(split, batch_size, head == "every", None):
        out = model(X, lengths)
        mask = _mask(y, lengths, head)
        s, n = _reduce(_elementwise_loss(out, y, task), mask)
        loss_sum, count = loss_sum + float(s), count + n
        if task == "regression":
            diff = (out - y.float()) * std
            keep = (mask[..., None].expand_as(diff) if mask is not None
                    else torch.ones_like(diff, dtype=torch.bool))
            sq_err += float((diff[keep] ** 2).sum())
            abs_err += float(diff[keep].abs().sum())
            n_values += int(keep.sum())
        else:
            hits = out.argmax(dim=-1) == y
            correct += int(hits[mask].sum() if mask is not None else hits.sum())
    model.train(was_training)
    metrics = {"loss": loss_sum / max(count, 1)}
    if task == "regression":
        metrics.update(rmse=math.sqrt(sq_err / max(n_values, 1)), mae=abs_err / max(n_values, 1))
    elif task == "language_model":
        metrics.update(bpc=metrics["loss"] / math.log(2), accuracy=correct / max(count, 1))
    else:
        metrics["accuracy"] = correct / max(count, 1)
    return metrics


# ----------------------------------------------------------------------------- fitting

class _Loop:
    """One optimizer, schedule and step counter around a model; one ``epoch`` call per epoch."""

    def __init__(self, model, dataset: Dataset, config: TrainConfig, after_step):
        self.model, self.dataset, self.config, self.after_step = model, dataset, config, after_step
        opt_cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
        self.opt = opt_cls(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.sched = None
        if config.schedule == "plateau":
            mode = "max" if dataset.higher_is_better else "min"
            self.sched = torch.optim.lr_scheduler.ReduceLROnPlateau(self.opt, mode=mode, factor=0.5,
                                                                    patience=2)
        elif config.schedule == "cosine":
            self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(
                self.opt, T_max=config.epochs, eta_min=config.lr * 0.01)
        self.global_step = 0
        if config.tbptt and dataset.train.lengths is not None:
            raise ConfigError("tbptt needs equal-length sequences; this dataset has lengths "
                              "(variable-length batches are packed instead); set tbptt=0")

    def epoch(self, epoch: int, on_batch: Callable[[], None]) -> float:
        """Train one epoch; returns the mean training loss."""
        torch.manual_seed(self.config.seed * 100_003 + epoch)
        rng = np.random.default_rng([self.config.seed, epoch])
        self.model.train()
        total, count = 0.0, 0
        for X, y, lengths in _batches(self.dataset.train, self.config.batch_size,
                                         self.dataset.head == "every", rng):
            s, n = self._batch(X, y, lengths)
            total, count = total + s, count + n
            on_batch()
        return total / max(count, 1)

    def _batch(self, X, y, lengths) -> tuple[float, int]:
        k = self.config.tbptt
        if not k or X.shape[1] <= k:
            return self._step(X, y, lengths, None)[:2]
        state, total, count = None, 0.0, 0
        every = self.dataset.head == "every"
        for start in range(0, X.shape[1], k):
            chunk = X[:, start:start + k]
            if every or start + k >= X.shape[1]:
                target = y[:, start:start + k] if every else y
                s, n, state = self._step(chunk, target, None, state)
                total, count = total + s, count + n
            else:  # many-to-one: carry the state through, learn on the last window
                with torch.no_grad():
                    _, state = self.model(chunk, state=state, return_state=True)
            state = _detach(state)
        return total, count

    def _step(self, X, y, lengths, state):
        out, new_state = self.model(X, lengths, state=state, return_state=True)
        losses = _elementwise_loss(out, y, self.dataset.task)
        s, n = _reduce(losses, _mask(y, lengths, self.dataset.head))
        self.opt.zero_grad(set_to_none=True)
        (s / max(n, 1)).backward()
        if self.config.clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip)
        self.opt.step()
        self.global_step += 1
        if self.after_step is not None:
            self.after_step(self.model, self.global_step)
        return float(s.detach()), n, new_state

    def schedule(self, metric: float) -> None:
        if isinstance(self.sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.sched.step(metric)
        elif self.sched is not None:
            self.sched.step()

    @property
    def lr(self) -> float:
        return float(self.opt.param_groups[0]["lr"])


def _detach(state):
    if state is None:
        return None
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def _better(value: float, best: float | None, higher: bool) -> bool:
    return best is None or (value > best if higher else value < best)


def _progress_bar(enabled: bool):
    """The console's progress bar, or a silent one (the library then never loads the CLI)."""
    if enabled:
        from edgernn.cli.console import progress

        return progress()
    from rich.progress import Progress

    return Progress(disable=True)


def fit(model: RecurrentModel, dataset: Dataset, config: TrainConfig | None = None,
        after_step: Callable[[RecurrentModel, int], None] | None = None,
        progress: bool = True) -> TrainResult:
    """Train ``model`` on ``dataset.train``, early-stopping on ``dataset.val``'s metric."""
    config = config or TrainConfig()
    started = time.perf_counter()
    loop = _Loop(model, dataset, config, after_step)
    state = {"epoch": 0, "history": [], "best_metric": None, "best_epoch": 0, "bad_epochs": 0,
             "best_model": {k: v.clone() for k, v in model.state_dict().items()}}
    resumed_from = None
    if config.resume:
        if not config.checkpoint:
            raise ConfigError("resume needs TrainConfig.checkpoint, the file to resume from")
        state = _load_checkpoint(Path(config.checkpoint), model, loop, dataset)
        resumed_from = state["epoch"]
    n_batches = math.ceil(len(dataset.train) / config.batch_size)
    metric = dataset.metric
    stopped = False
    with _progress_bar(progress) as bar:
        task = bar.add_task(f"train {dataset.name}", total=config.epochs * n_batches,
                            completed=state["epoch"] * n_batches, status="")
        for epoch in range(state["epoch"] + 1, config.epochs + 1):
            if config.patience and state["bad_epochs"] >= config.patience:
                stopped = True
                break
            tick = time.perf_counter()
            train_loss = loop.epoch(epoch, lambda: bar.advance(task))
            val = evaluate(model, dataset.val, dataset)
            loop.schedule(val[metric])
            record = {"epoch": epoch, "train_loss": train_loss, "lr": loop.lr,
                      "seconds": round(time.perf_counter() - tick, 3),
                      **{f"val_{k}": v for k, v in val.items()}}
            state["history"].append(record)
            if _better(val[metric], state["best_metric"], dataset.higher_is_better):
                state.update(best_metric=val[metric], best_epoch=epoch, bad_epochs=0,
                             best_model={k: v.clone() for k, v in model.state_dict().items()})
            else:
                state["bad_epochs"] += 1
            state["epoch"] = epoch
            bar.update(task, status=f"val {metric} {val[metric]:.4g} "
                                    f"(best {state['best_metric']:.4g})")
            if config.checkpoint:
                _save_checkpoint(Path(config.checkpoint), model, loop, dataset, state)
    model.load_state_dict(state["best_model"])
    model.eval()
    return TrainResult(
        model=model, history=state["history"], best_metric=state["best_metric"],
        best_epoch=state["best_epoch"], epochs_run=state["epoch"], stopped_early=stopped,
        wall_time_s=time.perf_counter() - started, global_step=loop.global_step,
        resumed_from=resumed_from,
    )


# ----------------------------------------------------------------------------- checkpoints

def _save_checkpoint(path: Path, model, loop: _Loop, dataset: Dataset, state: dict) -> None:
    """Write the checkpoint atomically (temporary file, then rename): Ctrl-C keeps the last."""
    blob = {
        "format": CHECKPOINT_FORMAT, "dataset": dataset.name,
        "model_config": model.config.to_json(), "history": json.dumps(state["history"]),
        "epoch": state["epoch"], "best_metric": float(state["best_metric"]),
        "best_epoch": state["best_epoch"], "bad_epochs": state["bad_epochs"],
        "global_step": loop.global_step, "model": model.state_dict(),
        "best_model": state["best_model"], "optimizer": loop.opt.state_dict(),
        "scheduler": loop.sched.state_dict() if loop.sched is not None else {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)


def _load_checkpoint(path: Path, model, loop: _Loop, dataset: Dataset) -> dict:
    if not path.is_file():
        raise ConfigError(f"no checkpoint at {path} to resume from; train without --resume")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise ConfigError(f"{path} is not a readable checkpoint ({exc}); delete it and train "
                          "without --resume") from exc
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"{path} is not an edgernn training checkpoint; delete it and train "
                          "without --resume")
    saved = ModelConfig.from_json(blob["model_config"])
    if saved != model.config or blob["dataset"] != dataset.name:
        raise ConfigError(
            f"checkpoint {path} was written for dataset {blob['dataset']!r} with model "
            f"{saved.to_dict()}; this run has {dataset.name!r} with {model.config.to_dict()}"
        )
    model.load_state_dict(blob["model"])
    loop.opt.load_state_dict(blob["optimizer"])
    if loop.sched is not None and blob["scheduler"]:
        loop.sched.load_state_dict(blob["scheduler"])
    loop.global_step = blob["global_step"]
    return {"epoch": blob["epoch"], "history": json.loads(blob["history"]),
            "best_metric": blob["best_metric"], "best_epoch": blob["best_epoch"],
            "bad_epochs": blob["bad_epochs"], "best_model": blob["best_model"]}


# ----------------------------------------------------------------------------- the whole job

def checkpoint_path(out: str | Path) -> Path:
    """Where ``train_bundle`` keeps its resumable checkpoint: beside the bundle, ``OUT.ckpt/``."""
    out = Path(out)
    return out.with_name(out.name + ".ckpt") / "checkpoint.pt"


def train_bundle(data: Dataset | str, out: str | Path, config: TrainConfig | None = None, *,
                 cell: str = "lstm", layers: int = 2, hidden: int = 64, dropout: float = 0.0,
                 bidirectional: bool = False, nonlinearity: str = "tanh", embedding_dim: int = 32,
                 force: bool = False, progress: bool = True,
                 after_step: Callable[[RecurrentModel, int], None] | None = None) -> dict:
    """Load data, build and fit a model, evaluate it on test and write the bundle at ``out``.

    The checkpoint lives at :func:`checkpoint_path` while training and is removed once the
    bundle is written. Returns a summary (the fields ``edgernn train`` prints).
    """
    from edgernn.bundle_io import save_model_bundle
    from edgernn.data.registry import load_dataset

    out = Path(out)
    if out.exists() and not force:
        raise BundleError(f"{out} already exists; pass --force to replace it")
    config = config or TrainConfig()
    if config.checkpoint is None:
        config = dataclasses.replace(config, checkpoint=str(checkpoint_path(out)))
    started = time.perf_counter()
    dataset = data if isinstance(data, Dataset) else load_dataset(data, seed=config.seed)
    model = build_model(dataset, cell, layers, hidden, dropout, bidirectional, nonlinearity,
                        embedding_dim, seed=config.seed)
    result = fit(model, dataset, config, after_step=after_step, progress=progress)
    metrics = {"test": evaluate(result.model, dataset.test, dataset),
               "val": evaluate(result.model, dataset.val, dataset)}
    wall = time.perf_counter() - started
    summary = {
        "dataset": dataset.name, "cell": cell, "params": sum(p.numel() for p in model.parameters()),
        "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early, "metric": dataset.metric,
        "best_val": result.best_metric, "test": metrics["test"],
        "baseline": dataset.source.get("baseline"), "bundle": str(out),
        "wall_time_s": round(wall, 2),
    }
    save_model_bundle(
        result.model, out, preprocessing=dataset.preprocessing,
        task={"metric": dataset.metric, "higher_is_better": dataset.higher_is_better,
              "class_names": dataset.class_names, "dataset": dataset.name},
        metrics=metrics,
        provenance={"dataset": dataset.source, "train_config": config.to_dict(),
                    "training": {k: summary[k] for k in ("epochs_run", "best_epoch",
                                                        "stopped_early", "best_val")},
                    "history_file": "history.json", "wall_time_s": summary["wall_time_s"]},
        extra_files={"history.json": json.dumps(result.history, indent=1).encode()}, force=force,
    )
    shutil.rmtree(checkpoint_path(out).parent, ignore_errors=True)
    return summary
