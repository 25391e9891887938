"""Matplotlib figures of saved results.

Every function takes a result and ``ax=None``, draws on ``ax`` (a new figure when None), and returns the
Axes. None calls ``plt.show()`` or changes global rc settings. Values are never transposed: axis 0 of a
landscape is drawn along x, axis 1 along y.
"""

from .curvature import plot_eigenvalue_map, plot_layer_curvature
from .figures import (
    plot_barcode,
    plot_comparison,
    plot_contour,
    plot_curve,
    plot_density,
    plot_diagram,
    plot_eigenvalues,
    plot_landscape,
    plot_merge_tree,
    plot_profile,
    plot_surface,
)
from .slices import plot_corner
from .trajectory import plot_track_metric, plot_trajectory, plot_trajectory_loss

__all__ = [
    "plot_curve",
    "plot_contour",
    "plot_surface",
    "plot_landscape",
    "plot_merge_tree",
    "plot_barcode",
    "plot_diagram",
    "plot_profile",
    "plot_eigenvalues",
    "plot_density",
    "plot_comparison",
    "plot_corner",
    "plot_trajectory",
    "plot_trajectory_loss",
    "plot_track_metric",
    "plot_eigenvalue_map",
    "plot_layer_curvature",
]
