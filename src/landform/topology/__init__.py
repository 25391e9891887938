"""Topology of sampled landscapes: merge trees, persistence, basins, SMAD, profiles.

numpy, scipy and numba only: this subpackage never imports torch (a test checks it), so saved landscapes
can be analysed anywhere.
"""

from .basins import BasinStatistics, basin_statistics
from .graph import grid_offsets, knn_graph
from .merge_tree import MergeTree, merge_tree, simplify
from .persistence import barcode, pairs_from_tree, persistence, persistence_range
from .profile import LandscapeProfile, ProfilePolygon, landscape_profile
from .smad import smad, smad_terms

__all__ = [
    "MergeTree",
    "merge_tree",
    "simplify",
    "persistence",
    "pairs_from_tree",
    "barcode",
    "persistence_range",
    "smad",
    "smad_terms",
    "LandscapeProfile",
    "ProfilePolygon",
    "landscape_profile",
    "grid_offsets",
    "knn_graph",
    "basin_statistics",
    "BasinStatistics",
]
