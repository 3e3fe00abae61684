"""torch backend: the cell equations in torch (PyTorch gate order), on CPU or CUDA.

A reference that shares no code with the numpy cells, and the GPU path. On CPU ``threads`` sets
torch's (process-wide) intra-op thread count. With ``device="cuda"``
each batch size gets static device buffers and, by default, a captured CUDA graph, so a step is
three copies and one graph replay. States stay numpy (batch, layers, hidden) on the host.
"""

from __future__ import annotations

from .. import weights
from ..errors import BackendUnavailableError, ConfigError
from .base import Backend, ModelSpec


class TorchBackend(Backend):
    name = "torch"

    @staticmethod
    def probe() -> tuple[bool, str]:
        import torch

        gpu = f"CUDA {torch.version.cuda}" if torch.cuda.is_available() else "CPU only"
        return True, f"torch {torch.__version__} ({gpu})"

    def __init__(self, spec: ModelSpec, nan_policy: str = "raise", threads: int = 1,
                 device: str = "cpu", cuda_graphs: bool = True):
        super().__init__(spec, nan_policy, threads)
        try:
            import torch
        except ImportError as exc:
            raise BackendUnavailableError("torch is not installed: pip install torch") from exc
        self.torch = torch
        self.device = torch.device(device)
        if self.device.type not in ("cpu", "cuda"):
            raise ConfigError(f"device={device!r}; choose cpu or cuda[:N]")
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailableError("device='cuda' but torch sees no CUDA GPU")
        if self.device.type == "cpu" and not cuda_graphs:
            raise ConfigError("cuda_graphs=False applies to device='cuda' only")
        self.cuda_graphs = cuda_graphs and self.device.type == "cuda"
        if self.device.type == "cpu":
            torch.set_num_threads(threads)
        c = spec.config
        dense = weights.decode_all(spec.tensors)
        self.w = {k: torch.from_numpy(v).to(self.device) for k, v in dense.items()}
        self.act = torch.relu if c.nonlinearity == "relu" else torch.tanh
        self._graphs: dict[int, tuple] = {}

    @property
    def _no_grad(self):
        return self.torch.inference_mode()

    def forward(self, x, h, c):
        """One step on torch tensors: x (B, F) or (B,) ids, h/c (B, L, H) -> y, h', c'."""
        torch, w, cfg = self.torch, self.w, self.config
        F = torch.nn.functional
        inp = w["embedding.weight"][x] if cfg.token_input else x
        hs, cs = [], []
        for k in range(cfg.num_layers):
            gi = F.linear(inp, w[f"rnn.weight_ih_l{k}"], w[f"rnn.bias_ih_l{k}"])
            gh = F.linear(h[:, k], w[f"rnn.weight_hh_l{k}"], w[f"rnn.bias_hh_l{k}"])
            if cfg.cell == "lstm":
                i, f, g, o = (gi + gh).chunk(4, dim=1)
                c_new = torch.sigmoid(f) * c[:, k] + torch.sigmoid(i) * torch.tanh(g)
                inp = torch.sigmoid(o) * torch.tanh(c_new)
                cs.append(c_new)
            elif cfg.cell == "gru":
                ir, iz, in_ = gi.chunk(3, dim=1)
                hr, hz, hn = gh.chunk(3, dim=1)
                r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
                n = torch.tanh(in_ + r * hn)
                inp = (1 - z) * n + z * h[:, k]
            else:
                inp = self.act(gi + gh)
            hs.append(inp)
        y = F.linear(inp, w["head.weight"], w["head.bias"])
        if cfg.output_activation == "sigmoid":
            y = torch.sigmoid(y)
        return y, torch.stack(hs, 1), torch.stack(cs, 1) if cs else None

    def _step(self, x, state_in, state_out):
        torch = self.torch
        lstm = self.config.cell == "lstm"
        with self._no_grad:
            if self.device.type == "cpu":
                y, h, c = self.forward(torch.from_numpy(x), torch.from_numpy(state_in["h"]),
                                       torch.from_numpy(state_in["c"]) if lstm else None)
                torch.from_numpy(state_out["h"]).copy_(h)
                if lstm:
                    torch.from_numpy(state_out["c"]).copy_(c)
                return y.numpy()
            return self._cuda_step(x, state_in, state_out)

    def _cuda_step(self, x, state_in, state_out):
        torch = self.torch
        io = self._graphs.get(x.shape[0]) or self._capture(x, state_in)
        ins, outs, graph = io
        ins[0].copy_(torch.from_numpy(x), non_blocking=True)
        for t, name in zip(ins[1:], self.state_names):
            t.copy_(torch.from_numpy(state_in[name]), non_blocking=True)
        if graph is not None:
            graph.replay()
        else:
            outs = self.forward(*ins, *([None] * (3 - len(ins))))
        y = outs[0].cpu().numpy()
        for t, name in zip(outs[1:], self.state_names):
            state_out[name][...] = t.cpu().numpy()
        return y

    def _capture(self, x, state_in):
        """Static device buffers for this batch size, and the step captured as a CUDA graph."""
        torch = self.torch
        ins = [torch.from_numpy(x).to(self.device)]
        ins += [torch.from_numpy(state_in[n]).to(self.device) for n in self.state_names]
        args = ins + [None] * (3 - len(ins))
        graph = None
        if self.cuda_graphs:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(3):  # warm up kernels and allocator outside the capture
                    self.forward(*args)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                outs = self.forward(*args)
        else:
            outs = None
        entry = (ins, [o for o in outs if o is not None] if outs else None, graph)
        self._graphs[x.shape[0]] = entry
        return entry

    def close(self) -> None:
        self._graphs.clear()
        self.w = {}

    def describe(self) -> str:
        graphs = ", CUDA graphs" if self.cuda_graphs else ""
        return f"torch ({self.device}{graphs})"
