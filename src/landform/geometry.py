"""The geometry of a landscape's axes: spans in absolute or relative units, landscaper's grid, automatic spans.

landform's axis coordinate ``alpha_i`` is the coefficient of direction ``d_i``: the point is
``theta0 + sum_i alpha_i d_i``. With unit directions (Hessian eigenvectors, un-normalised random directions)
``alpha_i`` is a Euclidean distance in parameter space (``span_units="absolute"``, the default).

``span_units="relative"`` reads a span as a fraction of ``||theta0||`` (the norm of the trainable
parameters): an axis of relative span ``s`` ends exactly at distance ``s * ||theta0||`` from ``theta0``, so
its coefficient range is ``s * ||theta0|| / ||d_i||``. These are the units of the paper's package
(landscaper, ``compute_loss_landscape(distance=...)``), with one difference: landscaper labels its axes
``[-distance, distance]`` but its grid steps by ``||theta0|| * distance / (steps / 2)``, so its edge point sits
at ``distance * (steps // 2) / (steps / 2)`` (:func:`landscaper_span`), short of its label by that factor for
odd ``steps``. landform's axes are true coordinates.

:func:`auto_span` picks a span per axis from the curvature along it, so that the quadratic model of the loss
rises by a stated amount at the edge of every axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .directions import Directions
from .errors import InputError, NonFiniteError
from .objective import Objective

__all__ = [
    "SPAN_UNITS",
    "AutoSpan",
    "auto_span",
    "landscaper_span",
    "normalize_directions",
    "resolve_span",
    "theta0_norm",
]

SPAN_UNITS = ("absolute", "relative")


def theta0_norm(objective: Objective) -> float:
    """Euclidean norm of the objective's trainable parameters ``||theta0||`` (computed in float64)."""
    return float(objective.theta0.detach().double().norm())


