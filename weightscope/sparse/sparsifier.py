"""The :class:`Sparsifier`: drives a sparse-training method after each optimizer step.

:func:`~weightscope.sparse.sparsify` builds it; users call :meth:`Sparsifier.step` after each
``optimizer.step()`` (or :meth:`Sparsifier.attach` the optimizer), checkpoint it with
:meth:`Sparsifier.state_dict` next to the model's and optimizer's, and :meth:`Sparsifier.remove`
it for export. :func:`get_sparsifier` finds the sparsifier of a model (the Recorder uses it to
store :attr:`Sparsifier.config`).

Examples
--------
>>> import torch
>>> from torch import nn
>>> from weightscope.sparse import sparsify
>>> model = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2))
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> sp = sparsify(model, density=0.5).attach(opt)
>>> get_sparsifier(model) is sp, sp.layers
(True, ['0', '2'])
>>> model(torch.randn(4, 16)).sum().backward()
>>> opt.step()  # the attached sparsifier steps too
>>> sp.step_count
1
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from weightscope.errors import SparseStateError, StructureError

from . import band_topk
from .band_topk import BandTopk
from .fast_topk import TopkTracker
from .layers import to_dense, to_sparse
from .methods import Method, zero_nonparticipating
from .structures import Structure

__all__ = ["TRACK_MIN_NUMEL", "Sparsifier", "get_sparsifier"]

_REGISTRY: weakref.WeakKeyDictionary[nn.Module, Sparsifier] = weakref.WeakKeyDictionary()
_STATE_VERSION = 1
#: Unstructured layers with at least this many weights are rewired incrementally.
TRACK_MIN_NUMEL = 1 << 16


def get_sparsifier(model: nn.Module) -> Sparsifier | None:
    """Return the live :class:`Sparsifier` of ``model`` (or of one of its submodules), or None.

    Examples
    --------
    >>> from torch import nn
    >>> get_sparsifier(nn.Linear(2, 2)) is None
    True
    """
    for module in model.modules():
        sp = _REGISTRY.get(module)
        if sp is not None:
            return sp
    return None


class Sparsifier:
    """Masks of a sparsified model and the method that evolves them (see ``sparsify``).

    Attributes
    ----------
    model : nn.Module
        The sparsified model.
    structure : Structure
        Parsed structure and density.
    method : Method
        The sparse-training method (e.g. :class:`~weightscope.sparse.Search`).
    total_steps : int or None
        Planned number of optimizer steps.
    generator : torch.Generator
        Seeded CPU generator of the method's random draws (saved in :meth:`state_dict`).
    """

    def __init__(
        self,
        model: nn.Module,
        structure: Structure,
        method: Method,
        layers: list[tuple[str, nn.Module, torch.Tensor]],
        total_steps: int | None,
        generator: torch.Generator,
    ) -> None:
        self.model = model
        self.structure = structure
        self.method = method
        self.total_steps = total_steps
        self.generator = generator
        self._names = [name for name, _, _ in layers]
        self._modules = [module for _, module, _ in layers]
        self._step = 0
        self._alive = True
        self._optimizer: torch.optim.Optimizer | None = None
        self._opt_hook: Any = None
        self._load_hooks = []
        self._trackers: dict[int, BandTopk | TopkTracker] = {}
        for _, module, mask in layers:
            to_sparse(module, mask, method.nonparticipating_grad_scale)
            self._load_hooks.append(_register_load_hook(module, self._fill_missing_mask))
        if method.zeroes_nonparticipating(0, total_steps):
            for module in self._modules:
                zero_nonparticipating(module)
        self._prepare_next()
        _REGISTRY[model] = self

    # ----------------------------------------------------------------- read-only views
    @property
    def layers(self) -> list[str]:
        """Names of the sparsified modules, in ``model.named_modules()`` order."""
        return list(self._names)

    @property
    def modules(self) -> list[nn.Module]:
        """The sparsified modules (each has ``weight`` and the bool buffer ``weight_mask``)."""
        return list(self._modules)

    @property
    def step_count(self) -> int:
        """Number of optimizer steps seen so far (``s`` of the last :meth:`step`)."""
        return self._step

    @property
    def config(self) -> dict[str, Any]:
        """Plain JSON-serializable description: structure, density, method, params, layers."""
        return {
            "structure": self.structure.name,
            "density": self.structure.density,
            "method": self.method.name,
            "method_params": self.method.params(),
            "layers": self.layers,
            "total_steps": self.total_steps,
        }

    def masks(self) -> dict[str, torch.Tensor]:
        """Return ``{layer name: weight_mask}`` (the live buffers, not copies)."""
        return {n: m.weight_mask for n, m in zip(self._names, self._modules, strict=True)}

    def density(self) -> float:
        """Fraction of participating weights over all sparsified layers."""
        kept = sum(int(m.weight_mask.sum()) for m in self._modules)
        return kept / sum(m.weight_mask.numel() for m in self._modules)

    # ----------------------------------------------------------------------- training
    def step(self) -> None:
        """Apply the method after optimizer step ``s = step_count + 1``; call once per step.

        Raises
        ------
        SparseStateError
            No sparsified weight changed since ``sparsify()`` or the last ``step()`` (called
            before ``optimizer.step()``, or twice), or the sparsifier was removed.
        """
        self._check_alive()
        if all(m.weight._version == v for m, v in zip(self._modules, self._versions,
                                                     strict=True)):
            since = "sparsify()" if self._step == 0 else f"the last sp.step() (s={self._step})"
            raise SparseStateError(
                f"sp.step() must follow optimizer.step(), but no sparsified weight changed since "
                f"{since}. Call sp.step() once after each optimizer.step(), or use "
                "sp.attach(optimizer) (which also skips steps the optimizer skipped)."
            )
        step = self._step + 1
        self.method.after_step(self, step)
        self._step = step
        self._prepare_next()

    def attach(self, optimizer: torch.optim.Optimizer) -> Sparsifier:
        """Call :meth:`step` automatically after every ``optimizer.step()``; returns self.

        The optimizer is also used to zero the state (momenta) of weights that SET/RigL
        regrow, so that they start from scratch.
        """
        self._check_alive()
        if self._opt_hook is not None:
            raise SparseStateError(
                "this sparsifier is already attached to an optimizer. Attach it once, to the "
                "optimizer that updates the sparsified weights."
            )
        self._optimizer = optimizer
        self._opt_hook = optimizer.register_step_post_hook(lambda *_: self.step())
        return self

    def topk_tracker(self, module: nn.Module) -> BandTopk | TopkTracker | None:
        """Incremental exact top-k of an unstructured layer (None: use the kernel).

        With numba, a :class:`~weightscope.sparse.band_topk.BandTopk` (which hands inputs
        its kernels do not take to a ``TopkTracker``); without, a
        :class:`~weightscope.sparse.fast_topk.TopkTracker` for layers of at least
        :data:`TRACK_MIN_NUMEL` weights and the kernel for smaller ones.
        """
        if self.structure.name != "unstructured":
            return None
        tracker = self._trackers.get(id(module))
        if tracker is None:
            n, density = module.weight.numel(), self.structure.density
            if band_topk.numba_available():
                tracker = BandTopk(n, density)
            elif n >= TRACK_MIN_NUMEL:
                tracker = TopkTracker(n, density)
            else:
                return None
            self._trackers[id(module)] = tracker
        return tracker

    def dense_grad(self, module: nn.Module) -> torch.Tensor:
        """Dense gradient of ``module``'s weight stashed by the last backward (RigL)."""
        grad = module.__dict__.get("_ws_dense_grad")
        if grad is None:
            raise SparseStateError(
                "no dense gradient was stashed for this layer. RigL needs a backward pass "
                "between sparsify()/sp.step() and the next optimizer.step()."
            )
        return grad

    def reset_optimizer_state(self, module: nn.Module, changed: torch.Tensor) -> None:
        """Zero the attached optimizer's per-weight state (momenta) at ``changed`` positions."""
        if self._optimizer is None:
            return
        state = self._optimizer.state.get(module.weight, {})
        with torch.no_grad():
            for value in state.values():
                if isinstance(value, torch.Tensor) and value.shape == changed.shape:
                    value.masked_fill_(changed, 0)

    # -------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Step counter, method, layers and RNG state (masks live in ``model.state_dict()``).

        Examples
        --------
        >>> from torch import nn
        >>> from weightscope.sparse import sparsify
        >>> sorted(sparsify(nn.Linear(16, 4)).state_dict())
        ['generator', 'layers', 'method', 'method_params', 'step', 'version']
        """
        return {
            "version": _STATE_VERSION,
            "step": self._step,
            "method": self.method.name,
            "method_params": self.method.params(),
            "layers": self.layers,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`; load ``model.state_dict()`` (with masks) first."""
        self._check_alive()
        expected = {"version": _STATE_VERSION, "method": self.method.name, "layers": self.layers}
        for key, value in expected.items():
            if state.get(key) != value:
                raise SparseStateError(
                    f"sparsifier state does not match: {key} is {state.get(key)!r}, expected "
                    f"{value!r}. Sparsify the model with the same structure, method and layers "
                    "before loading the checkpoint."
                )
        self._step = int(state["step"])
        self.generator.set_state(state["generator"])
        self._prepare_next()

    def remove(self) -> None:
        """Make every layer plain again holding ``m * w`` (for export); drop masks and hooks."""
        self._check_alive()
        for hook in self._load_hooks:
            hook.remove()
        if self._opt_hook is not None:
            self._opt_hook.remove()
        for module in self._modules:
            to_dense(module)
        _REGISTRY.pop(self.model, None)
        self._alive = False
        self._optimizer = None

    # -------------------------------------------------------------------------- helpers
    def _check_alive(self) -> None:
        if not self._alive:
            raise SparseStateError(
                "this sparsifier was removed (sp.remove()). Call sparsify() again to train "
                "sparse."
            )

    def _prepare_next(self) -> None:
        """Stash dense gradients if the method needs them at the next step; snapshot versions."""
        stash = self.method.needs_dense_grad(self._step + 1)
        for module in self._modules:
            w = module.weight
            module.__dict__["_ws_dense_grad"] = torch.zeros_like(w.detach()) if stash else None
        self._versions = [m.weight._version for m in self._modules]

    def _fill_missing_mask(self, module: nn.Module, state_dict: dict[str, Any],
                           prefix: str, *_: Any) -> None:
        """Load-time hook: a dense checkpoint (no ``weight_mask``) gets masks from ``|w|``."""
        weight = state_dict.get(prefix + "weight")
        if prefix + "weight_mask" in state_dict or not isinstance(weight, torch.Tensor):
            return
        try:
            mask = self.structure.mask(weight.detach())
        except StructureError:
            return  # wrong shape: let load_state_dict report the size mismatch
        state_dict[prefix + "weight_mask"] = mask
        if self.method.zeroes_nonparticipating(self._step, self.total_steps):
            state_dict[prefix + "weight"] = weight.masked_fill(mask.logical_not(), 0.0)


def _register_load_hook(module: nn.Module, hook: Any) -> Any:
    if hasattr(module, "register_load_state_dict_pre_hook"):
        return module.register_load_state_dict_pre_hook(hook)
    return module._register_load_state_dict_pre_hook(hook, with_module=True)  # torch < 2.5
