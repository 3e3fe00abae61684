"""ModelConfig: the one description of a recurrent model, shared by build side and device side."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from .errors import ConfigError

CELLS = ("rnn", "lstm", "gru")
HEADS = ("last", "every")
TASKS = ("classification", "regression", "language_model")
NONLINEARITIES = ("tanh", "relu")
ACTIVATIONS = ("none", "sigmoid")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


@dataclass
class ModelConfig:
    """A recurrent model: [Embedding] -> RNN/LSTM/GRU stack -> Linear head.

    ``input_size`` is the number of features per step; for token input (``vocab_size`` set) it is
    the embedding width. ``head="last"`` maps the last step to the output (many-to-one);
    ``head="every"`` maps every step (many-to-many). ``output_activation="sigmoid"`` is applied
    after the head (adopted binary classifiers written that way); training uses the logits.
    """

    cell: str = "lstm"
    input_size: int = 1
    hidden_size: int = 64
    num_layers: int = 1
    output_size: int = 1
    head: str = "last"
    task: str = "regression"
    nonlinearity: str = "tanh"
    dropout: float = 0.0
    bidirectional: bool = False
    vocab_size: int | None = None
    output_activation: str = "none"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ConfigError(msg)

        need(self.cell in CELLS, f"unknown cell {self.cell!r}; choose one of {', '.join(CELLS)}")
        need(self.head in HEADS, f"unknown head {self.head!r}; choose one of {', '.join(HEADS)}")
        need(self.task in TASKS, f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        need(
            self.nonlinearity in NONLINEARITIES,
            f"unknown nonlinearity {self.nonlinearity!r}; choose tanh or relu",
        )
        need(
            self.cell == "rnn" or self.nonlinearity == "tanh",
            f"nonlinearity={self.nonlinearity!r} applies to the rnn cell only",
        )
        need(
            self.output_activation in ACTIVATIONS,
            f"unknown output_activation {self.output_activation!r}; choose none or sigmoid",
        )
        for name in ("input_size", "hidden_size", "num_layers", "output_size"):
            value = getattr(self, name)
            need(isinstance(value, int) and value > 0,
                 f"{name} must be a positive int, got {value!r}")
        need(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")
        need(
            self.vocab_size is None or (isinstance(self.vocab_size, int) and self.vocab_size > 0),
            f"vocab_size must be a positive int or None, got {self.vocab_size!r}",
        )

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def streamable(self) -> bool:
        return not self.bidirectional

    @property
    def gates(self) -> int:
        return GATES[self.cell]

    @property
    def state_names(self) -> tuple[str, ...]:
        """Names of the carried state tensors, each of shape (batch, layers, hidden)."""
        return ("h", "c") if self.cell == "lstm" else ("h",)

    @property
    def token_input(self) -> bool:
        return self.vocab_size is not None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown model config keys {unknown}; known keys: {sorted(known)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        return cls.from_dict(json.loads(text))
