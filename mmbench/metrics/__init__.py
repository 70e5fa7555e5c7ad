"""Metrics: pure functions and torchmetrics-style classes, each tested against its reference implementation.

Conventions (every metric module follows them):
- no I/O (the pycocoevalcap Java scorers are the one exception, and they are owned by an object);
- the variant (normaliser, scale, tokenisation) is an explicit argument and is returned in the result;
- per-item statistics come out next to the corpus value, and a module-level ``aggregate(stats, idx)``
  recomputes the corpus value from the statistics of any subset of items, so reports can bootstrap.
"""
