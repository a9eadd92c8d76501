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

from weightscope._pools import thread_pool
from weightscope.errors import SparseStateError, StructureError
from weightscope.kinds.plan import Plan

from .layers import to_dense, to_sparse
from .methods import Method
from .ops import drop_and_grow, regularize_nonparticipating, zero_nonparticipating
from .state import LayerState
from .structures import Structure
from .topk import IncrementalTopk

__all__ = ["PARALLEL_MIN_NUMEL", "Sparsifier", "get_sparsifier"]

_REGISTRY: weakref.WeakKeyDictionary[nn.Module, Sparsifier] = weakref.WeakKeyDictionary()
_STATE_VERSION = 1
#: Layers of at least this many weights are rewired two at a time (see _rewire_by_magnitude).
PARALLEL_MIN_NUMEL = 1 << 18


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

    :meth:`step` is a template: it applies the answers of :attr:`method` to every layer in
    the order of Algorithm 1 (rewire, REGULARIZE, RESET, FIX), under ``torch.no_grad``.

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
    plan : Plan or None
        What ``sparsify`` chose and why each other layer stays dense
        (:func:`~weightscope.sparse.plan`).
    """

    plan: Plan | None = None

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
        self._hooks: list[Any] = []
        for _, module, mask in layers:
            to_sparse(module, mask, method.nonparticipating_grad_scale)
            if structure.name == "unstructured":
                module.sparse_state.topk_density = structure.density
            self._hooks += _register_load_hooks(module, self._fill_missing_mask)
        self._states: list[LayerState] = [m.sparse_state for m in self._modules]
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
        with torch.no_grad():
            self._apply(step)
        self._step = step
        self._prepare_next()

    def _apply(self, step: int) -> None:
        """Algorithm 1 after optimizer step ``step``: rewire, REGULARIZE, RESET and FIX."""
        method, total = self.method, self.total_steps
        if method.rewires(step, total):
            fraction = method.swap_fraction(step, total)
            if fraction is None:
                self._rewire_by_magnitude()
            else:
                self._drop_and_grow(fraction)
        beta = method.regularization(step)
        if beta > 0.0:
            for module in self._modules:
                regularize_nonparticipating(module, beta)
        if method.resets(step) or method.zeroes_nonparticipating(step, total):
            for module in self._modules:
                zero_nonparticipating(module)

    def _drop_and_grow(self, fraction: float) -> None:
        """SET/RigL: swap ``round(fraction * participating)`` weights of every layer."""
        for state in self._states:
            module = state.module
            count = round(fraction * int(module.weight_mask.sum()))
            if count > 0:
                scores = self.method.grow_scores(state, self.generator)
                self.reset_optimizer_state(module, drop_and_grow(module, count, scores))

    def _rewire_by_magnitude(self) -> None:
        """Every layer's mask from ``|w|``, two layers at a time where that pays.

        When at least two layers of :data:`PARALLEL_MIN_NUMEL` weights or more have trackers
        that release the GIL, the layers are split into two groups of about equal size and one
        group is rewired on a helper thread while this thread does the other. Each layer's
        result is the same as alone (layers share nothing).
        """
        states = self._states
        big = [s for s in states if _parallel(s.tracker())]
        if len(big) < 2:
            _rewire_group(states, self.structure)
            return
        groups: tuple[list[LayerState], list[LayerState]] = ([], [])
        sizes = [0, 0]
        for state in sorted(states, key=lambda s: -s.module.weight.numel()):  # largest first
            side = int(sizes[1] < sizes[0])
            groups[side].append(state)
            sizes[side] += state.module.weight.numel()
        future = thread_pool("rewire", 1).submit(_rewire_group, groups[0], self.structure)
        try:
            _rewire_group(groups[1], self.structure)
        finally:
            future.result()

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

    def topk_tracker(self, module: nn.Module) -> IncrementalTopk | None:
        """Incremental exact top-k of a layer (None: its rewiring calls the kernel)."""
        return module.sparse_state.tracker()

    def dense_grad(self, module: nn.Module) -> torch.Tensor:
        """Dense gradient of ``module``'s weight stashed by the last backward (RigL)."""
        return module.sparse_state.require_dense_grad()

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
        for layer in self._states:
            layer.invalidate()
        self._prepare_next()

    def remove(self) -> None:
        """Make every layer plain again holding ``m * w`` (for export); drop masks and hooks."""
        self._check_alive()
        for hook in self._hooks:
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
        for state in self._states:
            w = state.module.weight.detach()
            state.dense_grad = torch.zeros_like(w) if stash else None
        self._versions = [m.weight._version for m in self._modules]

    def _fill_missing_mask(self, module: nn.Module, state_dict: dict[str, Any],
                           prefix: str, *_: Any) -> None:
        """Load-time hook: a dense checkpoint (no ``weight_mask``) gets masks from ``|w|``."""
        weight = state_dict.get(prefix + "weight")
        if prefix + "weight_mask" in state_dict or not isinstance(weight, torch.Tensor):
            return
        try:
            mask = self.structure.layer_mask(weight.detach(), module)
        except StructureError:
            return  # wrong shape: let load_state_dict report the size mismatch
        state_dict[prefix + "weight_mask"] = mask
        if self.method.zeroes_nonparticipating(self._step, self.total_steps):
            state_dict[prefix + "weight"] = weight.masked_fill(mask.logical_not(), 0.0)


def _rewire_group(states: list[LayerState], structure: Structure) -> None:
    with torch.no_grad():  # no_grad is per thread: the helper thread needs its own
        for state in states:
            state.rewire(structure)


def _parallel(tracker: IncrementalTopk | None) -> bool:
    return tracker is not None and tracker.releases_gil and tracker.n >= PARALLEL_MIN_NUMEL


def _register_load_hooks(module: nn.Module, fill_missing: Any) -> list[Any]:
    """A pre-hook that fills missing masks and a post-hook that invalidates the layer state."""
    post = module.register_load_state_dict_post_hook(
        lambda mod, _incompatible: mod.sparse_state.invalidate())
    if hasattr(module, "register_load_state_dict_pre_hook"):
        return [module.register_load_state_dict_pre_hook(fill_missing), post]
    return [module._register_load_state_dict_pre_hook(fill_missing, with_module=True),  # < 2.5
            post]
