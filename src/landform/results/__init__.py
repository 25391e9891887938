"""The results layer: every saved result of landform, in versioned, schema-checked formats. numpy only.

Nothing here imports torch, so a run folder can be opened, analysed and plotted on any machine. Each format
names itself (``"format"``) and carries a ``schema_version``; a reader refuses a foreign file or a newer
version with a :class:`~landform.errors.StoreError` that says what to do.

=====================  ==========================================  =======================================
result                 on disk                                      reader
=====================  ==========================================  =======================================
grid landscape         directory: landscape.json + values.npy       :func:`load_landscape` -> Landscape
scattered landscape    ``.npz``: values, points, meta               :func:`load_landscape` -> ScatteredLandscape
directions             ``directions.npz``: vectors, meta            :func:`load_directions` -> SavedDirections
spectral density       ``density.npz``: grid, density, nodes, ...   :func:`load_density` -> SavedDensity
merge tree             ``merge_tree.npz``: the tree's arrays, meta   :func:`load_merge_tree` -> MergeTree
persistence pairs      ``persistence.npy``: (n, 2) float64          :func:`load_pairs`
run summary            ``summary.json``                             :func:`load_run` -> RunResult
=====================  ==========================================  =======================================

Every file is written to a temporary name in the same directory, flushed and renamed over the final name, so
a reader never sees half a file. The modules: :mod:`~landform.results.landscape` (the in-memory landscapes),
:mod:`~landform.results.grid` (the grid directory), :mod:`~landform.results.directions`,
:mod:`~landform.results.density`, :mod:`~landform.results.topology` (tree and pairs) and
:mod:`~landform.results.summary` (the run summary); the shared ``.npz`` and atomic-write helpers are in
``landform._npz``. Every name is importable from ``landform.results``.
"""

from __future__ import annotations

from .._npz import atomic_save_npy, atomic_write_bytes, atomic_write_json
from .density import DENSITY_FORMAT, DENSITY_SCHEMA_VERSION, SavedDensity, load_density, save_density
from .directions import DIRECTIONS_FORMAT, DIRECTIONS_SCHEMA_VERSION, SavedDirections, load_directions, save_directions
from .grid import (
    FORMAT,
    META,
    SCHEMA_VERSION,
    assemble_chunks,
    assemble_metric_chunks,
    done_chunks,
    landscape_meta,
    load_grid,
    load_landscape,
    read_landscape_meta,
    save_landscape,
    save_metrics,
)
from .landscape import SCATTERED_FORMAT, SCATTERED_SCHEMA_VERSION, Landscape, ScatteredLandscape
from .summary import (
    RUN_FORMAT,
    RUN_SCHEMA_VERSION,
    HessianSummary,
    RunResult,
    SharpnessSummary,
    TopologySummary,
    load_run,
)
from .topology import TREE_FORMAT, TREE_SCHEMA_VERSION, load_merge_tree, load_pairs, save_merge_tree

__all__ = [
    "Landscape",
    "ScatteredLandscape",
    "SavedDirections",
    "SavedDensity",
    "TopologySummary",
    "HessianSummary",
    "SharpnessSummary",
    "RunResult",
    "load_landscape",
    "save_landscape",
    "load_directions",
    "save_directions",
    "load_density",
    "save_density",
    "load_merge_tree",
    "save_merge_tree",
    "load_pairs",
    "load_run",
    "atomic_write_bytes",
    "atomic_save_npy",
    "atomic_write_json",
    "SCHEMA_VERSION",
    "RUN_SCHEMA_VERSION",
    # format names and versions, and the grid store's building blocks (landform.store uses them)
    "FORMAT",
    "META",
    "SCATTERED_FORMAT",
    "SCATTERED_SCHEMA_VERSION",
    "DIRECTIONS_FORMAT",
    "DIRECTIONS_SCHEMA_VERSION",
    "DENSITY_FORMAT",
    "DENSITY_SCHEMA_VERSION",
    "TREE_FORMAT",
    "TREE_SCHEMA_VERSION",
    "RUN_FORMAT",
    "landscape_meta",
    "read_landscape_meta",
    "load_grid",
    "save_metrics",
    "assemble_chunks",
    "assemble_metric_chunks",
    "done_chunks",
]
