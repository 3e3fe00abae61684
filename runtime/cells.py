"""Recurrent cells in numpy with ONNX operator semantics: LSTM, GRU and RNN.

Weights use ONNX names and gate orders (``W`` input weights, ``R`` recurrent weights, ``B`` the
concatenated input and recurrent biases; LSTM gates i, o, f, c; GRU z, r, h). ``*_cell`` advance
one time step of one direction; ``lstm``/``gru``/``rnn`` run a whole ONNX node: directions,
``layout`` 0 and 1, ``clip``, initial states and ``sequence_lens``. Unsupported attributes raise.
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError


def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # stable for large |x|, same values as 1/(1+e^-x)


def relu(x):
    return np.maximum(x, 0)


ACTIVATIONS = {"sigmoid": sigmoid, "tanh": np.tanh, "relu": relu}


def _clip(x, clip):
    return x if clip is None else np.clip(x, -clip, clip)


def lstm_cell(x, h, c, W, R, B, P=None, clip=None, acts=(sigmoid, np.tanh, np.tanh)):
    """One LSTM step: returns (H_t, C_t). ``P`` holds the peepholes p_i, p_o, p_f."""
    f, g, hact = acts
    Wb, Rb = np.split(B, 2)
    gates = x @ W.T + h @ R.T + Wb + Rb
    xi, xo, xf, xc = np.split(gates, 4, axis=-1)
    pi, po, pf = np.split(P, 3) if P is not None else (0.0, 0.0, 0.0)
    i = f(_clip(xi + pi * c, clip))
    f_t = f(_clip(xf + pf * c, clip))
    c_t = f_t * c + i * g(_clip(xc, clip))
    o = f(_clip(xo + po * c_t, clip))
    return o * hact(c_t), c_t


def gru_cell(x, h, W, R, B, linear_before_reset=0, clip=None, acts=(sigmoid, np.tanh)):
    """One GRU step: returns H_t."""
    f, g = acts
    Wb, Rb = np.split(B, 2)
    xz, xr, xh = np.split(x @ W.T + Wb, 3, axis=-1)
    Rz, Rr, Rh = np.split(R, 3)
    Rbz, Rbr, Rbh = np.split(Rb, 3)
    z = f(_clip(xz + h @ Rz.T + Rbz, clip))
    r = f(_clip(xr + h @ Rr.T + Rbr, clip))
    if linear_before_reset:
        candidate = g(_clip(xh + r * (h @ Rh.T + Rbh), clip))
    else:
        candidate = g(_clip(xh + (r * h) @ Rh.T + Rbh, clip))
    return (1.0 - z) * candidate + z * h


def rnn_cell(x, h, W, R, B, clip=None, acts=(np.tanh,)):
    """One Elman RNN step: returns H_t."""
    Wb, Rb = np.split(B, 2)
    return acts[0](_clip(x @ W.T + h @ R.T + Wb + Rb, clip))


DEFAULT_ACTIVATIONS = {"lstm": ("sigmoid", "tanh", "tanh"), "gru": ("sigmoid", "tanh"),
                       "rnn": ("tanh",)}


def _activations(op: str, names, num_dirs: int, alpha, beta):
    key = op.lower()
    if alpha is not None or beta is not None:
        raise ConfigError(f"{op}: activation_alpha/activation_beta are not supported")
    if names is None:
        names = DEFAULT_ACTIVATIONS[key] * num_dirs
    names = [n.decode() if isinstance(n, bytes) else n for n in names]
    per_dir = len(DEFAULT_ACTIVATIONS[key])
    if len(names) != per_dir * num_dirs:
        raise ConfigError(f"{op}: expected {per_dir * num_dirs} activations, got {names}")
    unknown = [n for n in names if n.lower() not in ACTIVATIONS]
    if unknown:
        raise ConfigError(f"{op}: activations {unknown} are not supported; use {list(ACTIVATIONS)}")
    acts = [ACTIVATIONS[n.lower()] for n in names]
    return [tuple(acts[d * per_dir:(d + 1) * per_dir]) for d in range(num_dirs)]


def _run(op, step, X, W, R, sequence_lens, states, *, hidden_size, direction, layout,
         activations, activation_alpha, activation_beta):
    """Shared driver: directions, layout, masking by ``sequence_lens``.

    ``step(d, x_t, carry, acts)`` advances direction ``d``; ``states`` are the initial tensors.
    """
    directions = {"forward": 1, "reverse": 1, "bidirectional": 2}
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction not in directions:
        raise ConfigError(f"{op}: unknown direction {direction!r}")
    if layout not in (0, 1):
        raise ConfigError(f"{op}: layout must be 0 or 1, got {layout}")
    num_dirs = directions[direction]
    if W.shape[0] != num_dirs:
        raise ConfigError(f"{op}: W has {W.shape[0]} directions, {direction!r} needs {num_dirs}")
    H = R.shape[-1]
    if hidden_size is not None and hidden_size != H:
        raise ConfigError(f"{op}: hidden_size={hidden_size} but R has {H} columns")
    acts = _activations(op, activations, num_dirs, activation_alpha, activation_beta)
    if layout == 1:
        X = np.swapaxes(X, 0, 1)
        states = [None if s is None else np.swapaxes(s, 0, 1) for s in states]
    T, batch, _ = X.shape
    lens = np.full(batch, T) if sequence_lens is None else np.asarray(sequence_lens).astype(int)
    Y = np.zeros((T, num_dirs, batch, H), X.dtype)
    finals = []
    for d in range(num_dirs):
        carry = [np.zeros((batch, H), X.dtype) if s is None else s[d].copy() for s in states]
        reverse = direction == "reverse" or d == 1
        rows = np.arange(batch)
        for t in range(T):
            valid = t < lens
            t_in = np.where(valid, lens - 1 - t, 0) if reverse else np.full(batch, t)
            new = step(d, X[t_in, rows], carry, acts[d])
            carry = [np.where(valid[:, None], n, o) for n, o in zip(new, carry)]
            Y[t_in[valid], d, rows[valid]] = carry[0][valid]
        finals.append(carry)
    outs = [np.stack([f[k] for f in finals]) for k in range(len(states))]
    if layout == 1:
        return (np.transpose(Y, (2, 0, 1, 3)), *[np.swapaxes(o, 0, 1) for o in outs])
    return (Y, *outs)


def _refuse(op: str, unknown: dict) -> None:
    if unknown:
        raise ConfigError(f"{op}: attributes {sorted(unknown)} are not supported")


def _bias(B, W):
    return np.zeros((W.shape[0], 2 * W.shape[1]), W.dtype) if B is None else B


def lstm(X, W, R, B=None, sequence_lens=None, initial_h=None, initial_c=None, P=None, *,
         hidden_size=None, direction="forward", layout=0, clip=None, activations=None,
         activation_alpha=None, activation_beta=None, input_forget=0, **unknown):
    """The ONNX LSTM operator: returns (Y, Y_h, Y_c)."""
    _refuse("LSTM", unknown)
    if input_forget:
        raise ConfigError("LSTM: input_forget=1 is not supported")
    B = _bias(B, W)

    def step(d, x, carry, acts):
        p = None if P is None else P[d]
        return lstm_cell(x, carry[0], carry[1], W[d], R[d], B[d], p, clip, acts)

    return _run("LSTM", step, X, W, R, sequence_lens, [initial_h, initial_c],
                hidden_size=hidden_size, direction=direction, layout=layout,
                activations=activations, activation_alpha=activation_alpha,
                activation_beta=activation_beta)


def gru(X, W, R, B=None, sequence_lens=None, initial_h=None, *, hidden_size=None,
        direction="forward", layout=0, clip=None, linear_before_reset=0, activations=None,
        activation_alpha=None, activation_beta=None, **unknown):
    """The ONNX GRU operator: returns (Y, Y_h)."""
    _refuse("GRU", unknown)
    B = _bias(B, W)

    def step(d, x, carry, acts):
        return [gru_cell(x, carry[0], W[d], R[d], B[d], linear_before_reset, clip, acts)]

    return _run("GRU", step, X, W, R, sequence_lens, [initial_h], hidden_size=hidden_size,
                direction=direction, layout=layout, activations=activations,
                activation_alpha=activation_alpha, activation_beta=activation_beta)


def rnn(X, W, R, B=None, sequence_lens=None, initial_h=None, *, hidden_size=None,
        direction="forward", layout=0, clip=None, activations=None, activation_alpha=None,
        activation_beta=None, **unknown):
    """The ONNX RNN operator: returns (Y, Y_h)."""
    _refuse("RNN", unknown)
    B = _bias(B, W)

    def step(d, x, carry, acts):
        return [rnn_cell(x, carry[0], W[d], R[d], B[d], clip, acts)]

    return _run("RNN", step, X, W, R, sequence_lens, [initial_h], hidden_size=hidden_size,
                direction=direction, layout=layout, activations=activations,
                activation_alpha=activation_alpha, activation_beta=activation_beta)
