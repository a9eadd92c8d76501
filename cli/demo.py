"""``weightscope demo``: train the bundled MNIST-1D model family with the Recorder, analyze it."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from .analyze import analyze_runs
from .base import app, handle_errors
from .outputs import check_out, print_summary, write_outputs
from .progress import bar


class Recipe(str, Enum):
    """The demo's recipes (weightscope.experiments.demo.DEMO_PRESETS; a test keeps them equal)."""

    sgd_wd5e_3 = "sgd-wd5e-3"
    sgd_wd5e_4 = "sgd-wd5e-4"
    adamw = "adamw"


class Task(str, Enum):
    mnist1d = "mnist1d"
    lm = "lm"


@app.command()
@handle_errors
def demo(
    out: Annotated[Path, typer.Option(help="Directory for the runs, figure1.png and "
                                           "summary.json.")] = Path("demo-out"),
    recipe: Annotated[Recipe, typer.Option(help="Training recipe: 'sgd-wd5e-3' (SGD, weight "
                                                "decay 5e-3) shows all three trends of the "
                                                "paper; contrasts: 'adamw' (inactive set in "
                                                "place at step 0), 'sgd-wd5e-4' (inverted "
                                                "decay trend).")]
    = Recipe.sgd_wd5e_3,
    seed: Annotated[int, typer.Option(help="Seed of the models' initialization and the batch "
                                           "order.")] = 0,
    steps: Annotated[int | None, typer.Option(help="Optimizer steps per model (default: the "
                                                   "recipe's preset).")] = None,
    bins: Annotated[int, typer.Option(help="Equal-count bins of final |w| (right panel).")]
    = 10,
    task: Annotated[Task, typer.Option(help="mnist1d: MLPs on MNIST-1D; lm: the bundled "
                                            "transformer language model.")] = Task.mnist1d,
) -> None:
    """Train the demo model family with the Recorder and render Figure 1 (a few minutes)."""
    import weightscope as ws
    from weightscope.analyze._common import validate_bins
    from weightscope.experiments.demo import DEMO_NOTES, demo_config, run_family

    validate_bins(bins)  # before minutes of training
    check_out(out)
    config = demo_config(recipe.value, task.value, seed=seed,
                         **({} if steps is None else {"steps": steps}))
    specs = config.specs(out)
    with bar("training", total=len(specs) * config.steps) as advance:
        runs = run_family(
            config, out,
            make_recorder=lambda spec, model: ws.Recorder(spec.path, model, every=spec.every,
                                                          overwrite=True),
            progress=lambda spec, step: advance(1, description=f"training {spec.name}"))
    paths = [str(r.spec.path) for r in runs]
    data = analyze_runs(paths, labels=[r.spec.name for r in runs], bins=bins)
    extra = {"demo": {"preset": recipe.value, **_demo_facts(config, runs)}}
    written, numbers = write_outputs(data, out, "png", extra=extra)
    print_summary(numbers, written)
    if config.task == "mnist1d" and steps is None:  # the note measured the preset's steps
        typer.echo(f"recipe {recipe.value}: {DEMO_NOTES[recipe.value]} "
                   "(scripts/figure1_recipe_study.py)")


def _demo_facts(config: Any, runs: list[Any]) -> dict[str, Any]:
    from weightscope.experiments.tasks import get_task

    return {"task": config.task, "metric": get_task(config.task).metric,
            "recipe": config.recipe, "lr": config.train_config.lr,
            "weight_decay": config.train_config.weight_decay, "schedule": config.schedule,
            "seed": config.seed, "arch": config.arch, "steps": config.steps,
            "every": config.every,
            "runs": [{"name": r.spec.name, "weights": r.spec.n_weights,
                      "test_error": r.result.test_error, "wall_s": r.result.wall_time}
                     for r in runs]}

