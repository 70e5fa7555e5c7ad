"""The plain-data shapes shared by all metrics: a scored value with its provenance, and per-item statistics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

# Per-item statistics: every array has the number of items as its first dimension, so a resample of item
# indices (a bootstrap) is ``subset(stats, idx)``. Keys starting with CONST_PREFIX hold data that is the
# same for every resample (e.g. the reference set's feature mean and covariance for FID): never resampled.
ItemStats = Mapping[str, np.ndarray]
# Recomputes the corpus-level metric values from the statistics of a subset of items.
Aggregator = Callable[[ItemStats], Mapping[str, float]]


@dataclass(frozen=True)
class MetricValue:
    """One number and what produced it."""

    name: str
    value: float | None
    variant: str
    higher_is_better: bool = True
    # Set when the metric could not be computed (e.g. SPICE without its jars): the value is then None,
    # never 0, and the reason travels with it.
    unavailable: str | None = None
    extra: Mapping[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = {"name": self.name, "value": self.value, "variant": self.variant,
             "higher_is_better": self.higher_is_better}
        if self.unavailable is not None:
            d["unavailable"] = self.unavailable
        if self.extra:
            d["extra"] = dict(self.extra)
        return d


CONST_PREFIX = "const:"


def subset(stats: ItemStats, idx: np.ndarray) -> dict[str, np.ndarray]:
    """The statistics of the items at ``idx`` (indices may repeat, as in a bootstrap resample); constant
    entries (CONST_PREFIX, also when nested as 'prefix/' + CONST_PREFIX..., and any 0-d value) are passed
    through unchanged."""
    return {k: (np.asarray(v) if _is_const(k, v) else np.asarray(v)[idx]) for k, v in stats.items()}


def _is_const(key: str, value: object) -> bool:
    return key.startswith(CONST_PREFIX) or f"/{CONST_PREFIX}" in key or np.ndim(value) == 0
