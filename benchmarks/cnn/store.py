"""Resumability: every finished run is its own small CSV under out_dir/runs/, written atomically (a temp
file in the same folder, then os.replace), so an interrupted sweep loses at most the run in progress and
a rerun loads what is there instead of training it again."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from benchmarks.resume import write_csv


@dataclass(frozen=True)
class RunKey:
    """What identifies a run within one output folder."""

    stage: str  # "sweep" or "final"
    optimizer: str
    lr: float
    seed: int

    @property
    def filename(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.optimizer.lower()).strip("-")
        return f"{self.stage}__{slug}__lr{self.lr:g}__seed{self.seed}.csv"


def _matches(frame: pd.DataFrame, key: RunKey, config: str, epochs: int) -> bool:
    """A stored run counts only if it is this key's, made with this configuration, and complete."""
    return (
        len(frame) == epochs
        and (frame.epoch.tolist() == list(range(1, epochs + 1)))
        and (frame.optimizer == key.optimizer).all()
        and (frame.stage == key.stage).all()
        and (frame.seed == key.seed).all()
        and (frame.lr == key.lr).all()
        and (frame.config == config).all()
    )


def resumable_run(
    runs_dir: str, key: RunKey, config: str, epochs: int, run: Callable[[], pd.DataFrame]
) -> tuple[pd.DataFrame, bool]:
    """The run's rows, and whether it was trained now: loads runs_dir/<key.filename> when it holds this
    key's `epochs` rows made with the same `config`; otherwise calls `run()` (which must return such
    rows), writes them atomically and returns them as read back, so a fresh run and a loaded one give
    identical frames. `config` identifies the settings: a non-numeric string stored in the `config`
    column (run_cnn's is a hash of dataset, sizes, epochs, batch, hyperparameters and model)."""
    path = os.path.join(runs_dir, key.filename)
    if os.path.exists(path):
        try:
            stored = pd.read_csv(path)
            if _matches(stored, key, config, epochs):
                return stored, False
        except (ValueError, AttributeError, KeyError):  # ValueError: ParserError, EmptyDataError, not UTF-8
            pass  # unreadable or from an older layout: run it again
    write_csv(run(), path)
    return pd.read_csv(path), True