def landscaper_span(distance: float, steps: int) -> float:
    """The relative span of the grid that landscaper 1.3.1 computes for ``(distance, steps)``.

    landscaper steps by ``||theta0|| * distance / (steps / 2)`` from the centre, ``steps // 2`` times each way,
    so its last point is at ``distance * (steps // 2) / (steps / 2)`` of ``||theta0||`` (its axis labels say
    ``distance``). ``grid_landscape(..., span=landscaper_span(distance, steps), span_units="relative",
    resolution=steps)`` evaluates the same points. ``steps`` must be odd: landscaper's grid for an even number
    of steps is asymmetric (an ``InputError`` says which (lo, hi) span reproduces it).

    Examples
    --------
    >>> landscaper_span(0.05, 51)  # the paper's fit-regime setting: 0.05 * 25 / 25.5
    0.049019607843137254
    >>> landscaper_span(0.5, 11)
    0.45454545454545453
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
        raise InputError(f"steps: expected an integer >= 2, got {steps!r}.")
    if isinstance(distance, bool) or not isinstance(distance, (int, float, np.integer, np.floating)):
        raise InputError(f"distance: expected a finite number > 0 (a fraction of ||theta0||), got {distance!r}.")
    distance = float(distance)
    if not math.isfinite(distance) or distance <= 0:
        raise InputError(f"distance: expected a finite number > 0, got {distance}.")
    if steps % 2 == 0:
        s = int(steps)
        raise InputError(
            f"steps: landscaper's grid of {s} (even) steps is not symmetric: it runs from -{distance:g} to "
            f"{distance * (s // 2 - 1) / (s / 2):g} of ||theta0||, so no single span reproduces it. Use an odd "
            f"number of steps, or span=[(-{distance:g}, {distance * (s // 2 - 1) / (s / 2):g})] * dims with "
            f"span_units='relative', resolution={s}."
        )
    return distance * (int(steps) // 2) / (int(steps) / 2)


@dataclass(frozen=True)
class AutoSpan:
    """Spans chosen from the curvature by :func:`auto_span`; pass it as ``span=`` to the landscape functions.

    Attributes
    ----------
    span : tuple of float
        Half-width of each axis as a coefficient of its direction (absolute units).
    rise : float
        The loss rise of the quadratic model at the edge of each axis.
    curvatures : tuple of float
        ``d_i^T H d_i``: the second derivative of the loss along axis i per unit coefficient.
    rules : tuple of str
        How each span was set: ``"curvature"`` (``sqrt(2 rise / c_i)``), ``"negative curvature"`` (``c_i < 0``:
        ``sqrt(2 rise / |c_i|)``, where the quadratic model *falls* by ``rise``) or ``"flat"`` (``|c_i|`` below
        ``1e-8`` of the largest ``|c|``: the widest span of the other axes, in distance).
    source : str
        ``"eigenvalues"`` (unit Hessian eigenvectors: ``c_i = lambda_i``, no HVP) or ``"hvp"`` (one
        Hessian-vector product per direction).
    n_hvp : int
    fingerprint : str
        Fingerprint of the directions the spans belong to.
    """

    span: tuple[float, ...]
    rise: float
    curvatures: tuple[float, ...]
    rules: tuple[str, ...]
    source: str
    n_hvp: int
    fingerprint: str

    def record(self) -> dict[str, Any]:
        """JSON-serialisable description (the provenance entry)."""
        return {
            "rise": self.rise,
            "span": list(self.span),
            "curvatures": list(self.curvatures),
            "rules": list(self.rules),
            "source": self.source,
            "n_hvp": self.n_hvp,
        }


def _is_unit_eigenbasis(d: Directions) -> bool:
    if d.kind != "hessian" or d.normalization is not None or d.eigenvalues is None:
        return False
    return len(d.eigenvalues) >= d.n and bool(np.allclose(d.norms, 1.0, atol=1e-4))


def auto_span(objective: Objective, directions: Any, *, rise: float = 1.0, mode: str = "rev") -> AutoSpan:
    """Choose each axis' span so the quadratic model of the loss rises by ``rise`` at the axis' edge.

    Along axis i the quadratic model is ``f(theta0 + a d_i) ~ f0 + a g.d_i + a^2 c_i / 2`` with the directional
    curvature ``c_i = d_i^T H d_i``; its curvature term reaches ``rise`` at ``a = sqrt(2 rise / c_i)``. For unit
    Hessian eigenvectors ``c_i`` is the eigenvalue ``lambda_i`` (no extra work: the paper's anisotropic
    ``lambda_i ** -0.5`` scaling); for any other directions it is measured with one Hessian-vector product each.
    A negative ``c_i`` uses ``|c_i|`` (the model falls by ``rise`` there); a flat axis (``|c_i|`` below ``1e-8``
    of the largest) gets the widest distance of the other axes. The rule used per axis is recorded.

    Parameters
    ----------
    objective : Objective
    directions : Directions, (n, P) tensor, or list of per-parameter dicts
    rise : float
        Loss rise at the edge, in the loss's units (> 0).
    mode : {"rev", "fwd"}
        HVP mode (see :meth:`Objective.hvp`).

    Returns
    -------
    AutoSpan

    Examples
    --------
    >>> import torch
    >>> from landform import Objective
    >>> x = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    >>> obj = Objective(torch.nn.Linear(2, 1, bias=False), (x, torch.zeros(32, 1)), torch.nn.functional.mse_loss)
    >>> a = auto_span(obj, torch.eye(2), rise=0.5)  # mse: H = 2 x^T x / N
    >>> H = 2 * x.T @ x / 32
    >>> [round(s, 4) for s in a.span] == [round(float(1 / H[i, i].sqrt()), 4) for i in range(2)]
    True
    """
    from .directions import as_directions

    d = as_directions(objective, directions)
    if isinstance(rise, bool) or not isinstance(rise, (int, float, np.integer, np.floating)):
        raise InputError(f"rise: expected a finite loss rise > 0 (in the loss's units), got {rise!r}.")
    rise = float(rise)
    if not math.isfinite(rise) or rise <= 0:
        raise InputError(f"rise: expected a finite loss rise > 0 (in the loss's units), got {rise!r}.")
    n_hvp = 0
    if _is_unit_eigenbasis(d):
        curv = np.asarray(d.eigenvalues[: d.n], dtype=np.float64)
        source = "eigenvalues"
    else:
        curv = np.empty(d.n)
        for i, v in enumerate(d.vectors):
            hv = objective.hvp(v, mode=mode)
            curv[i] = float((v.double() * hv.double()).sum())
            n_hvp += 1
        source = "hvp"
    if not np.all(np.isfinite(curv)):
        raise NonFiniteError(f"auto_span: the curvature along the directions is not finite ({curv.tolist()}).")
    scale = float(np.abs(curv).max())
    if scale == 0.0:
        raise InputError(
            "directions: the loss has zero curvature along every direction, so no span reaches a rise; give the "
            "span explicitly (span=...)."
        )
    flat = np.abs(curv) <= 1e-8 * scale
    spans = np.full(d.n, np.nan)
    spans[~flat] = np.sqrt(2.0 * rise / np.abs(curv[~flat]))
    norms = d.norms
    if flat.any():
        widest = float(np.max(spans[~flat] * norms[~flat]))  # a distance in parameter space
        spans[flat] = widest / norms[flat]
    rules = tuple(
        "flat" if f else ("negative curvature" if c < 0 else "curvature") for f, c in zip(flat, curv, strict=True)
    )
    return AutoSpan(
        span=tuple(float(s) for s in spans),
        rise=rise,
        curvatures=tuple(float(c) for c in curv),
        rules=rules,
        source=source,
        n_hvp=n_hvp,
        fingerprint=d.fingerprint(),
    )


def span_number(x: Any, i: int, given: Any) -> float:
    """``x`` (a half-width or one end of axis ``i``'s span ``given``) as a float, or an InputError naming the axis."""
    bad = InputError(f"span: axis {i} has {given!r}; expected a number (the half-width) or a (lo, hi) pair of numbers.")
    if isinstance(x, (bool, np.bool_, str, bytes, complex, np.complexfloating)):
        raise bad
    try:
        return float(x)
    except OverflowError as exc:  # a Python int beyond float64
        raise InputError(f"span: axis {i} has a number beyond float64's range ({str(x)[:8]}..., {len(str(x))} "
                         "digits); pass a smaller span.") from exc
    except (TypeError, ValueError) as exc:
        raise bad from exc


def _finite(span: Any) -> bool:
    return all(math.isfinite(x) for x in (span if isinstance(span, tuple) else (span,)))


def _scale_span(s: Any, f: float, i: int) -> Any:
    if isinstance(s, (tuple, list, np.ndarray)):
        if len(s) != 2:
            raise InputError(f"span: axis {i} has {s!r}; expected a number or a (lo, hi) pair.")
        return (span_number(s[0], i, s) * f, span_number(s[1], i, s) * f)
    return span_number(s, i, s) * f


def resolve_span(
    objective: Objective, directions: Directions, span: Any, span_units: str = "absolute"
) -> tuple[Any, dict[str, Any]]:
    """Convert a span given in ``span_units`` (or ``"auto"`` / an :class:`AutoSpan`) to coefficient spans.

    Parameters
    ----------
    objective : Objective
    directions : Directions
    span : float, sequence of float or (lo, hi), ``"auto"`` or AutoSpan
        As for :func:`landform.grid_axes`; ``"auto"`` is ``auto_span(objective, directions)`` (rise 1).
    span_units : {"absolute", "relative"}
        ``"relative"``: fractions of ``||theta0||``; axis i's coefficient span is ``span * ||theta0|| / ||d_i||``,
        so its edge lies at distance ``span * ||theta0||`` from ``theta0``.

    Returns
    -------
    span : list
        One coefficient span (number or (lo, hi)) per direction, for :func:`landform.grid_axes`.
    record : dict
        ``span_units``, the span as given, ``theta0_norm``, ``direction_norms``, ``absolute_span`` (the
        coefficient spans) and ``relative_span`` (the edge distances over ``||theta0||``); ``auto`` holds the
        :meth:`AutoSpan.record` when the span was chosen from the curvature.

    Examples
    --------
    >>> import torch
    >>> from landform import Objective, random_directions
    >>> lin = torch.nn.Linear(3, 1)
    >>> obj = Objective(lin, (torch.randn(8, 3), torch.randn(8, 1)), torch.nn.functional.mse_loss)
    >>> d = random_directions(obj, 2, seed=0)  # orthonormal: ||d_i|| = 1
    >>> span, rec = resolve_span(obj, d, 0.5, "relative")
    >>> [round(s / rec["theta0_norm"], 6) for s in span]
    [0.5, 0.5]
    """
    if span_units not in SPAN_UNITS:
        raise InputError(f"span_units: expected 'absolute' or 'relative', got {span_units!r}.")
    n = directions.n
    norms = [float(x) for x in directions.norms]
    t0n = theta0_norm(objective)
    if (isinstance(span, AutoSpan) or (isinstance(span, str) and span == "auto")) and span_units != "absolute":
        raise InputError(
            "span_units: a span chosen from the curvature ('auto' or an AutoSpan) is already a coefficient span; "
            f"span_units={span_units!r} does not apply to it. Drop span_units, or give the span as a number."
        )
    auto = None
    if isinstance(span, str):
        if span != "auto":
            raise InputError(f"span: expected a number, a sequence, 'auto' or an AutoSpan, got {span!r}.")
        span = auto_span(objective, directions)
    if isinstance(span, AutoSpan):
        if span.fingerprint != directions.fingerprint() or len(span.span) != n:
            raise InputError(
                "span: this AutoSpan was computed for other directions; call auto_span(objective, directions) "
                "with the directions of this landscape."
            )
        auto = span
        given: Any = list(span.span)
        coeff = list(span.span)
        units = "absolute"
    else:
        from ._validation import per_axis

        given = span
        per = per_axis(span, n, "span")
        if span_units == "relative":
            if t0n == 0.0:
                raise InputError(
                    "span_units: 'relative' spans are fractions of ||theta0||, which is 0 for this model; use "
                    "span_units='absolute'."
                )
            coeff = [_scale_span(s, t0n / norms[i], i) for i, s in enumerate(per)]
            for i, (s, c) in enumerate(zip(per, coeff, strict=True)):
                # finite as given, not once converted (a span non-finite as given is refused by grid_axes)
                if _finite(_scale_span(s, 1.0, i)) and not _finite(c):
                    raise InputError(
                        f"span: axis {i} has {s!r} (relative); times ||theta0|| / ||d_{i}|| ({t0n:g} / {norms[i]:g}) "
                        "that is beyond float64's range. Pass a smaller relative span."
                    )
        else:
            coeff = [_scale_span(s, 1.0, i) for i, s in enumerate(per)]
        units = span_units

    def rel(s: Any, i: int) -> Any:
        f = norms[i] / t0n if t0n > 0 else float("nan")
        return [s[0] * f, s[1] * f] if isinstance(s, tuple) else s * f

    record = {
        "span_units": units,
        "span": [list(s) if isinstance(s, tuple) else s for s in given] if isinstance(given, list) else given,
        "theta0_norm": t0n,
        "direction_norms": norms,
        "absolute_span": [list(s) if isinstance(s, tuple) else s for s in coeff],
        "relative_span": [rel(s, i) for i, s in enumerate(coeff)],
    }
    if auto is not None:
        record["auto"] = auto.record()
    if isinstance(record["span"], tuple):
        record["span"] = list(record["span"])
    return coeff, record


def as_absolute(points: np.ndarray, objective: Objective, directions: Directions, span_units: str) -> np.ndarray:
    """Scattered coordinates in ``span_units`` -> coefficients (relative: times ``||theta0|| / ||d_i||``)."""
    if span_units not in SPAN_UNITS:
        raise InputError(f"span_units: expected 'absolute' or 'relative', got {span_units!r}.")
    if span_units == "absolute":
        return points
    return points * (theta0_norm(objective) / directions.norms)[None, :]


def normalize_directions(objective: Objective, directions: Any, normalization: str | None) -> Directions:
    """Rescale given directions per tensor (``"layer"``, ``"numel"``) or per filter (``"filter"``).

    For directions that did not come from :func:`landform.random_directions` or
    :func:`landform.hessian_directions` (which take ``normalization=`` themselves), e.g. to put Hessian
    eigenvectors computed once into the paper's geometry. ``None`` returns them as they are. The kind, seed
    and eigenvalues are kept (the eigenvalues describe the directions before rescaling).

    Examples
    --------
    >>> import torch
    >>> from landform import Objective
    >>> obj = Objective(torch.nn.Linear(3, 2), (torch.randn(4, 3), torch.randn(4, 2)), torch.nn.functional.mse_loss)
    >>> d = normalize_directions(obj, torch.randn(1, 8), "numel")  # blocks: weight (6), bias (2)
    >>> [round(float(d.vectors[0, s].norm()) ** 2, 4) for s in obj.layout.blocks()]
    [6.0, 2.0]
    """
    from .directions import NORMALIZATIONS, as_directions, normalize_vector

    if normalization not in NORMALIZATIONS:
        raise InputError(f"normalization: expected None, 'filter', 'layer' or 'numel', got {normalization!r}.")
    d = as_directions(objective, directions)
    if normalization is None:
        return d
    vecs = torch.stack([normalize_vector(objective, v.double(), normalization) for v in d.vectors]).to(objective.dtype)
    return Directions(vecs, d.kind, normalization, d.seed, d.eigenvalues, dict(d.extra))
