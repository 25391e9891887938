"""Figures of a training trajectory (numpy and matplotlib only): the path on a contour plot, and its true
loss beside the loss the surface shows at the projected points."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputError
from ..landscape import Landscape
from ..projection import Trajectory
from .figures import _axes

__all__ = ["plot_trajectory", "plot_trajectory_loss", "plot_track_metric"]


def _need_traj(traj: Any, name: str) -> Trajectory:
    if not isinstance(traj, Trajectory):
        raise InputError(f"{name}: expected a Trajectory (landform.project_trajectory), got {type(traj).__name__}.")
    return traj


def plot_trajectory(
    traj: Trajectory,
    ax: Any = None,
    *,
    landscape: Landscape | None = None,
    origin: Sequence[float] | None = None,
    dims: tuple[int, int] = (0, 1),
    color: str = "white",
    annotate: bool = True,
):
    """Draw the checkpoints' projected coordinates as a path, e.g. over :func:`plot_contour`.

    Parameters
    ----------
    traj : Trajectory
    ax : matplotlib Axes, optional
        Draws on it (typically the Axes returned by ``plot_contour(landscape)``); a new figure when None.
    landscape : Landscape, optional
        The landscape under the path: refused unless its directions are the trajectory's (same fingerprint).
    origin : sequence of float, optional
        Coordinates of the landscape's centre in the trajectory's frame (a landscape centred at checkpoint
        ``i`` along the same directions has ``origin = traj.coords[i]``); the path is drawn relative to it.
    dims : (int, int)
        Which two coordinates to draw on x and y.
    annotate : bool
        Label the first and last checkpoints with their names.

    Returns
    -------
    Axes
        ``ax.lines[-1]`` after the call is the path, with exactly the drawn coordinates.

    Examples
    --------
    >>> t = Trajectory(np.array([[-2.0, -1.0], [-1.0, 0.5], [0.0, 0.0]]), [3, 2, 1], [3, 2, 1], [0, 0, 0],
    ...                [2.2, 1.1, 0], ("s0", "s1", "s2"), [0, 1, 2])
    >>> plot_trajectory(t).lines[-1].get_xydata().tolist()
    [[-2.0, -1.0], [-1.0, 0.5], [0.0, 0.0]]
    """
    traj = _need_traj(traj, "plot_trajectory")
    if traj.n < 2:
        raise InputError("plot_trajectory: needs a trajectory in 2 or more directions; use plot_trajectory_loss.")
    i, j = dims
    if not (0 <= i < traj.n and 0 <= j < traj.n and i != j):
        raise InputError(f"dims: expected two different axes below {traj.n}, got {dims}.")
    if landscape is not None:
        fa, fb = landscape.directions.get("fingerprint"), traj.directions.get("fingerprint")
        if fa is None or fa != fb:
            raise InputError(
                "landscape: its directions are not the trajectory's (fingerprints differ); project the checkpoints "
                "with the landscape's own directions (project_trajectory(objective, directions, checkpoints))."
            )
    xy = traj.coords[:, [i, j]].copy()
    if origin is not None:
        o = np.asarray(origin, dtype=float).reshape(-1)
        if o.shape != (traj.n,):
            raise InputError(f"origin: expected {traj.n} coordinates, got {o.shape}.")
        xy -= o[[i, j]]
    ax = _axes(ax)
    ax.plot(xy[:, 0], xy[:, 1], "-", color=color, lw=1.6, zorder=6, label="trajectory (projected)")
    ax.scatter(xy[:, 0], xy[:, 1], c=np.arange(len(xy)), cmap="autumn", s=22, zorder=7, edgecolor="k", lw=0.4)
    ax.scatter(xy[:1, 0], xy[:1, 1], marker="o", s=70, facecolor="none", edgecolor=color, lw=1.5, zorder=7)
    if annotate:
        for k in (0, len(xy) - 1):
            ax.annotate(traj.names[k], xy[k], textcoords="offset points", xytext=(5, 5), fontsize=7, color=color)
    ax.lines[-1].set_gid("trajectory")
    return ax


def plot_trajectory_loss(traj: Trajectory, ax: Any = None, *, log: bool = False, hidden: bool = True):
    """The true loss of every checkpoint beside the loss at its projection (what the surface shows there).

    Parameters
    ----------
    traj : Trajectory
    ax : matplotlib Axes, optional
    log : bool
        Logarithmic loss axis.
    hidden : bool
        Also draw ``off_plane / distance`` (the fraction of each checkpoint's displacement the subspace does
        not show) on a right-hand axis.

    Returns
    -------
    Axes
        Its first two lines are the true and the projected loss, against the step (or checkpoint index).

    Examples
    --------
    >>> t = Trajectory(np.zeros((2, 2)), [3.0, 1.0], [2.5, 1.0], [0.4, 0], [1.0, 0], ("a", "b"), [10, 20])
    >>> [ln.get_ydata().tolist() for ln in plot_trajectory_loss(t).lines[:2]]
    [[3.0, 1.0], [2.5, 1.0]]
    """
    traj = _need_traj(traj, "plot_trajectory_loss")
    ax = _axes(ax)
    x = traj.x
    ax.plot(x, traj.loss, "o-", color="C0", lw=1.6, ms=4, label="true loss at the checkpoint")
    ax.plot(x, traj.projected_loss, "s--", color="C1", lw=1.4, ms=4, label="loss at its projection (surface)")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step" if np.all(np.isfinite(traj.steps)) else "checkpoint")
    ax.set_ylabel("loss")
    if hidden:
        ax2 = ax.twinx()
        ax2.plot(x, traj.hidden_fraction, ":", color="0.4", lw=1.2, label="off-plane / distance")
        ax2.set_ylabel("off-plane distance / distance", color="0.4")
        ax2.set_ylim(0, 1.05)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="best", fontsize="small")
    else:
        ax.legend(loc="best", fontsize="small")
    return ax


_METRICS = {
    "loss": ("loss", None),
    "smad": ("SMAD (shared subspace)", "smad_std"),
    "n_minima": ("minima", None),
    "persistence_range": ("persistence range", None),
    "trace": ("Hessian trace", "trace_stderr"),
    "lambda_max": ("λ_max", None),
    "bottleneck_prev": ("bottleneck distance to the previous", None),
    "own_smad": ("SMAD (own Hessian subspace)", None),
}


def plot_track_metric(summary: dict[str, Any], metric: str, ax: Any = None):
    """One metric of a ``track`` run (its ``summary.json``) against the step, with its error bar if it has one.

    SMAD is drawn at the full-data value with the standard deviation over data subsamples; the trace with its
    Hutch++ standard error.

    Examples
    --------
    >>> s = {"rows": [{"step": 1, "smad": 0.2, "smad_std": 0.05}, {"step": 2, "smad": 0.1, "smad_std": 0.01}]}
    >>> plot_track_metric(s, "smad").lines[0].get_ydata().tolist()
    [0.2, 0.1]
    """
    if metric not in _METRICS:
        raise InputError(f"metric: expected one of {sorted(_METRICS)}, got {metric!r}.")
    label, err_key = _METRICS[metric]
    rows = summary.get("rows", [])
    steps = [r.get("step") for r in rows]
    x = np.asarray(steps if all(s is not None for s in steps) else range(len(rows)), dtype=float)
    y = np.asarray([np.nan if r.get(metric) is None else r[metric] for r in rows], dtype=float)
    ax = _axes(ax, figsize=(4.2, 3.0))
    ax.plot(x, y, "o-", color="C0", ms=4, lw=1.5)
    if err_key is not None and any(r.get(err_key) is not None for r in rows):
        e = np.asarray([np.nan if r.get(err_key) is None else r[err_key] for r in rows], dtype=float)
        ax.errorbar(x, y, yerr=e, fmt="none", ecolor="C0", alpha=0.6, capsize=3)
    ax.set_xlabel("step" if all(s is not None for s in steps) else "checkpoint")
    ax.set_ylabel(label)
    return ax
