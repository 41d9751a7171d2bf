"""Per-dataset settings of the CNN protocol: epochs, batch, seeds, the lr search's size, the targets of
the time-to-target columns, and how the runs share the machine."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .data import DATASETS


@dataclass(frozen=True)
class Budget:
    epochs: int  # every run, sweep and held-out alike, unless sweep_epochs says otherwise
    batch_size: int
    loss_target: float  # training loss; the table reports epochs and seconds to reach it
    accuracy_target: float  # validation accuracy; likewise
    seeds: int = 10  # held-out seeds at the chosen lr (0 .. seeds-1)
    sweep_seeds: int = 3  # seeds of every lr tried (SWEEP_SEED ..), disjoint from the held-out ones
    sweep_epochs: int | None = None  # None: epochs (the lr is chosen for the horizon it is reported at)
    lr_points: int = 5  # the starting grid, half a decade apart around the rule's typical lr
    lr_extra: int = 2  # then this many more, each beyond a grid edge or between the best and a neighbour
    last_epochs: int = 3  # selection scores the mean validation loss of the last this many epochs
    max_train: int | None = None  # caps on the training and test inputs (quick runs)
    max_test: int | None = None
    threads: int | None = None  # torch threads per run (None: every core / jobs)
    jobs: int | None = None  # runs at once in worker processes (None: one per core; 1: in this process)

    @property
    def tuning_runs(self) -> int:
        """Runs the lr search spends on every optimizer: the same for all."""
        return (self.lr_points + self.lr_extra) * self.sweep_seeds


BUDGETS: dict[str, Budget] = {
    # Tiny model and data: one run per core, one thread each. 25 epochs of 32 steps leave the rules
    # well apart (the Separation line of cnn.md) and the default call within minutes on 2 cores.
    "mnist1d": Budget(epochs=25, batch_size=100, loss_target=0.2, accuracy_target=0.85, threads=1),
    "digits": Budget(epochs=10, batch_size=32, loss_target=0.02, accuracy_target=0.98, seeds=5, threads=1),
    # Real image sets from local files: one run at a time on every core; a shorter sweep.
    "mnist": Budget(
        epochs=8, sweep_epochs=2, batch_size=128, loss_target=0.02, accuracy_target=0.99, seeds=5, jobs=1
    ),
    "fashion-mnist": Budget(
        epochs=10, sweep_epochs=2, batch_size=128, loss_target=0.2, accuracy_target=0.90, seeds=5, jobs=1
    ),
    "cifar10": Budget(
        epochs=20, sweep_epochs=3, batch_size=128, loss_target=0.5, accuracy_target=0.70, seeds=5, jobs=1
    ),
}

QUICK = {
    "epochs": 3,
    "seeds": 2,
    "sweep_seeds": 2,
    "lr_points": 3,
    "lr_extra": 1,
    "last_epochs": 1,
    "max_train": 1000,
    "max_test": 500,
}
"""--quick: a smoke run of the plumbing (2 + 2 seeds, 3 + 1 lrs, 3 epochs, at most 1,000 inputs)."""


def budget_for(
    dataset: str, quick: bool = False, epochs: int | None = None, seeds: int | None = None
) -> Budget:
    """The dataset's budget; quick: QUICK's settings. epochs overrides every run's epochs (a shorter
    sweep_epochs is kept, capped by it); seeds the held-out seeds."""
    if dataset not in BUDGETS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {list(DATASETS)}")
    budget = BUDGETS[dataset]
    if quick:
        budget = replace(budget, **QUICK, sweep_epochs=None)
    if epochs is not None:
        if epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {epochs}")
        sweep = None if budget.sweep_epochs is None else min(budget.sweep_epochs, epochs)
        budget = replace(budget, epochs=epochs, sweep_epochs=sweep)
    if seeds is not None:
        if seeds < 1:
            raise ValueError(f"seeds must be at least 1, got {seeds}")
        budget = replace(budget, seeds=seeds)
    return replace(budget, last_epochs=min(budget.last_epochs, budget.sweep_epochs or budget.epochs))
