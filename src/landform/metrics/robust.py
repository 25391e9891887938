"""SMAD with an error bar: over direction seeds and/or data subsamples."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..objective import Objective

__all__ = ["RobustSMAD", "robust_smad"]


@dataclass(frozen=True, eq=False)
class RobustSMAD:
    """SMAD, number of minima and persistence range per repetition, with their mean and spread."""

    smad: np.ndarray
    n_minima: np.ndarray
    persistence_range: np.ndarray
    seeds: tuple[int, ...]
    data_fraction: float | None
    directions: str

    @property
    def mean(self) -> float:
        return float(self.smad.mean())

    @property
    def std(self) -> float:
        return float(self.smad.std(ddof=1)) if self.smad.size > 1 else 0.0

    def summary(self) -> dict:
        return {
            "smad_mean": self.mean,
            "smad_std": self.std,
            "smad": self.smad.tolist(),
            "n_minima": self.n_minima.tolist(),
            "persistence_range": self.persistence_range.tolist(),
            "seeds": list(self.seeds),
            "data_fraction": self.data_fraction,
            "directions": self.directions,
        }


def robust_smad(
    objective: Objective,
    *,
    dims: int = 2,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    data_fraction: float | None = None,
    directions: str = "filter",
    span: float = 1.0,
    resolution: int = 21,
) -> RobustSMAD:
    """SMAD over several direction seeds and/or data subsamples.

    For each seed: the data is subsampled to ``data_fraction`` of every batch (when given), directions are
    drawn with that seed (``"random"``, ``"filter"`` (filter-normalised random) or ``"hessian"`` (top
    eigenvectors of the subsampled loss, whose Lanczos start vector uses the seed)), the grid is evaluated
    and its SMAD, number of minima and persistence range recorded.
    """
    from ..directions import random_directions
    from ..evaluate import grid_landscape
    from ..topology import merge_tree, pairs_from_tree, persistence_range, smad

    if directions not in ("random", "filter", "hessian"):
        raise InputError(f"directions: expected 'random', 'filter' or 'hessian', got {directions!r}.")
    seeds = tuple(int(s) for s in seeds)
    if len(seeds) < 2:
        raise InputError(f"seeds: an error bar needs at least 2 repetitions, got {len(seeds)}.")
    if data_fraction is not None and not (0 < data_fraction <= 1):
        raise InputError(f"data_fraction: expected a number in (0, 1], got {data_fraction}.")
    vals, mins, pr = [], [], []
    for s in seeds:
        obj = objective.subset(data_fraction, seed=s) if data_fraction is not None else objective
        if directions == "hessian":
            from ..hessian import hessian_directions

            d = hessian_directions(obj, dims, seed=s)
        else:
            d = random_directions(obj, dims, seed=s, normalization="filter" if directions == "filter" else None)
        ls = grid_landscape(obj, d, span=span, resolution=resolution, progress=False)
        tree = merge_tree(ls.values)  # NaN/inf losses raise a clear error there
        vals.append(smad(tree))
        mins.append(tree.n_minima)
        pr.append(persistence_range(pairs_from_tree(tree)))
    return RobustSMAD(np.asarray(vals), np.asarray(mins), np.asarray(pr), seeds, data_fraction, directions)
