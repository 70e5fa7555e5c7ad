"""Resampling over items: the one engine behind every interval and test that mmbench reports.

Its users: ``mmbench.report.stats`` (bootstrap intervals of any metric, paired bootstrap and sign-flip
permutation tests between two runs) and the probes' reliance intervals (``mmbench.metrics.reliance``). It
lives in the metrics layer so that tasks and metrics can use it without importing the report layer.

- :func:`rng_for`: the generator of one named stream under a seed. Every model on a task sees the same
  draws (the stream is the task name), different streams are independent. The empty stream draws exactly
  what ``np.random.default_rng(seed)`` draws (SeedSequence pads its entropy with zero words), which is the
  stream the probes' reliance intervals have always used.
- a :class:`Scheme` says what one draw is and how a per-item mean is taken over it: :data:`BOOTSTRAP` (a row
  of ``n`` item indices drawn with replacement) or :data:`SIGN_FLIP` (a row of ``n`` coin flips: swap the
  item between two runs, i.e. flip the sign of its difference).
- :func:`replicates`: the statistic on every draw. Values that are plain means of per-item values are
  computed for a whole block of draws in one vectorised gather; anything else calls a function once per
  draw. Draws come in blocks of at most ``CHUNK_ELEMENTS`` numbers (bounded memory); a block of ``r`` rows
  holds exactly the numbers ``r`` successive one-row draws would give, so the block size never changes a
  result.
- :func:`percentile_interval`: the percentile interval of the replicates.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

CHUNK_ELEMENTS = 2_000_000  # draws per block of resamples: bounds memory at ~16 MB per gathered array

# One draw (a row of item indices, or of swaps) -> {value name: value}; a missing or None value is NaN.
Statistic = Callable[[np.ndarray], Mapping[str, object]]


def rng_for(seed: int, stream: str = "") -> np.random.Generator:
    """The generator for one stream (a task name) under ``seed``: the same task gets the same draws for
    every model, different tasks get independent draws."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(stream.encode())]))


def _block_rows(n: int) -> int:
    return max(1, CHUNK_ELEMENTS // max(n, 1))


def index_chunks(n: int, resamples: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Bootstrap index draws, ``[rows, n]`` blocks totalling ``resamples`` rows (bounded memory)."""
    rows = _block_rows(n)
    for start in range(0, resamples, rows):
        yield rng.integers(0, n, size=(min(rows, resamples - start), n))


def swap_chunks(n: int, resamples: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Sign-flip draws: ``[rows, n]`` boolean blocks (True: the item's two runs swap, probability 1/2)."""
    rows = _block_rows(n)
    for start in range(0, resamples, rows):
        yield rng.random(size=(min(rows, resamples - start), n)) < 0.5


@dataclass(frozen=True)
class Scheme:
    """What one draw is, and the mean of per-item values over each draw of a block."""

    name: str
    draws: Callable[[int, int, np.random.Generator], Iterator[np.ndarray]]  # (n, resamples, rng) -> blocks
    mean: Callable[[np.ndarray, np.ndarray], np.ndarray]  # (per-item values, block) -> one mean per row


BOOTSTRAP = Scheme("bootstrap", index_chunks, lambda values, block: values[block].mean(axis=1))
SIGN_FLIP = Scheme("sign-flip", swap_chunks,
                   lambda values, block: (values[None, :] * np.where(block, -1.0, 1.0)).mean(axis=1))


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def replicates(n: int, resamples: int, rng: np.random.Generator, *, means: Mapping[str, np.ndarray] | None = None,
               statistic: Statistic | None = None, names: Sequence[str] = (),
               scheme: Scheme = BOOTSTRAP) -> dict[str, np.ndarray]:
    """The replicates of every value over ``resamples`` draws of ``scheme`` on ``n`` items.

    ``means``: value name -> per-item values (float64) whose mean over each draw is the value (one gather
    per block of draws). ``names``: values read from ``statistic(draw)``, called once per draw (a missing,
    None or non-numeric value is NaN). Both kinds see the same draws.
    """
    means = dict(means or {})
    slow = list(names) if statistic is not None else []
    out: dict[str, list[np.ndarray]] = {m: [] for m in [*means, *slow]}
    for block in scheme.draws(n, int(resamples), rng):
        for m, values in means.items():
            out[m].append(scheme.mean(values, block))
        if slow:
            rows = [statistic(draw) for draw in block]  # type: ignore[misc]
            for m in slow:
                out[m].append(np.array([_float(r.get(m)) for r in rows], dtype=np.float64))
    return {m: np.concatenate(v) if v else np.zeros(0) for m, v in out.items()}


def percentile_interval(replicates: np.ndarray, alpha: float) -> tuple[float, float]:
    """The ``1 - alpha`` percentile interval of bootstrap replicates."""
    low, high = np.quantile(replicates, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)
