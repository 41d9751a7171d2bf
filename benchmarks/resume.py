"""Finished work units of an interruptible run, one file each, so that a rerun resumes where it stopped.

A unit is saved only once it is complete, through a temporary file and `os.replace`, so a unit file on
disk is always whole: a run killed at any point leaves finished units and, at most, a stray temporary
file, never a half-written unit. Each unit is stored with the key (its settings) it was computed for; a
rerun loads a unit only when the key matches, and otherwise computes it again.

Every other output goes through the same atomic write: `write_csv`, `write_text`, `write_bytes`.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import pickle
import re
import tempfile
from collections.abc import Callable
from typing import Any, BinaryIO

_SUFFIX = ".unit.pkl"


def atomic_write(path: str, write: Callable[[BinaryIO], None]) -> None:
    """Calls write(f) on a temporary file beside `path`, then renames it over `path` (atomic on POSIX)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        os.fchmod(fd, _file_mode())  # mkstemp's 0600 would make results private to their maker
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename is None:  # a full disk says so without naming a file
            e.filename = path
        raise


def _file_mode() -> int:
    """The mode open() gives a new file: 0666 less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_csv(df, path: str, **kwargs) -> None:
    """DataFrame.to_csv(path, index=False, **kwargs), atomically."""
    atomic_write(path, lambda f: df.to_csv(f, index=False, **kwargs))


def write_bytes(path: str, data: bytes) -> None:
    """`data` as the whole of `path`, atomically."""
    atomic_write(path, lambda f: f.write(data))


def write_text(path: str, text: str) -> None:
    """`text` as the whole of `path` in UTF-8, atomically (tables, JSON, README blocks)."""
    write_bytes(path, text.encode("utf-8"))


def _canonical(key: dict) -> str:
    return json.dumps(key, sort_keys=True, default=str)


def key_digest(key: dict) -> str:
    """A short hash of a unit's key (its settings): what tells apart the units of two configurations."""
    return hashlib.sha256(_canonical(key).encode()).hexdigest()[:12]


class UnitStore:
    """Units by name under `directory`; fresh=True discards the units already there (of every key).

    by_key=True names each unit's file by its name and a digest of its key (`1-search-0123abcd4567`), so
    that the units of runs with other settings or code sit beside each other instead of replacing each
    other: several configurations can share a directory, and each one resumes from its own units."""

    def __init__(self, directory: str, fresh: bool = False, *, by_key: bool = False):
        self.directory = directory
        self.by_key = by_key
        self.loaded = 0
        self.computed = 0
        if fresh:
            for path in glob.glob(os.path.join(glob.escape(directory), "*" + _SUFFIX)):
                os.unlink(path)

    def path(self, name: str, key: dict | None = None) -> str:
        """The unit's file; with by_key, the key is part of the name and must be given."""
        if self.by_key:
            if key is None:
                raise TypeError("a UnitStore(by_key=True) names its units by their key: pass it")
            name = f"{name}-{key_digest(key)}"
        return os.path.join(self.directory, re.sub(r"[^A-Za-z0-9._+-]", "_", name) + _SUFFIX)

    def load(self, name: str, key: dict) -> Any | None:
        """The value saved under `name` for this key; None when there is none (or it was computed for
        other settings, or cannot be read)."""
        try:
            with open(self.path(name, key), "rb") as f:
                stored = pickle.load(f)
        except FileNotFoundError:
            return None
        except Exception:  # an unreadable unit (another version's pickle): compute it again
            return None
        if not isinstance(stored, dict) or stored.get("key") != _canonical(key):
            return None
        self.loaded += 1
        return stored["value"]

    def save(self, name: str, key: dict, value: Any) -> None:
        payload = {"key": _canonical(key), "value": value}
        atomic_write(
            self.path(name, key), lambda f: pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
        )
        self.computed += 1

    def get_or_compute(self, name: str, key: dict, compute: Callable[[], Any]) -> tuple[Any, bool]:
        """(value, loaded): the saved unit when there is one, else compute() saved as a new unit."""
        value = self.load(name, key)
        if value is not None:
            return value, True
        value = compute()
        self.save(name, key, value)
        return value, False
