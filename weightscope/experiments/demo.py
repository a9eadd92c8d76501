"""The `weightscope demo` experiment: a model family trained with a per-run hook.

:func:`run_family` trains every member of a width family (smallest first) with the same data,
batch order and recipe, and gives each run to a hook made by ``make_recorder(spec, model)``.
The hook is anything with ``attach(optimizer)`` and ``close()``, such as
``weightscope.Recorder``::

    import weightscope as ws
    from weightscope.experiments.demo import demo_config, run_family

    config = demo_config("adamw")
    run_family(config, "demo-out",
               lambda spec, model: ws.Recorder(spec.path, model, every=spec.every,
                                               overwrite=True))

A hook that is also a context manager (``Recorder`` is) is entered before training and exited
after it, so a run that fails is closed by the hook's own ``__exit__``; other hooks get
``close()`` only after a successful run.

The presets (:func:`demo_config`, :data:`DEMO_PRESETS`) come from
``scripts/figure1_recipe_study.py`` (its docstring has the per-seed table). The default,
``"sgd-wd5e-3"`` (SGD, lr 0.1, momentum 0.9, weight decay 5e-3, constant learning rate), shows
all three Figure 1 trends as the paper describes on every seed tried (0 to 3): both sets start
small and grow (inactive about 0.25 at step 0, 0.55 at 25 %; active about 0.01, then 0.08),
the family's search distance grows with its weights, and the median decay time grows with
final ``|w|``. Two documented contrasts: ``"adamw"`` (lr 1e-3, decoupled weight decay 0.05)
has most of the inactive set in place at step 0 (AdamW grows the large weights, the rest never
cross the final threshold), and ``"sgd-wd5e-4"`` inverts the right panel. ``task="lm"``
(:data:`TASK_PRESETS`) trains the bundled language model's width family instead (:mod:`~.lm`;
the paper's appendix A language-modeling rows) with AdamW, whatever the recipe.

Examples
--------
>>> from weightscope.experiments.demo import DemoConfig, run_family
>>> config = DemoConfig(steps=20, every=5, n_models=2, num_samples=200)
>>> [(r.spec.name, r.spec.n_weights) for r in run_family(config, "unused-dir")]
[('mlp-w120', 20400), ('mlp-w256', 78336)]
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from weightscope._validate import check_int
from weightscope.config import RecorderConfig
from weightscope.errors import ConfigError, arg, hint

from .data import MNIST1D
from .tasks import get_task
from .train import RECIPES, TrainConfig, TrainResult, train

__all__ = ["DEFAULT_RECIPE", "DEMO_NOTES", "DEMO_PRESETS", "TASK_PRESETS", "DemoConfig",
           "FamilyRun", "RunHook", "RunSpec", "demo_config", "run_family"]

_FAMILY: dict[str, object] = {"arch": "mlp", "n_models": 4, "steps": 4000, "every": 40}
#: Demo settings per recipe name (measured by scripts/figure1_recipe_study.py); the first is the
#: default (:data:`DEFAULT_RECIPE`), the others are contrasts.
DEMO_PRESETS: dict[str, dict[str, object]] = {
    "sgd-wd5e-3": {"recipe": "sgd", "weight_decay": 5e-3, **_FAMILY},
    "sgd-wd5e-4": {"recipe": "sgd", "weight_decay": 5e-4, **_FAMILY},
    "adamw": {"recipe": "adamw", **_FAMILY},
}
#: The demo's recipe: all three panels of Figure 1 hold on every seed tried.
DEFAULT_RECIPE = "sgd-wd5e-3"
#: What each recipe showed per seed (scripts/figure1_recipe_study.py; the demo's closing note).
DEMO_NOTES: dict[str, str] = {
    "sgd-wd5e-3": "on seeds 0-3 all three panels hold: inactive 0.25 / 0.23 / 0.25 / 0.25 at "
                  "step 0 and 0.55 / 0.53 / 0.55 / 0.54 at 25 %, active 0.01 then 0.07 / 0.08 "
                  "/ 0.08 / 0.07; Spearman(median Δ, final |w|) +0.76 / +0.77 / +0.83 / +0.78; "
                  "the family's distance increases with its weights on every seed.",
    "sgd-wd5e-4": "a contrast: on seed 0 the right panel inverts (Spearman -1.00) and the "
                  "distance is not monotone in the weights; inactive 0.44 at step 0.",
    "adamw": "a contrast: on seed 0 the inactive set is already 0.73 at step 0 (AdamW grows "
             "the large weights; the rest never cross the final threshold); Spearman +1.00, "
             "distance increasing.",
}
#: Settings that replace the recipe's preset for a task other than MNIST-1D.
TASK_PRESETS: dict[str, dict[str, object]] = {
    "lm": {"task": "lm", "arch": "transformer", "recipe": "adamw", "lr": 2e-3,
           "weight_decay": None, "steps": 800, "every": 8, "batch_size": 32,
           "num_samples": 10_000},
}


@dataclass(frozen=True)
class DemoConfig:
    """A model family, its training recipe and the snapshot interval, validated at construction.

    Attributes
    ----------
    recipe : {"adamw", "sgd"}
        Optimizer (:class:`~.train.TrainConfig`); ``lr`` and ``weight_decay`` left as None take
        its preset (:data:`~.train.PRESETS`). The demo's recipes are :data:`DEMO_PRESETS`
        (:func:`demo_config`).
    weight_decay : float, optional
        Weight decay (None: the optimizer's preset).
    schedule : {"constant", "cosine", "step"}, default "constant"
        Learning-rate schedule (:data:`~.train.SCHEDULES`).
    arch : {"mlp", "cnn"}
        Architecture of the family (:func:`~.models.model_family`).
    n_models : int
        Family size; weight counts span 1/4 to 1 of the largest.
    steps, every : int
        Optimizer steps per run, and steps between snapshots (``Recorder(every=...)``).
    batch_size, seed, num_samples : int
        Batch size, seed of model init and batch order, MNIST-1D size.
    threads : int or None, default 1
        torch intra-op threads while training (restored afterwards); None keeps the current
        setting. These models are too small to gain from more threads (OpenMP threads only
        compete for cores).
    task : str, default "mnist1d"
        Bundled task (:data:`~.tasks.TASKS`); ``num_samples`` counts its samples.
    lr : float, optional
        Peak learning rate (None: the recipe's preset).

    Examples
    --------
    >>> from weightscope.experiments.demo import DemoConfig
    >>> DemoConfig().widths
    (120, 176, 216, 256)
    """

    recipe: str = "adamw"
    arch: str = "mlp"
    n_models: int = 4
    steps: int = 4000
    every: int = 40
    batch_size: int = 128
    seed: int = 0
    num_samples: int = 5000
    threads: int | None = 1
    weight_decay: float | None = None
    schedule: str = "constant"
    task: str = "mnist1d"
    lr: float | None = None

    def __post_init__(self) -> None:
        get_task(self.task).check_arch(self.arch)
        if self.recipe not in RECIPES:
            raise ConfigError(f"recipe must be one of {RECIPES}; got {self.recipe!r}. "
                              "Pass recipe='adamw' or recipe='sgd'.")
        self.train_config  # noqa: B018 -- validates steps, batch_size and seed
        RecorderConfig(every=self.every)  # the Recorder's one rule of every
        if self.steps < 3 * self.every:
            raise ConfigError(
                f"{arg('steps')} must be >= 3 * every so that decay times have >= 3 snapshots; "
                f"got {hint('steps', self.steps)}, {hint('every', self.every)}. Pass more steps "
                f"(e.g. {hint('steps', 3 * self.every)}) or a smaller every."
            )
        self.widths  # noqa: B018 -- validates n_models
        if self.threads is not None:
            check_int(self.threads, "threads must be None or an int >= 1", fix="Pass threads=1.")

    @property
    def widths(self) -> tuple[int, ...]:
        """Widths of the family members, smallest first."""
        return get_task(self.task).widths(self.arch, self.n_models)

    @property
    def train_config(self) -> TrainConfig:
        """The :class:`~.train.TrainConfig` every member is trained with."""
        return TrainConfig(recipe=self.recipe, lr=self.lr, weight_decay=self.weight_decay,
                           schedule=self.schedule, steps=self.steps, batch_size=self.batch_size,
                           seed=self.seed)

    def specs(self, out_dir: str | Path) -> tuple[RunSpec, ...]:
        """One :class:`RunSpec` per family member, with its store path under ``out_dir``."""
        out = Path(out_dir)
        specs = []
        for width in self.widths:
            name = f"{self.arch}-w{width}"
            n_weights = get_task(self.task).count(self.arch, width)
            specs.append(RunSpec(name=name, arch=self.arch, width=width, n_weights=n_weights,
                                 path=out / f"{name}.zarr", every=self.every, steps=self.steps))
        return tuple(specs)


def demo_config(recipe: str = DEFAULT_RECIPE, task: str = "mnist1d",
                **overrides: object) -> DemoConfig:
    """The demo preset of ``recipe`` (:data:`DEMO_PRESETS`) and ``task`` (:data:`TASK_PRESETS`),
    with optional field overrides.

    Examples
    --------
    >>> from weightscope.experiments.demo import demo_config
    >>> demo_config("sgd-wd5e-4").recipe, demo_config(task="lm").widths
    ('sgd', (48, 64, 80, 96))
    """
    if recipe not in DEMO_PRESETS:
        raise ConfigError(f"recipe must be one of {tuple(DEMO_PRESETS)}; got {recipe!r}. "
                          f"Pass e.g. {hint('recipe', DEFAULT_RECIPE)}.")
    preset = {**DEMO_PRESETS[recipe], **TASK_PRESETS.get(get_task(task).name, {})}
    return DemoConfig(**{**preset, **overrides})  # type: ignore[arg-type]


@dataclass(frozen=True)
class RunSpec:
    """One family member: its name, width, weight count, store path and snapshot interval."""

    name: str
    arch: str
    width: int
    n_weights: int
    path: Path
    every: int
    steps: int


@runtime_checkable
class RunHook(Protocol):
    """What ``make_recorder`` returns: ``weightscope.Recorder`` satisfies it."""

    def attach(self, optimizer: torch.optim.Optimizer) -> object: ...

    def close(self) -> object: ...


@dataclass(frozen=True)
class FamilyRun:
    """A trained family member: its spec and what :func:`~.train.train` measured."""

    spec: RunSpec
    result: TrainResult


MakeHook = Callable[[RunSpec, nn.Module], RunHook]
Progress = Callable[[RunSpec, int], object]


def run_family(
    config: DemoConfig,
    out_dir: str | Path,
    make_recorder: MakeHook | None = None,
    progress: Progress | None = None,
    device: str | torch.device = "cpu",
) -> list[FamilyRun]:
    """Train every member of ``config``'s family, smallest first, each with its own hook.

    Parameters
    ----------
    config : DemoConfig
        Family, recipe and snapshot interval.
    out_dir : str or Path
        Directory of the runs (created when ``make_recorder`` is given); member ``name`` goes
        to ``out_dir / f"{name}.zarr"`` (``spec.path``).
    make_recorder : callable, optional
        ``make_recorder(spec, model) -> hook`` with ``hook.attach(optimizer)`` and
        ``hook.close()``; called after the model is built, before its optimizer exists.
    progress : callable, optional
        ``progress(spec, step)`` after every optimizer step (e.g. to advance a progress bar).
    device : str or torch.device
        Where to train.

    Returns
    -------
    list of FamilyRun
    """
    data = get_task(config.task).load(config.num_samples)
    if make_recorder is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    with _torch_threads(config.threads):
        return [_run_one(spec, config, data, make_recorder, progress, device)
                for spec in config.specs(out_dir)]


def _run_one(spec: RunSpec, config: DemoConfig, data: MNIST1D, make_recorder: MakeHook | None,
             progress: Progress | None, device: str | torch.device) -> FamilyRun:
    model = get_task(config.task).build(spec.arch, spec.width, seed=config.seed)
    on_step = None if progress is None else _bind(progress, spec)
    hook = None if make_recorder is None else make_recorder(spec, model)
    managed = hasattr(hook, "__enter__") and hasattr(hook, "__exit__")
    with hook if managed else contextlib.nullcontext():  # type: ignore[attr-defined]
        result = train(model, data, config.train_config, on_step=on_step,
                       on_optimizer=None if hook is None else hook.attach, device=device)
    if hook is not None and not managed:
        hook.close()
    return FamilyRun(spec=spec, result=result)


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _bind(progress: Progress, spec: RunSpec) -> Callable[[int, torch.Tensor], object]:
    return lambda step, loss: progress(spec, step)
