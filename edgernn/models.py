"""RecurrentModel: the torch model behind every bundle, built from a ModelConfig."""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from edgernn.runtime.config import ModelConfig

RNN_CLASSES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run torch on ``n`` CPU threads inside the block (None: as it is); restored afterwards.

    Small recurrent models gain nothing from a second thread, and on a busy machine torch's
    thread pool only adds synchronisation (up to 100x slower on two shared cores)."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class RecurrentModel(nn.Module):
    """[Embedding] -> nn.RNN | nn.LSTM | nn.GRU (batch_first) -> Dropout -> Linear head.

    ``forward(x, lengths=None, state=None)`` takes ``x`` of shape (B, T, F) float or (B, T) token
    ids and returns (B, O) for ``head="last"`` (the last valid step of each sequence) or
    (B, T, O) for ``head="every"``. Outputs are logits/values before ``output_activation``;
    ``predict`` applies it.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config
        self.embedding = nn.Embedding(c.vocab_size, c.input_size) if c.token_input else None
        kwargs = dict(
            input_size=c.input_size, hidden_size=c.hidden_size, num_layers=c.num_layers,
            batch_first=True, dropout=c.dropout if c.num_layers > 1 else 0.0,
            bidirectional=c.bidirectional,
        )
        if c.cell == "rnn":
            kwargs["nonlinearity"] = c.nonlinearity
        self.rnn = RNN_CLASSES[c.cell](**kwargs)
        self.dropout = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.hidden_size * c.directions, c.output_size)

    def init_weights(self, seed: int | None = None) -> RecurrentModel:
        """Orthogonal recurrent, Xavier input and head weights, zero biases (LSTM forget bias 1)."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        with torch.no_grad():
            for name, p in self.rnn.named_parameters():
                if name.startswith("weight_hh"):
                    for k in range(self.config.gates):
                        h = self.config.hidden_size
                        block = torch.empty(h, h)
                        nn.init.orthogonal_(block, generator=gen)
                        p[k * h:(k + 1) * h] = block
                elif name.startswith("weight_ih"):
                    nn.init.xavier_uniform_(p, generator=gen)
                else:
                    p.zero_()
                    if self.config.cell == "lstm" and name.startswith("bias_ih"):
                        h = self.config.hidden_size
                        p[h:2 * h] = 1.0
            nn.init.xavier_uniform_(self.head.weight, generator=gen)
            self.head.bias.zero_()
        return self

    def features(self, x: torch.Tensor, lengths=None, state=None):
        """Recurrent outputs (B, T, H*dirs) and the final torch-layout state."""
        if self.embedding is not None:
            x = self.embedding(x.long())
        if lengths is not None:
            lengths_cpu = torch.as_tensor(lengths).cpu().long()
            packed = pack_padded_sequence(x, lengths_cpu, batch_first=True, enforce_sorted=False)
            out, state = self.rnn(packed, state)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        else:
            out, state = self.rnn(x, state)
        return out, state

    def forward(self, x: torch.Tensor, lengths=None, state=None, return_state: bool = False):
        out, state = self.features(x, lengths, state)
        if self.config.head == "last":
            out = self._last_step(out, lengths)
        y = self.head(self.dropout(out))
        return (y, state) if return_state else y

    def _last_step(self, out: torch.Tensor, lengths) -> torch.Tensor:
        if self.config.bidirectional:
            h = self.config.hidden_size
            fwd = self._gather_last(out[..., :h], lengths)
            return torch.cat([fwd, out[:, 0, h:]], dim=-1)
        return self._gather_last(out, lengths)

    @staticmethod
    def _gather_last(out: torch.Tensor, lengths) -> torch.Tensor:
        if lengths is None:
            return out[:, -1]
        idx = (torch.as_tensor(lengths, device=out.device).long() - 1).clamp(min=0)
        return out[torch.arange(out.shape[0], device=out.device), idx]

    def step_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """The head applied at every step, (B, T, O): what streaming must reproduce."""
        out, _ = self.features(x)
        return self.activate(self.head(out))

    def activate(self, y: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(y) if self.config.output_activation == "sigmoid" else y

    @torch.no_grad()
    def predict(self, x: torch.Tensor, lengths=None) -> torch.Tensor:
        return self.activate(self(x, lengths))

    def to_numpy(self) -> dict[str, np.ndarray]:
        """fp32 tensors in the bundle's naming (the torch state_dict keys)."""
        return {k: v.detach().cpu().float().numpy().copy() for k, v in self.state_dict().items()}

    @classmethod
    def from_numpy(cls, config: ModelConfig, tensors: dict[str, np.ndarray]) -> RecurrentModel:
        model = cls(config)
        state = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in tensors.items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            from edgernn.runtime.errors import BundleError

            raise BundleError(f"weights do not match the config: missing {missing}, "
                              f"unexpected {unexpected}")
        return model.eval()


def state_to_batch_first(state, cell: str) -> dict[str, np.ndarray]:
    """torch (layers, B, H) state(s) -> {'h': (B, layers, H)[, 'c': ...]} numpy arrays."""
    tensors = state if cell == "lstm" else (state,)
    names = ("h", "c") if cell == "lstm" else ("h",)
    return {n: t.detach().cpu().transpose(0, 1).contiguous().numpy()
            for n, t in zip(names, tensors)}


def state_from_batch_first(state: dict[str, np.ndarray], cell: str):
    """The inverse of :func:`state_to_batch_first`."""
    h = torch.from_numpy(np.ascontiguousarray(np.swapaxes(state["h"], 0, 1)))
    if cell == "lstm":
        return h, torch.from_numpy(np.ascontiguousarray(np.swapaxes(state["c"], 0, 1)))
    return h
