"""One sparse-training experiment as a frozen, validated, JSON round-trippable config.

A :class:`RunConfig` names the method (the paper's REGULAR, REDUCE, SEARCH and the baselines),
its structure, density and hyper-parameters, the model, the recipe and the seed. It is the unit
that the sweeps of :mod:`weightscope.experiments.sweeps` repeat over a grid and over seeds, and
its :meth:`RunConfig.key` (a hash of the canonical JSON) keys the results store.

Fields a method does not use must stay at their defaults, and defaults that depend on the method
are resolved at construction, so one experiment has exactly one spelling (and one key):

==========  ==================================  =============================================
method      fields it uses                      resolved defaults
==========  ==================================  =============================================
regular     (none; dense model)                 density 1.0
reduce      density                             density 0.25
search      density structure rewire_every      density 0.25 (0.5 for 2:4), rewire_every 1
            grad_scale fix_at reset_every decay
static      density structure                   density 0.25 (0.5 for 2:4)
lottery     density structure rewind            density 0.25 (0.5 for 2:4)
set, rigl   density rewire_every drop_fraction  density 0.25, rewire_every 100
==========  ==================================  =============================================

The ``task`` (:mod:`weightscope.experiments.tasks`) is MNIST-1D (default) or the bundled
language model ``"lm"``; the fields ``arch``, ``width``, ``recipe``, ``steps``, ``batch_size``
and ``num_samples`` left as None resolve to the task's defaults (MNIST-1D: 1D CNN of width 32,
SGD with cosine decay, 2000 steps, 10,000 samples; those of the sweeps,
:mod:`weightscope.experiments.sweeps` explains them). The key of a MNIST-1D config hashes its
JSON without the ``task`` field, so results stored before the field existed keep their keys;
any other task is part of the key, and stores of different tasks never mix.

Examples
--------
>>> from weightscope.experiments.sparse_config import RunConfig
>>> cfg = RunConfig(method="search", density=0.1, reset_every=100)
>>> RunConfig.from_json(cfg.to_json()) == cfg, cfg.rewire_every, len(cfg.key())
(True, 1, 16)
>>> RunConfig(task="lm").arch, RunConfig(task="lm").key() != RunConfig().key()
('transformer', True)
>>> RunConfig(method="reduce", grad_scale=0.5)
Traceback (most recent call last):
...
weightscope.errors.ConfigError: grad_scale applies only to method 'search'; got grad_scale=0.5 ...
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from weightscope._validate import check_int, check_real
from weightscope.errors import ConfigError
from weightscope.sparse import SET, Lottery, Method, RigL, Search, Static, parse_structure
from weightscope.sparse.structures import fixed_density

from .tasks import Task, get_task
from .train import TrainConfig

__all__ = ["LAYER_SETS", "METHODS", "RunConfig"]

#: Methods a run can use (REGULAR = dense, REDUCE = narrower dense model, the rest sparse).
METHODS = ("regular", "reduce", "search", "static", "lottery", "set", "rigl")
#: Which layers are sparsified: sparsify's default selection, or that minus the output layer.
LAYER_SETS = ("default", "hidden")
_SPARSE = {"density", "structure"}
_USES: dict[str, set[str]] = {
    "regular": set(),
    "reduce": {"density", "layers"},
    "search": _SPARSE | {"layers", "rewire_every", "grad_scale", "fix_at", "reset_every",
                         "decay"},
    "static": _SPARSE | {"layers"},
    "lottery": _SPARSE | {"layers", "rewind"},
    "set": {"density", "layers", "rewire_every", "drop_fraction"},
    "rigl": {"density", "layers", "rewire_every", "drop_fraction"},
}
_METHOD_ONLY = ("density", "structure", "layers", "rewire_every", "grad_scale", "fix_at",
                "reset_every", "decay", "drop_fraction", "rewind")


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one training run and its test error.

    Attributes
    ----------
    method : str
        One of :data:`METHODS`.
    density : float, optional
        Fraction ``d`` of participating weights per sparsified layer (REDUCE: of the weight
        count). Resolved per method when None (see the module table).
    structure : str
        ``"unstructured"``, ``"block:<b>"``, ``"2:4"`` or ``"2:4-2d"`` (search/static/lottery).
    layers : {"default", "hidden"}
        Layers to sparsify: sparsify's default selection, or that without the output layer
        (every structure fits the hidden layers of the bundled models; REDUCE then matches the
        weight count of those layers).
    rewire_every, grad_scale, fix_at, reset_every, decay : SEARCH's ``r``, ``s``, ``v``, ``z``,
        ``beta`` (see :class:`weightscope.sparse.Search`); ``rewire_every`` is also the swap
        interval of SET and RigL.
    drop_fraction : float
        Initial fraction ``f`` swapped by SET and RigL (decays linearly).
    rewind : float
        LOTTERY's rewind point ``eps`` as a fraction of ``steps`` in [0, 1) (0: initial weights).
    task : str
        Bundled task (:data:`~.tasks.TASKS`): "mnist1d" or "lm".
    arch, width : str, int
        Model of the task (:meth:`~.tasks.Task.build`) and its full width.
    recipe, lr, schedule, steps, batch_size : training recipe (:class:`~.train.TrainConfig`);
        ``lr`` None resolves to the recipe's preset.
    num_samples : int
        Dataset size (80 % train, 20 % test), a multiple of 10: MNIST-1D samples or the
        language model's token windows.
    seed : int
        Seed of the model's initialization, the batch order and the method's random draws.
    """

    method: str = "search"
    density: float | None = None
    structure: str = "unstructured"
    layers: str = "default"
    rewire_every: int | None = None
    grad_scale: float = 1.0
    fix_at: int | float | None = None
    reset_every: int | None = None
    decay: float = 0.0
    drop_fraction: float = 0.3
    rewind: float = 0.05
    task: str = "mnist1d"
    arch: str | None = None
    width: int | None = None
    recipe: str | None = None
    lr: float | None = None
    schedule: str = "cosine"
    steps: int | None = None
    batch_size: int | None = None
    num_samples: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name, value in self.task_spec.defaults.items():  # validates the task
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {METHODS}; got {self.method!r}. "
                              "Pass e.g. method='search'.")
        self._check_unused()
        self._check_model()
        object.__setattr__(self, "lr", self.train_config.lr)  # validates the recipe fields
        self._resolve_method_fields()
        method = self.sparse_method()  # validates the method's own fields
        if isinstance(method, Search):
            method.fix_step(self.steps)  # FIX within training
        for name in ("lr", "grad_scale", "decay", "drop_fraction", "rewind"):
            object.__setattr__(self, name, float(getattr(self, name)))  # one spelling, one key

    def _check_unused(self) -> None:
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        uses = _USES[self.method]
        for name in _METHOD_ONLY:
            value = getattr(self, name)
            if name in uses or value == defaults[name]:
                continue
            if name == "density" and self.method == "regular" and value == 1.0:
                continue
            users = sorted(m for m, fields in _USES.items() if name in fields)
            raise ConfigError(
                f"{name} applies only to method {' or '.join(map(repr, users))}; got "
                f"{name}={value!r} with method={self.method!r}. Drop it or change the method.")

    def _check_model(self) -> None:
        self.task_spec.check_arch(self.arch)
        if self.layers not in LAYER_SETS:
            raise ConfigError(f"layers must be one of {LAYER_SETS}; got {self.layers!r}. "
                              "Pass layers='default'.")
        for name, low in (("width", 1), ("num_samples", 10), ("seed", 0)):
            check_int(getattr(self, name), f"{name} must be an int >= {low}", minimum=low,
                      fix=f"Pass e.g. {name}={max(low, 1)}.")
        if self.num_samples % 10 or int(0.8 * self.num_samples) < self.batch_size:
            raise ConfigError(
                f"num_samples must be a multiple of 10 whose 80 % train split holds a batch of "
                f"{self.batch_size}; got {self.num_samples}. Pass e.g. num_samples=10000.")

    def _resolve_method_fields(self) -> None:
        if self.method == "regular":
            object.__setattr__(self, "density", 1.0)
            return
        # structure is "unstructured" for the methods without one (_check_unused)
        default = fixed_density(self.structure) or 0.25
        density = default if self.density is None else self.density
        object.__setattr__(self, "density", parse_structure(self.structure, density).density)
        if self.method in ("search", "set", "rigl") and self.rewire_every is None:
            object.__setattr__(self, "rewire_every", 1 if self.method == "search" else 100)
        if self.method == "lottery":
            check_real(self.rewind, "rewind must be a fraction of steps in [0, 1)", low=0.0,
                       high=1.0, high_open=True, fix="Pass e.g. rewind=0.05 (the paper's k/20).")

    @property
    def task_spec(self) -> Task:
        """The :class:`~.tasks.Task` this run trains on."""
        return get_task(self.task)

    def build(self, width: int | None = None, seed: int | None = None) -> nn.Module:
        """The task's ``arch`` at ``width`` (default: this config's), seeded if asked.

        Examples
        --------
        >>> from weightscope.experiments.models import count_weights
        >>> count_weights(RunConfig().build())
        9504
        """
        return self.task_spec.build(self.arch, self.width if width is None else width, seed)

    def load_data(self) -> Any:
        """The task's dataset at ``num_samples`` (cached)."""
        return self.task_spec.load(self.num_samples)

    @property
    def sparse(self) -> bool:
        """Whether the run sparsifies the model (every method but regular and reduce)."""
        return self.method not in ("regular", "reduce")

    @property
    def rewind_step(self) -> int:
        """LOTTERY's ``eps`` in optimizer steps, ``round(rewind * steps)``."""
        return round(self.rewind * self.steps)

    @property
    def train_config(self) -> TrainConfig:
        """The :class:`~.train.TrainConfig` of the run (LOTTERY: of its dense first run)."""
        return TrainConfig(recipe=self.recipe, lr=self.lr, steps=self.steps,
                           batch_size=self.batch_size, seed=self.seed, schedule=self.schedule)

    def sparse_method(self, trained: Mapping[str, Any] | None = None,
                      rewind: Mapping[str, Any] | None = None) -> Method | None:
        """The :mod:`weightscope.sparse` method object (None for regular and reduce).

        LOTTERY needs the trained dense state dict and the one to rewind to; without them a
        placeholder is built (enough to validate the config).
        """
        if self.method == "search":
            return Search(rewire_every=self.rewire_every, grad_scale=self.grad_scale,
                          fix_at=self.fix_at, reset_every=self.reset_every, decay=self.decay)
        if self.method == "static":
            return Static(seed=self.seed)
        if self.method in ("set", "rigl"):
            kwargs = {"fraction": self.drop_fraction, "rewire_every": self.rewire_every}
            return SET(seed=self.seed, **kwargs) if self.method == "set" else RigL(**kwargs)
        if self.method == "lottery":
            return Lottery({} if trained is None else trained, rewind,
                           rewind_step=self.rewind_step)
        return None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (resolved), JSON-serializable."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces); ``from_json`` inverts it."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        """Rebuild (and validate) a config from :meth:`to_dict`; unknown keys are errors."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown RunConfig fields {unknown}; known: {sorted(known)}. "
                              "Remove them or check the spelling.")
        return cls(**dict(data))

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        """Inverse of :meth:`to_json`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"a RunConfig must be a JSON object; got invalid JSON ({err}). "
                              "Pass the text of RunConfig.to_json().") from None
        if not isinstance(data, dict):
            raise ConfigError(f"a RunConfig must be a JSON object; got {type(data).__name__}.")
        return cls.from_dict(data)

    def key(self) -> str:
        """16 hex digits of the SHA-256 of :meth:`to_json` (equal configs, equal keys); for
        MNIST-1D, of the JSON without ``task`` (the keys from before the field existed)."""
        data = self.to_dict()
        if data["task"] == "mnist1d":
            del data["task"]
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)
