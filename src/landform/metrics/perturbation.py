"""Average- and worst-case sharpness (after Andriushchenko et al. 2023)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError
from ..objective import Objective

__all__ = ["Sharpness", "sharpness"]


@dataclass(frozen=True)
class Sharpness:
    """``value = L(theta + delta) - L(theta)``: the mean over random delta (average) or the largest found
    (worst), with the base loss, the radius and how it was measured."""

    value: float
    kind: str
    rho: float
    norm: str
    adaptive: bool
    base_loss: float
    stderr: float
    n_evals: int


def sharpness(
    objective: Objective,
    *,
    rho: float,
    kind: str = "average",
    norm: str = "l2",
    adaptive: bool = False,
    n_samples: int = 16,
    steps: int = 20,
    seed: int = 0,
) -> Sharpness:
    """Sharpness of the dataset loss at the model's parameters.

    The perturbation lives in a ball of radius ``rho``: ``||delta||_2 <= rho`` (``norm="l2"``) or
    ``|delta_i| <= rho`` (``"linf"``). With ``adaptive=True`` the ball is scaled element-wise by the weights,
    ``delta = |theta| * u`` with u in the ball (Kwon et al. 2021's adaptive sharpness).

    - ``kind="average"``: the mean increase over ``n_samples`` random perturbations on the ball's boundary:
      a Gaussian direction scaled to norm rho for L2, random signs times rho for L-infinity. (For large P a
      Gaussian N(0, rho^2/P) concentrates on that sphere.) ``stderr`` is the standard error of that mean.
    - ``kind="worst"``: projected gradient ascent (``steps`` steps of size 2 rho / steps, normalised gradient
      for L2, its sign for L-infinity) started from the worst of the same random perturbations; the largest
      increase seen. So at equal rho, seed and samples, worst >= average by construction.

    Both are exactly 0 for rho = 0.

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> obj = Objective(torch.nn.Linear(3, 1), (torch.randn(32, 3), torch.randn(32, 1)), torch.nn.functional.mse_loss)
    >>> s = [sharpness(obj, rho=r, kind="worst").value for r in (0.0, 0.1, 0.2)]
    >>> s[0] == 0.0 and s[0] < s[1] < s[2]
    True
    """
    rho = float(rho)
    if not np.isfinite(rho) or rho < 0:
        raise InputError(f"rho: expected a finite number >= 0, got {rho}.")
    if kind not in ("average", "worst"):
        raise InputError(f"kind: expected 'average' or 'worst', got {kind!r}.")
    if norm not in ("l2", "linf"):
        raise InputError(f"norm: expected 'l2' or 'linf', got {norm!r}.")
    if n_samples < 1 or steps < 0:
        raise InputError(f"n_samples >= 1 and steps >= 0 expected, got {n_samples} and {steps}.")
    theta0 = objective.theta0
    base = objective.loss()
    if rho == 0:
        return Sharpness(0.0, kind, rho, norm, adaptive, base, 0.0, 1)
    scale = theta0.abs() if adaptive else torch.ones_like(theta0)
    gen = torch.Generator().manual_seed(int(seed))
    P = objective.num_params

    def project(u: torch.Tensor) -> torch.Tensor:
        if norm == "l2":
            n = u.norm()
            return u * (rho / n) if n > rho else u
        return u.clamp(-rho, rho)

    us = []
    for _ in range(n_samples):
        if norm == "l2":
            z = torch.randn(P, generator=gen, dtype=torch.float64)
            us.append((z * (rho / z.norm())).to(theta0))
        else:
            us.append((torch.randint(0, 2, (P,), generator=gen) * 2 - 1).to(theta0) * rho)
    thetas = torch.stack([theta0 + scale * u for u in us])
    losses = objective.loss_batch(thetas).numpy() - base
    if kind == "average":
        se = float(losses.std(ddof=1) / np.sqrt(losses.size)) if losses.size > 1 else 0.0
        return Sharpness(float(losses.mean()), kind, rho, norm, adaptive, base, se, losses.size)
    best = float(losses.max())
    u = us[int(np.argmax(losses))].clone()
    eta = 2.0 * rho / max(steps, 1)
    evals = losses.size
    for _ in range(steps):
        g = objective.gradient(theta0 + scale * u) * scale  # d L / d u
        if norm == "l2":
            gn = g.norm()
            if gn == 0:
                break
            u = project(u + eta * g / gn)
        else:
            u = project(u + eta * torch.sign(g))
        val = objective.loss(theta0 + scale * u) - base
        evals += 1
        best = max(best, val)
    return Sharpness(best, kind, rho, norm, adaptive, base, 0.0, evals)
