"""SMAD with an error bar: over direction seeds and/or data subsamples."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._validation import check_choice, check_fraction, check_int, check_objective
from ..errors import InputError, NonFiniteError
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
    from .._chain import directions_of_kind, grid_topology
    from ..evaluate import grid_landscape

    check_objective("objective", objective)
    directions = check_choice("directions", directions, ("random", "filter", "hessian"))
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise InputError(f"seeds: expected a sequence of integer seeds such as (0, 1, 2), got {seeds!r}.")
    seeds = tuple(check_int("seeds", s, minimum=0) for s in seeds)
    if len(seeds) < 2:
        raise InputError(f"seeds: an error bar needs at least 2 repetitions, got {len(seeds)}.")
    if len(set(seeds)) != len(seeds):
        raise InputError(f"seeds: {seeds} repeats a seed, which repeats a run; pass distinct seeds.")
    if data_fraction is not None:
        data_fraction = check_fraction("data_fraction", data_fraction)
    n_dirs = check_int("dims", dims, minimum=1, maximum=objective.num_params - 1)
    dims = n_dirs
    check_int("resolution", resolution, minimum=2)
    vals, mins, pr = [], [], []
    for s in seeds:
        obj = objective.subset(data_fraction, seed=s) if data_fraction is not None else objective
        d = directions_of_kind(obj, directions, dims, seed=s)
        ls = grid_landscape(obj, d, span=span, resolution=resolution, progress=False)
        if ls.n_nonfinite:
            raise NonFiniteError(
                f"robust_smad: seed {s}'s landscape has {ls.n_nonfinite} NaN/inf losses of {ls.values.size}, so its "
                "SMAD is undefined; pass a smaller span, or check the model for NaN/inf weights."
            )
        topo = grid_topology(ls.values)
        vals.append(topo.smad)
        mins.append(topo.tree.n_minima)
        pr.append(topo.persistence_range)
    return RobustSMAD(np.asarray(vals), np.asarray(mins), np.asarray(pr), seeds, data_fraction, directions)
