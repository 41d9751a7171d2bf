"""Resumability: every finished run is its own small CSV under out_dir/runs/, written atomically (a temp
file in the same folder, then os.replace), so an interrupted sweep loses at most the runs in progress and
a rerun loads what is there instead of training it again. A run's file name carries the hash of every
setting that determines its rows and of the code (benchmarks.metadata.code_version), so runs of other
settings (another dataset, schedule, epochs...) share the folder without replacing each other, and an
edited source never reuses a stored run."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from benchmarks.resume import write_csv


@dataclass(frozen=True)
class RunKey:
    """What identifies a run: its stage, optimizer, lr and seed, and `config`, a hash of the settings
    (a non-numeric string, stored in the run's `config` column too)."""

    stage: str  # "sweep" or "final"
    optimizer: str
    lr: float
    seed: int
    config: str

    @property
    def filename(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.optimizer.lower()).strip("-")
        return f"{self.stage}__{slug}__lr{self.lr:g}__seed{self.seed}__{self.config}.csv"


def _matches(frame: pd.DataFrame, key: RunKey, epochs: int) -> bool:
    """A stored run counts only if it is this key's, made with this configuration, and complete."""
    return (
        len(frame) == epochs
        and (frame.epoch.tolist() == list(range(1, epochs + 1)))
        and (frame.optimizer == key.optimizer).all()
        and (frame.stage == key.stage).all()
        and (frame.seed == key.seed).all()
        and (frame.lr == key.lr).all()
        and (frame.config == key.config).all()
    )


def load_run(runs_dir: str, key: RunKey, epochs: int) -> pd.DataFrame | None:
    """The stored rows of this run when its file holds all `epochs` of them; None otherwise (missing,
    incomplete, damaged or of another layout: the run is trained again)."""
    path = os.path.join(runs_dir, key.filename)
    if not os.path.exists(path):
        return None
    try:
        stored = pd.read_csv(path)
        return stored if _matches(stored, key, epochs) else None
    except (ValueError, AttributeError, KeyError):  # ValueError: ParserError, EmptyDataError, not UTF-8
        return None


def save_run(runs_dir: str, key: RunKey, frame: pd.DataFrame) -> pd.DataFrame:
    """Writes the run's rows atomically and returns them as read back, so a fresh run and a loaded one
    give identical frames."""
    path = os.path.join(runs_dir, key.filename)
    write_csv(frame, path)
    return pd.read_csv(path)


def resumable_run(
    runs_dir: str, key: RunKey, epochs: int, run: Callable[[], pd.DataFrame]
) -> tuple[pd.DataFrame, bool]:
    """The run's rows, and whether it was trained now: load_run's when there, else run()'s (which must
    return `epochs` rows of this key) saved by save_run."""
    stored = load_run(runs_dir, key, epochs)
    if stored is not None:
        return stored, False
    return save_run(runs_dir, key, run()), True
