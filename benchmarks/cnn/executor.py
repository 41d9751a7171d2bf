"""Running many independent training runs: in this process (jobs=1) or in a pool of worker processes,
one run per worker at a time (each with `threads` torch threads). Runs are independent and seeded, so the
rows do not depend on how they were scheduled (tests/test_cnn_sweep.py checks it).

On the CPU, stacking the replicas of a tiny model into one (grouped convolutions) does not pay: the
time of a grouped conv1d step grew linearly with the replicas here (1.7 ms per replica at 1, 3, 10 and
30), so the runs are spread over the cores instead. Each worker builds the data itself from the same
recipe (the generator and the splits are seeded) and checks its fingerprint."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pandas as pd
import torch

from benchmarks.optimizer_specs import OptimizerSpec

from .data import ImageData, load_dataset
from .store import RunKey, save_run
from .train import train_run

VALIDATION_FRACTION = 0.2


@dataclass(frozen=True)
class DataRecipe:
    """How to build the data of a call (picklable, so that a worker builds the same)."""

    dataset: str
    data_dir: str | None
    max_train: int | None
    max_test: int | None
    device: str

    def build(self) -> dict[str, ImageData]:
        """{"sweep": training minus validation, scored on validation only; "final": the same training
        and validation inputs plus the test split}."""
        data = load_dataset(self.dataset, self.data_dir).subset(self.max_train, self.max_test)
        final = data.validation_split(VALIDATION_FRACTION).to(self.device)
        return {"sweep": final.without_test(), "final": final}


@dataclass(frozen=True)
class RunTask:
    """One run to train: key, optimizer, settings, and the constant columns of its rows."""

    key: RunKey
    spec: OptimizerSpec
    epochs: int
    batch_size: int
    schedule: str
    columns: tuple[tuple[str, object], ...]  # (name, value), first in every row
    trailing: tuple[tuple[str, object], ...]  # (name, value), last in every row (provenance, config)


_WORKER: dict = {}


def _init_worker(recipe: DataRecipe, fingerprint: str, threads: int) -> None:
    torch.set_num_threads(threads)
    data = recipe.build()
    if data["final"].fingerprint() != fingerprint:
        raise RuntimeError(f"a worker built other {recipe.dataset} data than the main process")
    _WORKER.update(data=data, device=recipe.device)


def train_task(task: RunTask, data: dict[str, ImageData], runs_dir: str, device: str) -> pd.DataFrame:
    """Trains the run on its stage's data, saves its file, returns its rows as read back."""
    result = train_run(
        task.spec,
        task.key.lr,
        data["sweep" if task.key.stage == "sweep" else "final"],
        seed=task.key.seed,
        epochs=task.epochs,
        batch_size=task.batch_size,
        device=device,
        schedule=task.schedule,
    )
    frame = pd.DataFrame(result.records)
    for i, (name, value) in enumerate(task.columns):
        frame.insert(i, name, value)
    frame = frame.assign(**dict(task.trailing))
    return save_run(runs_dir, task.key, frame)


def _in_worker(args: tuple[RunTask, str]) -> tuple[RunTask, pd.DataFrame]:
    task, runs_dir = args
    return task, train_task(task, _WORKER["data"], runs_dir, _WORKER["device"])


class Executor:
    """Trains RunTasks; a context manager (the pool, if any, is started on first use and closed on exit,
    terminated if the caller is interrupted)."""

    def __init__(
        self, recipe: DataRecipe, data: dict[str, ImageData], runs_dir: str, jobs: int, threads: int
    ):
        self.recipe, self.data, self.runs_dir = recipe, data, runs_dir
        self.jobs, self.threads = jobs, threads
        self._pool = None

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if self._pool is not None:
            if kind is None:
                self._pool.close()
            else:
                self._pool.terminate()
            self._pool.join()

    def run(self, tasks: Iterable[RunTask]) -> Iterator[tuple[RunTask, pd.DataFrame]]:
        """(task, rows) as each run finishes (in any order)."""
        tasks = list(tasks)
        if not tasks:
            return iter(())
        if self.jobs <= 1 or len(tasks) == 1 and self._pool is None:
            return self._serial(tasks)
        if self._pool is None:
            context = multiprocessing.get_context("spawn")  # fork would copy OpenMP's thread state
            fingerprint = self.data["final"].fingerprint()
            self._pool = context.Pool(
                self.jobs, initializer=_init_worker, initargs=(self.recipe, fingerprint, self.threads)
            )
        return self._pool.imap_unordered(_in_worker, [(t, self.runs_dir) for t in tasks])

    def _serial(self, tasks: list[RunTask]) -> Iterator[tuple[RunTask, pd.DataFrame]]:
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            for task in tasks:
                yield task, train_task(task, self.data, self.runs_dir, self.recipe.device)
        finally:
            torch.set_num_threads(previous)


def default_jobs(budget_jobs: int | None, device: str) -> int:
    """Worker processes: the budget's, else one per core on the CPU (one on an accelerator)."""
    if torch.device(device).type != "cpu":
        return 1
    return budget_jobs or os.cpu_count() or 1
