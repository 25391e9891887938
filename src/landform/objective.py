"""The objective: the mean loss of a model over a whole dataset, as a pure function of a flat parameter vector.

:class:`Objective` snapshots the model's trainable parameters into a flat vector ``theta0`` of length ``P``
and evaluates ``L(theta) = (1/N) sum_b n_b * loss_fn(model_theta(x_b), y_b)`` through
:func:`torch.func.functional_call`. The user's model is never modified: the parameters, buffers and
train/eval flags are the same after every call. Evaluation is in eval mode (BatchNorm running statistics,
no dropout).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from torch.func import functional_call

from ._context import eval_mode, math_attention
from ._data import Batch, concat_batches, index_batch, load_batches, nbytes, shard_batches
from ._deprecate import renamed_arguments
from ._dist import all_reduce_sum, rank_world, world_group
from ._validation import check_bool, check_choice, check_finite_scalar, check_finite_tensor, check_int
from .errors import InputError, LandformError, NonFiniteError
from .params import ParamLayout

__all__ = ["Objective"]




class Objective:
    """Mean loss of ``model`` over all of ``data``, as a function of a flat parameter vector.

    Parameters
    ----------
    model : torch.nn.Module
        The trained model. Its trainable parameters (``requires_grad=True``) define the space; the others
        and the buffers stay fixed at their current values.
    data : DataLoader, (inputs, targets) pair of tensors, or iterable of (inputs, targets) batches
        The whole evaluation set. It is read once and cached on ``device``. ``inputs`` may be a tensor, a
        tuple of tensors (``model(*inputs)``) or a dict (``model(**inputs)``).
    loss_fn : callable
        ``loss_fn(outputs, targets)`` returning the scalar MEAN loss of a batch. The dataset loss is the
        batch-size weighted mean of the batch losses.
    device : str or torch.device, optional
        Must be the device of the model's parameters (default: that device). Data is moved there.
    batch_mode : {"auto", "loop", "vmap"}
        How a batch of parameter vectors is evaluated. ``"loop"`` runs one point at a time with the data
        batched; ``"vmap"`` vectorises over points with :func:`torch.func.vmap`. ``"auto"`` uses the loop
        on CPU (measured about 3x faster there for conv nets) and, on an accelerator, times both once on a
        few points and keeps the faster.
    batch_size : int, optional
        Batch size used when ``data`` is an (inputs, targets) pair (default: all at once).
    point_batch_size : int
        Points per vectorised call in vmap mode, and per call of :meth:`loss_batch` in landscapes (memory knob;
        halved with a warning on out-of-memory). Its old name ``points_per_chunk`` still works, with a
        DeprecationWarning (``chunk_points`` is another knob: points per stored chunk of a grid run).
    private_copy : bool
        Evaluate losses without gradients on a private deep copy of the model whose parameters are
        overwritten in place for each point: the same module call as a plain forward pass, without
        ``functional_call``'s per-call re-parametrisation (about 0.1 ms a call on CPU). Costs one copy of the
        model's parameters and buffers; set False for models too large to copy (or that cannot be deep-copied:
        then landform falls back by itself, with a warning).
    data_parallel : bool
        Inside an initialised torch.distributed process group: keep this rank's contiguous share of the rows of
        every batch, and all-reduce losses, gradients and HVPs, so that every rank sees the full-data objective
        (for data too large for one device). All ranks must then make the same calls in the same order.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(3, 1)
    >>> x, y = torch.randn(8, 3), torch.randn(8, 1)
    >>> obj = Objective(model, (x, y), torch.nn.functional.mse_loss)
    >>> obj.num_params
    4
    >>> abs(obj.loss() - torch.nn.functional.mse_loss(model(x), y).item()) < 1e-6
    True
    """

    @renamed_arguments(points_per_chunk="point_batch_size")
    def __init__(
        self,
        model: torch.nn.Module,
        data: Any,
        loss_fn: Callable[..., torch.Tensor],
        *,
        device: str | torch.device | None = None,
        batch_mode: str = "auto",
        batch_size: int | None = None,
        point_batch_size: int = 16,
        data_parallel: bool = False,
        private_copy: bool = True,
    ) -> None:
        self.layout = ParamLayout.from_model(model)
        if device is not None and torch.device(device) != self.layout.device:
            want = torch.device(device)
            if not (want.type == self.layout.device.type and want.index is None):
                raise InputError(
                    f"device: got {want}, but the model's parameters are on {self.layout.device}. Move the model "
                    f"first (model.to({str(want)!r})) or leave device unset."
                )
        if not callable(loss_fn):
            raise InputError(f"loss_fn: expected a callable loss_fn(outputs, targets), got {type(loss_fn).__name__}.")
        check_choice("batch_mode", batch_mode, ("auto", "loop", "vmap"))
        if batch_size is not None:
            batch_size = check_int("batch_size", batch_size, minimum=1)
        point_batch_size = check_int("point_batch_size", point_batch_size, minimum=1)
        data_parallel = check_bool("data_parallel", data_parallel)
        private_copy = check_bool("private_copy", private_copy)
        self.model = model
        self.loss_fn = loss_fn
        self.device = self.layout.device
        self.batch_mode = batch_mode
        self.point_batch_size = point_batch_size
        trainable = set(self.layout.names)
        with torch.no_grad():
            self.theta0 = self.layout.flatten(
                {n: p.detach() for n, p in model.named_parameters() if n in trainable}
            ).clone()
            # Frozen parameters and buffers are snapshotted so later changes to the model do not leak in.
            self._fixed = {n: p.detach().clone() for n, p in model.named_parameters() if n not in trainable}
            self._fixed.update({n: b.detach().clone() for n, b in model.named_buffers()})
        # Modules registered under more than one name, with everything below them (None: no such module).
        seen: dict[int, tuple[int, torch.nn.Module]] = {}
        for _, mod in model.named_modules(remove_duplicate=False):
            seen[id(mod)] = (seen.get(id(mod), (0, mod))[0] + 1, mod)
        tied = {id(sub): sub for c, mod in seen.values() if c > 1 for sub in mod.modules()}
        self._tied = list(tied.values()) or None
        self._private = self._make_private_copy() if private_copy else None
        self._compiled: Callable[..., torch.Tensor] | None = None
        self._batches = load_batches(data, batch_size, self.device)
        if not self._batches or sum(b.n for b in self._batches) == 0:
            raise InputError("data: it yielded no samples; pass a non-empty dataset.")
        self._group = None
        self._data_digest: str | None = None
        if data_parallel:
            from .fingerprint import data_digest

            self._data_digest = data_digest(self._batches)  # of the full data, before this rank keeps its share
            self._shard_for_rank()
        self.num_samples = self._allreduce_int(int(sum(b.n for b in self._batches)))
        self._batches = [b for b in self._batches if b.n > 0] or self._batches[:1]
        self._weights = [b.n / self.num_samples for b in self._batches]
        self._chosen_mode: str | None = None if batch_mode == "auto" else batch_mode
        self._check_loss()

    # ------------------------------------------------------------------ basics
    @property
    def num_params(self) -> int:
        """Number of trainable scalars ``P``."""
        return self.layout.size

    @property
    def dtype(self) -> torch.dtype:
        return self.layout.dtype

    def _forward(self, params: dict[str, torch.Tensor], batch: Batch) -> Any:
        """The model's outputs on ``batch`` with the trainable parameters ``params`` (the user's model untouched)."""
        if self._tied is None:
            return functional_call(self.model, {**self._fixed, **params}, batch.args, batch.kwargs, strict=False)
        # torch.func.functional_call does not put back the parameters of a module registered under two
        # names (torch-geometric's SchNet shares its filter networks): it would leave the user's model
        # holding our tensors. Put every parameter and buffer of those modules back ourselves.
        saved = [(m, dict(m._parameters), dict(m._buffers)) for m in self._tied]
        try:
            return functional_call(self.model, {**self._fixed, **params}, batch.args, batch.kwargs, strict=False)
        finally:
            for m, ps, bs in saved:
                m._parameters.update(ps)
                m._buffers.update(bs)

    def _call(self, params: dict[str, torch.Tensor], batch: Batch) -> torch.Tensor:
        return self._scalar(self.loss_fn(self._forward(params, batch), batch.target), batch)

    def _scalar(self, value: Any, batch: Batch) -> torch.Tensor:
        """The loss of one batch, refused unless it is a one-element tensor (checked on every batch: a loss
        that returns a vector only for some batches would otherwise fail deep inside torch)."""
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            return value
        index = next((i for i, b in enumerate(self._batches) if b is batch), None)
        got = f"a tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
        raise InputError(
            f"loss_fn: on batch {index if index is not None else '?'} ({batch.n} samples) it returned {got}; it "
            "must return the batch's mean loss as a scalar tensor on every batch (use reduction='mean', or "
            ".mean() the per-sample losses)."
        )

    @property
    def points_per_chunk(self) -> int:
        """Deprecated name of :attr:`point_batch_size` (removed in the next release)."""
        warnings.warn("Objective.points_per_chunk is now called point_batch_size.", DeprecationWarning, stacklevel=2)
        return self.point_batch_size

    @points_per_chunk.setter
    def points_per_chunk(self, value: int) -> None:
        warnings.warn("Objective.points_per_chunk is now called point_batch_size.", DeprecationWarning, stacklevel=2)
        self.point_batch_size = check_int("point_batch_size", value, minimum=1)

    # ------------------------------------------------------------------ for landform's own modules
    @property
    def batches(self) -> tuple[Batch, ...]:
        """The cached data as :class:`landform._data.Batch` es (this rank's share when data-parallel)."""
        return tuple(self._batches)

    @property
    def weights(self) -> tuple[float, ...]:
        """Weight ``n_b / N`` of each batch in the dataset mean (``N``: samples over all ranks)."""
        return tuple(self._weights)

    @property
    def fixed_state(self) -> Mapping[str, torch.Tensor]:
        """The frozen parameters and buffers, as snapshotted when the objective was built (read-only view)."""
        return MappingProxyType(self._fixed)

    @property
    def data_digest(self) -> str:
        """SHA-256 of the full data (over every rank's share when data-parallel)."""
        from .fingerprint import data_digest

        return self._data_digest or data_digest(self._batches)

    @property
    def private_model(self) -> tuple[torch.nn.Module, list[torch.Tensor]] | None:
        """The private model copy and its trainable parameter tensors in layout order (None without one)."""
        return self._private

    def outputs(self, theta: torch.Tensor, batch: Batch) -> Any:
        """The model's outputs on ``batch`` at the flat parameters ``theta`` (the loss's own forward call)."""
        return self._forward(self.layout.unflatten(theta), batch)

    def batch_loss(self, theta: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The loss (a 0-d tensor) of one batch at the flat parameters ``theta``, differentiable in ``theta``."""
        return self._batch_loss_theta(theta, batch)

    def allreduce(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` summed over the ranks of a data-parallel objective (``t`` itself otherwise)."""
        return self._allreduce(t)

    def expanded_at(self, theta: torch.Tensor) -> Objective:
        """The same objective (model, data and loss shared, nothing copied) expanded around ``theta``."""
        new = object.__new__(Objective)
        new.__dict__.update(self.__dict__)
        new.theta0 = theta.detach().to(self.dtype)
        return new

    def with_fixed_state(self, state: Mapping[str, torch.Tensor]) -> Objective:
        """The same objective (model and data shared) with the frozen parameters and buffers in ``state`` in place
        of its own; names missing from ``state`` keep the objective's values. ``self`` when nothing differs."""
        fixed = {n: state.get(n, v) for n, v in self._fixed.items()}
        if all(torch.equal(fixed[n], v) for n, v in self._fixed.items()):
            return self
        new = object.__new__(Objective)
        new.__dict__.update(self.__dict__)
        new._fixed = fixed
        new._private = new._make_private_copy() if self._private is not None else None
        return new

    def pin_batch_mode(self, mode: str) -> None:
        """Evaluate batches of points with ``mode`` (``"loop"`` or ``"vmap"``) from now on (a resumed grid is
        evaluated the way its stored chunks were)."""
        check_choice("mode", mode, ("loop", "vmap"))
        self._chosen_mode = mode

    # ------------------------------------------------------------------ data parallelism
    def _shard_for_rank(self) -> None:
        """Keep this rank's contiguous share of the rows of every batch (torch.distributed data parallelism)."""
        self._group = world_group()
        self._batches = shard_batches(self._batches, *rank_world(), self.device)

    @property
    def data_parallel(self) -> bool:
        return self._group is not None

    def _allreduce(self, t: torch.Tensor) -> torch.Tensor:
        return all_reduce_sum(t, self._group)

    def _allreduce_int(self, n: int) -> int:
        if self._group is None:
            return n
        t = torch.tensor([n], dtype=torch.int64, device=self.device if self.device.type == "cuda" else "cpu")
        return int(self._allreduce(t).item())

    def _check_loss(self) -> None:
        batch = self._batches[0]
        with torch.no_grad(), eval_mode(self.model):
            try:
                value = self._call(self.layout.unflatten(self.theta0), batch)
            except LandformError:
                raise
            except Exception as exc:  # the user's model or loss failed on their own data
                raise InputError(
                    f"model/loss_fn: evaluating the first batch failed with {type(exc).__name__}: {exc}"
                ) from exc
        if not isinstance(value, torch.Tensor) or value.numel() != 1 or value.dim() > 1:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise InputError(f"loss_fn: it returned {shape}; it must return a scalar tensor (use reduction='mean').")

    def _as_theta(self, theta: torch.Tensor | None) -> torch.Tensor:
        if theta is None:
            return self.theta0
        try:
            theta = torch.as_tensor(theta)
        except Exception as exc:
            raise InputError(
                f"theta: expected a ({self.num_params},) tensor of parameters, got {type(theta).__name__}."
            ) from exc
        if not theta.dtype.is_floating_point:
            raise InputError(f"theta: expected a floating dtype, got {theta.dtype}; pass e.g. theta.float().")
        if theta.shape != (self.num_params,):
            raise InputError(f"theta: expected shape ({self.num_params},), got {tuple(theta.shape)}.")
        if theta.device != self.device:
            raise InputError(f"theta: it is on {theta.device}, the objective on {self.device}; move it with .to().")
        return theta.to(self.dtype)

    # ------------------------------------------------------------------ values
    def loss(self, theta: torch.Tensor | None = None) -> float:
        """Mean loss over the dataset at ``theta`` (default: the model's own parameters).

        A scalar result, so a NaN or infinite loss raises :class:`~landform.errors.NonFiniteError` (landform's
        one policy for scalar results). Landscapes go through :meth:`loss_batch`, which keeps NaN/inf as they
        are, so one bad point never stops a grid.
        """
        value = float(self.loss_batch(self._as_theta(theta)[None])[0])
        return check_finite_scalar(
            "loss: the dataset loss" + (" at the model's parameters" if theta is None else " at theta"),
            value,
            "check the model's weights and buffers for NaN/inf, the data for NaN/inf, and the loss function "
            "(log of 0?); at a perturbed theta, a smaller step.",
        )

    def loss_batch(self, thetas: torch.Tensor) -> torch.Tensor:
        """Mean loss at each row of ``thetas`` (B, P); returns a float64 tensor (B,) on the CPU.

        The landscape path: NaN/inf losses are returned as they are (grids keep and flag them).
        """
        if not isinstance(thetas, torch.Tensor):
            raise InputError(f"thetas: expected a (B, {self.num_params}) tensor, got {type(thetas).__name__}.")
        if thetas.dim() != 2 or thetas.shape[1] != self.num_params:
            raise InputError(f"thetas: expected shape (B, {self.num_params}), got {tuple(thetas.shape)}.")
        if thetas.device != self.device:
            raise InputError(f"thetas: on {thetas.device}, the objective on {self.device}; move them with .to().")
        if not thetas.dtype.is_floating_point:
            raise InputError(f"thetas: expected a floating dtype, got {thetas.dtype}.")
        thetas = thetas.to(self.dtype)
        mode = self._resolve_mode(thetas)
        with torch.no_grad(), eval_mode(self.model):
            if mode == "vmap":
                try:
                    return self._loss_vmap(thetas)
                except (torch.OutOfMemoryError, LandformError):
                    raise
                except Exception as exc:
                    if self.batch_mode == "vmap":
                        raise LandformError(
                            f"batch_mode='vmap' failed ({type(exc).__name__}: {exc}); use batch_mode='loop'."
                        ) from exc
                    warnings.warn(f"vmap evaluation failed ({exc}); falling back to the loop.", stacklevel=2)
                    self._chosen_mode = "loop"
            return self._loss_loop(thetas)

    def _loss_loop(self, thetas: torch.Tensor) -> torch.Tensor:
        return self.reduce_points(self._loss_loop_local(thetas))

    def reduce_points(self, out: torch.Tensor) -> torch.Tensor:
        """Per-point values (B,) or (B, k) summed over the ranks of a data-parallel objective (as is otherwise)."""
        if self._group is None:
            return out
        dev = self.device if self.device.type == "cuda" else torch.device("cpu")
        return self._allreduce(out.to(dev)).cpu()

    def _make_private_copy(self):
        import copy

        try:
            clone = copy.deepcopy(self.model)
        except Exception as exc:  # some models hold handles that cannot be copied
            warnings.warn(
                f"private_copy: the model cannot be deep-copied ({exc}); using functional_call.", stacklevel=3
            )
            return None
        clone.eval()
        named = dict(clone.named_parameters())
        buffers = dict(clone.named_buffers())
        with torch.no_grad():
            for n, v in self._fixed.items():  # the snapshot taken above, exactly
                (named.get(n) if n in named else buffers[n]).copy_(v)
        for p in clone.parameters():
            p.requires_grad_(False)
        return clone, [named[n] for n in self.layout.names]

    def _loss_loop_local(self, thetas: torch.Tensor) -> torch.Tensor:
        out = torch.empty(thetas.shape[0], dtype=torch.float64)
        for i in range(thetas.shape[0]):
            params = self.layout.unflatten(thetas[i])
            if self._private is not None:
                clone, targets = self._private
                torch._foreach_copy_(targets, list(params.values()))
            total = None
            for batch, w in zip(self._batches, self._weights, strict=True):
                if self._compiled is not None:
                    value = self._scalar(self._compiled(batch.args, batch.kwargs, batch.target), batch)
                elif self._private is not None:
                    out_b = self._private[0](*batch.args, **batch.kwargs)
                    value = self._scalar(self.loss_fn(out_b, batch.target), batch)
                else:
                    value = self._call(params, batch)
                term = value.reshape(()).double() * w
                total = term if total is None else total + term
            out[i] = total.cpu()
        return out

    def _loss_vmap(self, thetas: torch.Tensor) -> torch.Tensor:
        out = torch.empty(thetas.shape[0], dtype=torch.float64)
        start = 0
        while start < thetas.shape[0]:
            chunk = thetas[start : start + self.point_batch_size]
            try:
                out[start : start + chunk.shape[0]] = self._vmap_chunk(chunk).cpu()
            except torch.OutOfMemoryError:
                if self.point_batch_size == 1:
                    raise
                self.point_batch_size = max(1, self.point_batch_size // 2)
                warnings.warn(
                    f"out of memory in vmap evaluation; point_batch_size reduced to {self.point_batch_size}.",
                    stacklevel=3,
                )
                continue
            start += chunk.shape[0]
        return self.reduce_points(out)

    def _vmap_chunk(self, chunk: torch.Tensor) -> torch.Tensor:
        total = torch.zeros(chunk.shape[0], dtype=torch.float64, device=self.device)
        for batch, w in zip(self._batches, self._weights, strict=True):

            def one(theta: torch.Tensor, batch: Batch = batch) -> torch.Tensor:
                return self._call(self.layout.unflatten(theta), batch).reshape(())

            total = total + torch.func.vmap(one)(chunk).double() * w
        return total

    def _resolve_mode(self, thetas: torch.Tensor) -> str:
        if self._chosen_mode is not None:
            return self._chosen_mode
        if self.device.type == "cpu":
            self._chosen_mode = "loop"
            return "loop"
        trial = thetas[: min(4, thetas.shape[0])]
        timings = {}
        with torch.no_grad(), eval_mode(self.model):
            for mode in ("loop", "vmap", "loop", "vmap"):
                fn = self._loss_loop if mode == "loop" else self._loss_vmap
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                t0 = time.perf_counter()
                try:
                    fn(trial)
                except Exception:
                    timings[mode] = math.inf
                    continue
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                timings[mode] = min(timings.get(mode, math.inf), time.perf_counter() - t0)
        self._chosen_mode = "vmap" if timings["vmap"] < timings["loop"] else "loop"
        return self._chosen_mode

    @property
    def resolved_batch_mode(self) -> str | None:
        """The evaluation path in use (``None`` until the first batch of points has been evaluated)."""
        return self._chosen_mode

    def subset(self, fraction: float, *, seed: int = 0) -> Objective:
        """The same objective on a random ``fraction`` of every batch (seeded); the model is shared, not copied."""
        if not (0 < fraction <= 1):
            raise InputError(f"fraction: expected a number in (0, 1], got {fraction}.")
        gen = torch.Generator().manual_seed(int(seed))
        new = object.__new__(Objective)
        new.__dict__.update(self.__dict__)
        if self._group is not None:
            raise InputError("subset: not available for a data-parallel objective; subsample the data instead.")
        batches = []
        for b in self._batches:
            k = max(1, int(round(fraction * b.n)))
            batches.append(index_batch(b, torch.randperm(b.n, generator=gen)[:k].to(self.device)))
        new._batches = batches
        new.num_samples = int(sum(b.n for b in batches))
        new._weights = [b.n / new.num_samples for b in batches]
        return new

    def compiled(self) -> Objective:
        """The same objective whose no-gradient losses (:meth:`loss_batch` in loop mode) run the model's forward
        and the loss through :func:`torch.compile`; gradients and HVPs stay eager. The first call of each batch
        shape compiles (seconds to minutes); values equal the eager ones to float32 rounding. Needs the private
        model copy (``private_copy=True``). A compile failure raises :class:`LandformError` on first use.

        Examples
        --------
        >>> import torch
        >>> obj = Objective(torch.nn.Linear(3, 1), (torch.randn(8, 3), torch.randn(8, 1)), torch.nn.functional.mse_loss)
        >>> obj.compiled().is_compiled, obj.is_compiled
        (True, False)
        """
        if self._private is None:
            raise InputError(
                "compile: needs the objective's private model copy; create the Objective with private_copy=True."
            )
        clone, loss_fn = self._private[0], self.loss_fn

        def forward_loss(args: tuple, kwargs: dict, target: Any) -> torch.Tensor:
            return loss_fn(clone(*args, **kwargs), target)

        compiled = torch.compile(forward_loss, dynamic=False)

        def call(args: tuple, kwargs: dict, target: Any) -> torch.Tensor:
            try:
                return compiled(args, kwargs, target)
            except Exception as exc:  # inductor needs a C++ compiler (CPU) or triton (GPU)
                raise LandformError(
                    f"compile: torch.compile of the loss failed ({type(exc).__name__}: {str(exc)[:200]}); use "
                    "compile=False."
                ) from exc

        new = object.__new__(Objective)
        new.__dict__.update(self.__dict__)
        new._compiled = call
        new._chosen_mode = "loop"
        return new

    @property
    def is_compiled(self) -> bool:
        """True for an objective made by :meth:`compiled`."""
        return self._compiled is not None

    @property
    def data_nbytes(self) -> int:
        """Bytes of the tensors of the cached data (this rank's share when data-parallel)."""
        return sum(nbytes(b) for b in self._batches)

    def select(self, indices: Any, *, batch_size: int | None = None) -> Objective:
        """The same objective on the samples ``indices`` only; the model is shared, not copied.

        Samples are numbered ``0 .. num_samples - 1`` in the order of the data's batches (the rows of batch 0,
        then of batch 1, ...). The loss is the mean over the selected samples, which assumes, as the batch
        weighting does, that ``loss_fn`` is a mean of per-sample terms. When every batch has the same structure
        (tensors whose trailing shapes agree), the selected rows are regrouped into batches of ``batch_size``
        (default: the largest batch of the data), so a small selection costs few forward calls.

        Examples
        --------
        >>> import torch
        >>> x, y = torch.randn(10, 3), torch.randn(10, 1)
        >>> obj = Objective(torch.nn.Linear(3, 1), (x, y), torch.nn.functional.mse_loss, batch_size=4)
        >>> sub = obj.select([0, 5, 9])
        >>> sub.num_samples
        3
        >>> abs(sub.loss() - torch.nn.functional.mse_loss(obj.model(x[[0, 5, 9]]), y[[0, 5, 9]]).item()) < 1e-6
        True
        """
        if self._group is not None:
            raise InputError("select: not available for a data-parallel objective; select the data instead.")
        idx = np.asarray(indices)
        if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise InputError(f"indices: expected a non-empty 1-D sequence of integers, got shape {idx.shape} "
                             f"of {idx.dtype}.")
        idx = np.sort(idx)
        if idx[0] < 0 or idx[-1] >= self.num_samples or np.any(np.diff(idx) == 0):
            raise InputError(f"indices: expected distinct sample numbers in [0, {self.num_samples}), got values "
                             f"from {idx[0]} to {idx[-1]}{' with repeats' if np.any(np.diff(idx) == 0) else ''}.")
        if batch_size is not None and int(batch_size) < 1:
            raise InputError(f"batch_size: expected a positive integer, got {batch_size}.")
        pieces, offset = [], 0
        for b in self._batches:
            rows = idx[(idx >= offset) & (idx < offset + b.n)] - offset
            if rows.size:
                pieces.append(index_batch(b, torch.as_tensor(rows, device=self.device)))
            offset += b.n
        size = int(batch_size) if batch_size is not None else max(b.n for b in self._batches)
        merged = concat_batches(pieces)
        if merged is not None:
            pieces = [index_batch(merged, torch.arange(a, min(a + size, merged.n), device=self.device))
                      for a in range(0, merged.n, size)] if merged.n > size else [merged]
        new = object.__new__(Objective)
        new.__dict__.update(self.__dict__)
        new._batches = pieces
        new.num_samples = int(idx.size)
        new._weights = [b.n / new.num_samples for b in pieces]
        return new

    # ------------------------------------------------------------------ derivatives (reduced across ranks)
    def _batch_loss_theta(self, theta: torch.Tensor, batch: Batch) -> torch.Tensor:
        return self._call(self.layout.unflatten(theta), batch).reshape(())

    def gradient(self, theta: torch.Tensor | None = None) -> torch.Tensor:
        """Gradient of the dataset loss at ``theta`` as a flat (P,) tensor."""
        theta = self._as_theta(theta).detach()
        grad = torch.zeros_like(theta)
        with eval_mode(self.model):
            for batch, w in zip(self._batches, self._weights, strict=True):
                t = theta.clone().requires_grad_(True)
                loss = self._batch_loss_theta(t, batch)
                (g,) = torch.autograd.grad(loss, t)
                grad += g * w
        return check_finite_tensor(
            "gradient: the gradient of the dataset loss",
            self._allreduce(grad),
            "the loss or its derivative is not finite at this point; check the model's weights, buffers and "
            "data for NaN/inf and the loss function (log of 0?).",
        )

    def hvp(self, v: torch.Tensor, theta: torch.Tensor | None = None, *, mode: str = "rev") -> torch.Tensor:
        """Hessian-vector product ``H(theta) v`` of the dataset loss, never forming ``H``.

        Parameters
        ----------
        v : torch.Tensor, shape (P,)
        theta : torch.Tensor, shape (P,), optional
            Default: the model's parameters.
        mode : {"rev", "fwd"}
            ``"rev"``: reverse-over-reverse (double backward; the default, faster on CPU by
            ``benchmarks/hessian.py``). ``"fwd"``: forward-over-reverse (``jvp`` of ``grad``); some losses
            lack forward-mode rules, in which case landform falls back to ``"rev"`` with a warning.
        """
        theta = self._as_theta(theta).detach()
        v = torch.as_tensor(v)
        if v.shape != (self.num_params,):
            raise InputError(f"v: expected shape ({self.num_params},), got {tuple(v.shape)}.")
        v = v.to(device=self.device, dtype=self.dtype)
        if mode not in ("rev", "fwd"):
            raise InputError(f"mode: expected 'rev' or 'fwd', got {mode!r}.")
        out = torch.zeros_like(theta)
        with eval_mode(self.model), math_attention():
            for batch, w in zip(self._batches, self._weights, strict=True):
                if mode == "fwd":
                    try:
                        hv = self._hvp_fwd(theta, v, batch)
                    except (RuntimeError, NotImplementedError) as exc:
                        warnings.warn(
                            f"forward-over-reverse HVP failed ({type(exc).__name__}: {str(exc)[:120]}); "
                            "using reverse-over-reverse instead.",
                            stacklevel=2,
                        )
                        mode = "rev"
                        hv = self._hvp_rev(theta, v, batch)
                else:
                    try:
                        hv = self._hvp_rev(theta, v, batch)
                    except RuntimeError as exc:
                        if "not implemented" in str(exc) or "does not require grad" in str(exc):
                            raise InputError(
                                "hvp: an operation of the model or loss has no second derivative in this torch "
                                f"({str(exc)[:160]}). Replace it with a twice-differentiable equivalent (for "
                                "Hugging Face transformers load the model with attn_implementation='eager')."
                            ) from exc
                        raise
                out += hv * w
        out = self._allreduce(out)
        if not torch.isfinite(out).all():
            bad = int((~torch.isfinite(out)).sum())
            raise NonFiniteError(
                f"hvp: the Hessian-vector product has {bad} NaN/inf entries of {out.numel()}; the loss is not "
                "twice differentiable with finite values at this point (check the model's loss there)."
            )
        return out

    def _hvp_rev(self, theta: torch.Tensor, v: torch.Tensor, batch: Batch) -> torch.Tensor:
        t = theta.clone().requires_grad_(True)
        loss = self._batch_loss_theta(t, batch)
        if not loss.requires_grad:
            raise InputError("loss_fn: the loss has no gradient path to the parameters (is it detached?).")
        (g,) = torch.autograd.grad(loss, t, create_graph=True)
        if not g.requires_grad:
            return torch.zeros_like(theta)
        (hv,) = torch.autograd.grad(g, t, grad_outputs=v, allow_unused=True)
        return torch.zeros_like(theta) if hv is None else hv.detach()

    def _hvp_fwd(self, theta: torch.Tensor, v: torch.Tensor, batch: Batch) -> torch.Tensor:
        grad_fn = torch.func.grad(lambda t: self._batch_loss_theta(t, batch))
        _, hv = torch.func.jvp(grad_fn, (theta,), (v,))
        return hv.detach()

    def fingerprint(self) -> dict[str, str]:
        """SHA-256 hashes of what every value of this objective depends on, one per component.

        Components: ``data`` (the full content of every batch), ``loss`` (the loss function's code, closure,
        defaults, referenced globals and hyperparameters), ``weights``, ``buffers`` and ``model`` (structure and
        code). A cached result may be reused only when every component is unchanged; see
        :func:`landform.fingerprint.fingerprint` and :func:`landform.fingerprint.fingerprint_changes`.

        Examples
        --------
        >>> import torch
        >>> x, y = torch.ones(4, 2), torch.zeros(4, 1)
        >>> a = Objective(torch.nn.Linear(2, 1), (x, y), lambda out, t: ((out - t) ** 2).mean())
        >>> b = Objective(a.model, (x, y), lambda out, t: 10 * ((out - t) ** 2).mean())
        >>> [k for k in a.fingerprint() if a.fingerprint()[k] != b.fingerprint()[k]]
        ['loss']
        """
        from .fingerprint import objective_fingerprint

        return objective_fingerprint(self)

    def __repr__(self) -> str:
        return (
            f"Objective(model={type(self.model).__name__}, P={self.num_params}, N={self.num_samples}, "
            f"batches={len(self._batches)}, device={self.device}, dtype={self.dtype})"
        )


# The names these helpers had before they moved to landform._data / landform._context (for code written against
# the old layout; landform's own modules import them from their new home).
_Batch = Batch
_eval_mode = eval_mode
_math_attention = math_attention
