"""The network of the `lstm` model, in JAX (optax's Adam): the same as TIMEX 1.2.3's PyTorch one. One LSTM layer
of `HIDDEN` units reads a window of lagged values; a linear layer maps its last hidden state to the next value.
Trained with the L1 loss and Adam (lr 0.01, PyTorch's defaults otherwise), one window at a time in time order
(batch size 1, no shuffling), for `epochs` passes; weights start as PyTorch's do (uniform ±1/√HIDDEN) from a
fixed seed, so a fit is reproducible.

Why JAX and not PyTorch or Keras: measured in README "Models" (`lstm`): PyPI's torch pulls the CUDA libraries;
Keras 3 on JAX runs its batch-size-1 training loop from Python, one dispatch per window (1.4 s of CPU per fit
on the bench's monthly series against 0.14 s here, where the whole training is one compiled loop).

Shapes are bucketed (`bucket`): XLA compiles a function per input shape (about 1.2 s of CPU), and every training
window length would otherwise need its own. Windows are left-padded to the bucket and the padded steps are
masked (the state does not move on them), padded training windows make no update: the answer is the unpadded
one, and a worker compiles once per bucket, not once per unit.
"""

from __future__ import annotations

import contextlib
import ctypes
from functools import cache
from typing import Any

import numpy as np

HIDDEN = 10
LEARNING_RATE = 0.01
SEED = 0
# XLA's CPU client starts ~17 threads (its single-thread flags change neither that nor a fit's CPU time); glibc
# gives each thread that allocates an arena of 64 MB of address space, which the pool's cap (RLIMIT_AS,
# TIMEX_UNIT_MEMORY_MB) counts: 1.7 GB of address space for ~370 MB resident, and under a 1 GB cap LLVM aborts
# the worker ("pthread_create failed"). Two arenas: 0.8 GB.
_MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt parameter


def _limit_malloc_arenas() -> None:
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to limit
        ctypes.CDLL(None).mallopt(_M_ARENA_MAX, _MALLOC_ARENAS)


