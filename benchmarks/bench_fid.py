"""Time FID on large feature sets: the eigh fast path vs the scipy-sqrtm reference (pytorch-fid's formula).

Features are seeded low-rank-plus-noise (Inception-like spectra), real vs a perturbed "generator".
Usage: python benchmarks/bench_fid.py [--n 10000 --dim 2048 --rank 128 --seed 0 --threads 1]
--threads caps BLAS threads (needs threadpoolctl): on a loaded machine OpenBLAS's spinning threads can make
small LAPACK calls 100x slower, which would measure the neighbours rather than the algorithm.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from typing import ContextManager

import numpy as np
import scipy.linalg  # noqa: F401  loaded before threadpool_limits, which only caps libraries already loaded

from mmbench.metrics.image_generation import feature_stats, frechet_distance


def make_features(n: int, dim: int, rank: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two (n, dim) float64 sets: shared low-rank structure, the fake one rotated a bit, shifted and noisier."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((rank, dim)) / np.sqrt(rank)
    scales = np.linspace(3.0, 0.1, rank)[:, None]
    real = rng.standard_normal((n, rank)) @ (scales * basis) + 0.3 * rng.standard_normal((n, dim))
    fake_basis = basis + 0.2 * rng.standard_normal((rank, dim)) / np.sqrt(rank)
    fake = rng.standard_normal((n, rank)) @ (scales * fake_basis) + 0.35 * rng.standard_normal((n, dim)) + 0.05
    return real, fake


def blas_threads(n: int | None) -> ContextManager[object]:
    """A context capping BLAS threads at n (None: leave the library default)."""
    if n is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits  # optional: only this benchmark needs it

    return threadpool_limits(limits=n, user_api="blas")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="samples per set")
    parser.add_argument("--dim", type=int, default=2048, help="feature dimension")
    parser.add_argument("--rank", type=int, default=128, help="rank of the shared structure")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads (default: library default)")
    args = parser.parse_args()
    with blas_threads(args.threads):
        run(args)


def run(args: argparse.Namespace) -> None:
    """Build the features, then time the shared stats and each trace-sqrt path."""
    real, fake = make_features(args.n, args.dim, args.rank, args.seed)
    t0 = time.perf_counter()
    mu1, s1 = feature_stats(real)
    mu2, s2 = feature_stats(fake)
    t_stats = time.perf_counter() - t0
    print(f"features: 2 x ({args.n}, {args.dim}) float64, rank {args.rank} + noise, seed {args.seed}, "
          f"BLAS threads: {args.threads or 'default'}")
    print(f"mean/covariance of both sets: {t_stats:.2f} s (shared by both paths)")

    # Warm-up on a tiny problem so that first-call costs are not timed.
    for method in ("eigh", "sqrtm"):
        frechet_distance(np.zeros(4), np.eye(4), np.ones(4), 2 * np.eye(4), method=method)

    t0 = time.perf_counter()
    fast = frechet_distance(mu1, s1, mu2, s2, method="eigh")
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = frechet_distance(mu1, s1, mu2, s2, method="sqrtm")
    t_ref = time.perf_counter() - t0

    print(f"eigh fast path : {t_fast:8.2f} s   FID = {fast:.10f}")
    print(f"scipy sqrtm ref: {t_ref:8.2f} s   FID = {ref:.10f}")
    print(f"speed-up: {t_ref / t_fast:.1f}x   relative difference: {abs(fast - ref) / abs(ref):.3e}")


if __name__ == "__main__":
    main()
