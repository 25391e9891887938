"""The compiled union-find sweep behind the merge tree, persistence and basins (numba, cached on disk).

One pass over the vertices in increasing (value, index) order computes, for every vertex, its arc label and
its steepest-descent basin, and for every node its parent in the merge tree and every minimum's death
(elder rule). Neighbours come either from an implicit n-D grid (strides and offsets) or from a CSR graph.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _find(uf, x):
    # path halving
    while uf[x] != x:
        uf[x] = uf[uf[x]]
        x = uf[x]
    return x


@njit(cache=True, nogil=True, inline="always")
def _touch(u, uf, rank, roots, n_roots, low, low_rank):
    """Account for neighbour u of the vertex being swept: its lowest swept neighbour and the distinct
    components (union-find roots) its swept neighbours belong to."""
    if uf[u] >= 0:
        if rank[u] < low_rank:
            low_rank = rank[u]
            low = u
        ru = _find(uf, u)
        for j in range(n_roots):
            if roots[j] == ru:
                return n_roots, low, low_rank
        roots[n_roots] = ru
        n_roots += 1
    return n_roots, low, low_rank


@njit(cache=True, nogil=True)
def sweep(order, shape, offsets, indptr, indices, use_csr):  # pragma: no cover - compiled
    """Run the sweep.

    Parameters
    ----------
    order : int64 (N,)
        Vertices in increasing (value, index) order.
    shape : int64 (n,)
        Grid shape (ignored when ``use_csr``).
    offsets : int64 (K, n)
        Neighbour offsets of the grid stencil.
    indptr, indices : int64
        CSR adjacency (used when ``use_csr``).

    Returns
    -------
    arc : int64 (N,)
        Vertex id of the lower node of the merge-tree arc each vertex lies on (a node's own id for nodes).
    basin : int64 (N,)
        Vertex id of the minimum that steepest descent from each vertex reaches.
    parent : int64 (N,)
        At node vertices: the vertex id of the parent node (-1 at the top node); meaningless elsewhere.
    death : int64 (N,)
        At minima: the vertex id of the saddle where the minimum's component dies (elder rule), -1 for the
        component that never dies; meaningless elsewhere.
    n_components : int
        Components left at the end (1 for a connected graph).
    """
    N = order.shape[0]
    ndim = shape.shape[0]
    K = offsets.shape[0]
    rank = np.empty(N, np.int64)
    for r in range(N):
        rank[order[r]] = r
    strides = np.empty(ndim, np.int64)
    s = 1
    for d in range(ndim - 1, -1, -1):
        strides[d] = s
        s *= shape[d]
    uf = np.full(N, -1, np.int64)
    birth = np.empty(N, np.int64)  # at roots: the elder minimum of the component
    top = np.empty(N, np.int64)  # at roots: the current top node of the component
    arc = np.empty(N, np.int64)
    basin = np.empty(N, np.int64)
    parent = np.full(N, -1, np.int64)
    death = np.full(N, -1, np.int64)
    maxdeg = K if not use_csr else 0
    if use_csr:
        for v in range(N):
            deg = indptr[v + 1] - indptr[v]
            if deg > maxdeg:
                maxdeg = deg
    roots = np.empty(max(maxdeg, 1), np.int64)
    coord = np.empty(ndim, np.int64)
    n_components = 0
    for r in range(N):
        v = order[r]
        n_roots = 0
        low = -1
        low_rank = r
        if use_csr:
            for e in range(indptr[v], indptr[v + 1]):
                n_roots, low, low_rank = _touch(indices[e], uf, rank, roots, n_roots, low, low_rank)
        else:
            rem = v
            for d in range(ndim):
                coord[d] = rem // strides[d]
                rem -= coord[d] * strides[d]
            for k in range(K):
                u = v
                ok = True
                for d in range(ndim):
                    c = coord[d] + offsets[k, d]
                    if c < 0 or c >= shape[d]:
                        ok = False
                        break
                    u += offsets[k, d] * strides[d]
                if ok:
                    n_roots, low, low_rank = _touch(u, uf, rank, roots, n_roots, low, low_rank)
        if n_roots == 0:  # a minimum: a new component
            uf[v] = v
            birth[v] = v
            top[v] = v
            arc[v] = v
            basin[v] = v
            n_components += 1
        elif n_roots == 1:  # a regular vertex: it extends its component's current arc
            ru = roots[0]
            uf[v] = ru
            arc[v] = top[ru]
            basin[v] = basin[low]
        else:  # a saddle: components join; the elder (lowest birth) survives
            elder = roots[0]
            for j in range(1, n_roots):
                if rank[birth[roots[j]]] < rank[birth[elder]]:
                    elder = roots[j]
            for j in range(n_roots):
                ru = roots[j]
                parent[top[ru]] = v
                if ru != elder:
                    death[birth[ru]] = v
                    uf[ru] = elder
            uf[v] = elder
            top[elder] = v
            arc[v] = v
            basin[v] = basin[low]
            n_components -= n_roots - 1
    return arc, basin, parent, death, n_components