def bucket(n: int) -> int:
    """`n` rounded up to a multiple of a quarter of its octave (at most 25 % padding, four sizes an octave)."""
    quarter = 1 << max(0, n.bit_length() - 3)
    return -(-n // quarter) * quarter


@cache
def _compiled() -> tuple[Any, Any]:
    """(train, forecast), jitted; JAX is imported on first use, so a worker that never fits an LSTM never
    loads it (and the fork server of the pool does not either)."""
    _limit_malloc_arenas()
    import jax
    import jax.numpy as jnp
    import optax

    jax.config.update("jax_platforms", "cpu")  # no probing for accelerators
    optimizer = optax.adam(LEARNING_RATE)

    def forward(p: dict[str, Any], window: Any, mask: Any) -> Any:
        def cell(carry: tuple[Any, Any], step: tuple[Any, Any]) -> tuple[tuple[Any, Any], None]:
            h, c = carry
            x, real = step
            i, f, g, o = jnp.split(p["w_ih"] @ x + p["b_ih"] + p["w_hh"] @ h + p["b_hh"], 4)  # PyTorch's order
            c_next = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h_next = jax.nn.sigmoid(o) * jnp.tanh(c_next)
            return (jnp.where(real, h_next, h), jnp.where(real, c_next, c)), None

        (h, _), _ = jax.lax.scan(cell, (jnp.zeros(HIDDEN), jnp.zeros(HIDDEN)), (window, mask))
        return p["w_out"] @ h + p["b_out"]

    def loss(p: dict[str, Any], window: Any, mask: Any, target: Any) -> Any:
        return jnp.abs(forward(p, window, mask)[0] - target)

    grad = jax.grad(loss)

    @jax.jit
    def train(p: dict[str, Any], windows: Any, masks: Any, targets: Any, real: Any, epochs: Any) -> Any:
        def step(carry: tuple[Any, Any], sample: tuple[Any, ...]) -> tuple[tuple[Any, Any], None]:
            params, state = carry
            window, mask, target, is_real = sample
            updates, new_state = optimizer.update(grad(params, window, mask, target), state, params)
            new_params = optax.apply_updates(params, updates)
            keep = lambda new, old: jnp.where(is_real, new, old)  # noqa: E731 - a padded window changes nothing
            return (jax.tree.map(keep, new_params, params), jax.tree.map(keep, new_state, state)), None

        def epoch(_: Any, carry: tuple[Any, Any]) -> tuple[Any, Any]:
            return jax.lax.scan(step, carry, (windows, masks, targets, real))[0]

        return jax.lax.fori_loop(0, epochs, epoch, (p, optimizer.init(p)))[0]

    @jax.jit
    def forecast(p: dict[str, Any], window: Any, mask: Any, future: Any) -> Any:
        """Recursive: each step's prediction, with the regressors' values at that step (`future`, one row a step,
        as many rows as the bucket of h), enters the window of the next."""
        def step(carry: tuple[Any, Any], known: Any) -> tuple[tuple[Any, Any], Any]:
            window, mask = carry
            value = forward(p, window, mask)
            row = jnp.concatenate([value, known])
            return (jnp.append(window[1:], row[None], axis=0), mask), value[0]

        return jax.lax.scan(step, (window, mask), future)[1]

    return train, forecast


def init_params(features: int, seed: int = SEED) -> dict[str, np.ndarray]:
    """PyTorch's initialisation of nn.LSTM and nn.Linear(HIDDEN, 1): uniform ±1/√HIDDEN, from `seed`."""
    rng = np.random.default_rng(seed)
    bound = 1 / np.sqrt(HIDDEN)

    def uniform(*shape: int) -> np.ndarray:
        return rng.uniform(-bound, bound, shape).astype(np.float32)

    return {"w_ih": uniform(4 * HIDDEN, features), "w_hh": uniform(4 * HIDDEN, HIDDEN),
            "b_ih": uniform(4 * HIDDEN), "b_hh": uniform(4 * HIDDEN),
            "w_out": uniform(1, HIDDEN), "b_out": uniform(1)}


def _padded_windows(values: np.ndarray, lag: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Every window of `lag` consecutive rows of `values` (points × features), left-padded to `length` steps, and
    its mask of real steps."""
    count = len(values) - lag + 1
    windows = np.zeros((count, length, values.shape[1]), np.float32)
    windows[:, length - lag :] = np.lib.stride_tricks.sliding_window_view(values, lag, axis=0).transpose(0, 2, 1)
    masks = np.zeros((count, length), bool)
    masks[:, length - lag :] = True
    return windows, masks


def _features(values: np.ndarray) -> np.ndarray:
    """Points × features: the series alone (one value a point) or the series then its regressors."""
    return values.reshape(len(values), -1).astype(np.float32)


def fit(values: np.ndarray, lag: int, epochs: int) -> dict[str, Any]:
    """Weights trained on every (window of `lag` rows → the next value of the series) of `values` (already scaled;
    the series, or points × [series, regressors...] as TIMEX's LSTM takes extra regressors)."""
    train, _ = _compiled()
    rows = _features(values)
    windows, masks = _padded_windows(rows[:-1], lag, bucket(lag))
    targets = rows[lag:, 0]
    samples = len(targets)
    size = bucket(samples)
    pad = size - samples
    windows = np.concatenate([windows, np.zeros((pad, *windows.shape[1:]), np.float32)])
    masks = np.concatenate([masks, np.zeros((pad, masks.shape[1]), bool)])
    real = np.arange(size) < samples
    targets = np.concatenate([targets, np.zeros(pad, np.float32)])
    trained = train(init_params(rows.shape[1]), windows, masks, targets, real, epochs)
    return {k: np.asarray(v) for k, v in trained.items()}


def forecast(params: dict[str, Any], last: np.ndarray, h: int, future: np.ndarray | None = None) -> np.ndarray:
    """The next `h` values after the window `last` (scaled rows, as `fit` had them), each fed back as the newest
    lag; with regressors, `future` holds their scaled values at the `h` steps (h × regressors)."""
    _, run = _compiled()
    rows = _features(last)
    windows, masks = _padded_windows(rows, len(rows), bucket(len(rows)))
    known = np.zeros((bucket(h), rows.shape[1] - 1), np.float32)
    if future is not None:
        known[:h] = future
    values = run(params, windows[0], masks[0], known)
    return np.asarray(values, dtype=float)[:h]
