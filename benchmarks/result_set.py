"""A benchmark's result files as one set: written with a manifest, read only when whole and consistent.

A run writes its data files (CSVs, JSON) through `writing(folder)`: first the manifest is replaced by one
that says the set is being written, then each file is written atomically, and last the manifest lists
every file with its size, sha256 and (for a CSV) its row and column counts. A reader (`ResultSet`) checks
each file against that list, so a file cut short, replaced by another run's or edited is refused, and a
set left by a run killed while writing it (a new runs.csv beside an old trajectories.csv) is never read
as one: its manifest still says it was being written.

Results written before manifests existed (no manifest file) are read with an `UncheckedResultsWarning`:
their files are still checked for what can be seen in one file (empty, header only, not UTF-8, not a
table, columns missing), but not for truncation or mixing. Every problem is a `ResultFileError` that
names the file and what is wrong.

    with writing(out) as result:
        result.csv("runs.csv", runs, float_format="%.10g")
        result.text("sweep.json", json.dumps(sweep))

    results = ResultSet(out)
    runs = results.csv("runs.csv", columns=RUNS_COLUMNS, numeric=("lr", "seed"))
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence

import pandas as pd

from benchmarks.resume import write_bytes, write_text

MANIFEST = "manifest.json"
FORMAT = "optbench-result-set/1"
RERUN = "run the benchmark again to rewrite the set (finished work units are kept)"


class ResultFileError(ValueError):
    """A result file that cannot be read as what it should hold: `path` and what is wrong (`problem`)."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = path, problem


class UncheckedResultsWarning(UserWarning):
    """A result set without a manifest (written before manifests): read, but unchecked for truncation
    and mixing."""


# -- writing ----------------------------------------------------------------------------------------
class SetWriter:
    """Writes the files of one set into `folder`, each atomically, and records what each holds."""

    def __init__(self, folder: str):
        self.folder = folder
        self.files: dict[str, dict] = {}

    def bytes(self, name: str, data: bytes, **facts) -> str:
        """`data` as the set's file `name`; `facts` (rows, columns) are recorded beside its checksum."""
        path = os.path.join(self.folder, name)
        write_bytes(path, data)
        self.files[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), **facts}
        return path

    def text(self, name: str, text: str) -> str:
        return self.bytes(name, text.encode("utf-8"))

    def csv(self, name: str, df: pd.DataFrame, **kwargs) -> str:
        """df.to_csv(index=False, **kwargs) as the set's file `name`."""
        data = df.to_csv(index=False, **kwargs).encode("utf-8")
        return self.bytes(name, data, rows=len(df), columns=len(df.columns))


@contextlib.contextmanager
def writing(folder: str, manifest: str = MANIFEST) -> Iterator[SetWriter]:
    """A SetWriter for `folder`; the manifest lists its files once the block ends without an error.

    Until then the manifest says the set is being written: an exception, or a kill, inside the block
    leaves a set that every ResultSet refuses. `manifest` names the manifest file (a folder holding
    several independent sets gives each its own, e.g. `speed_cpu.manifest.json`)."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, manifest)
    write_text(path, _manifest_text(complete=False, files={}))
    writer = SetWriter(folder)
    yield writer
    write_text(path, _manifest_text(complete=True, files=writer.files))


def own_manifest(file_name: str) -> str:
    """The manifest name of a set that is one data file, in a folder that holds several such sets (each
    `optbench speed --dtype D` run writes one table): speed_cpu.csv -> speed_cpu.manifest.json."""
    return os.path.splitext(file_name)[0] + ".manifest.json"


def _manifest_text(complete: bool, files: dict) -> str:
    return json.dumps({"format": FORMAT, "complete": complete, "files": files}, indent=1, sort_keys=True)


# -- reading one file -------------------------------------------------------------------------------
def read_bytes(path: str) -> bytes:
    if os.path.isdir(path):
        raise ResultFileError(path, "is a folder, not a file")
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise ResultFileError(path, "missing") from None


def _decode(path: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ResultFileError(
            path, f"not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}): damaged or not a result"
        ) from None


def read_text(path: str) -> str:
    """The file as UTF-8 text; ResultFileError when it is missing, empty or not UTF-8."""
    text = _decode(path, read_bytes(path))
    if not text.strip():
        raise ResultFileError(path, "empty")
    return text


def parse_csv(
    path: str, data: bytes, columns: Iterable[str] = (), numeric: Iterable[str] = ()
) -> pd.DataFrame:
    """The CSV in `data` (read from `path`) as a DataFrame with at least one row, every one of
    `columns`, and numbers only (or blanks) in each of `numeric`."""
    text = _decode(path, data)
    if not text.strip():
        raise ResultFileError(path, "empty (no header, no rows)")
    if not text.endswith("\n"):  # to_csv ends every row with one
        raise ResultFileError(path, "ends in the middle of a row: cut short")
    try:
        df = pd.read_csv(io.StringIO(text))
    except ValueError as e:  # pandas' ParserError and EmptyDataError among them
        reason = " ".join(str(e).split())[:160]
        raise ResultFileError(path, f"not a CSV table ({reason})") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        shown = ", ".join(map(str, df.columns[:6])) + (", ..." if len(df.columns) > 6 else "")
        raise ResultFileError(
            path, f"lacks the column{'s' * (len(missing) > 1)} {', '.join(missing)} (has {shown})"
        )
    if df.empty:
        raise ResultFileError(path, "has a header but no rows")
    for c in numeric:
        if not pd.api.types.is_numeric_dtype(df[c]):
            values = pd.to_numeric(df[c], errors="coerce")
            bad = df[c][values.isna() & df[c].notna()]
            if not bad.empty:
                shown = repr(str(bad.iloc[0])[:40])
                raise ResultFileError(
                    path, f"column {c} holds {shown}, not a number (data row {bad.index[0] + 1})"
                )
    return df


def read_csv(path: str, columns: Iterable[str] = (), numeric: Iterable[str] = ()) -> pd.DataFrame:
    """One CSV checked as `parse_csv` does (no manifest: for a file that belongs to no set)."""
    return parse_csv(path, read_bytes(path), columns, numeric)


def parse_json(path: str, data: bytes, keys: Iterable[str] = ()) -> dict:
    """The JSON object in `data` (read from `path`), holding every one of `keys`."""
    text = _decode(path, data)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ResultFileError(path, f"not JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    if not isinstance(value, dict):
        raise ResultFileError(path, f"holds a JSON {type(value).__name__}, not an object")
    missing = [k for k in keys if k not in value]
    if missing:
        raise ResultFileError(
            path, f"lacks the key{'s' * (len(missing) > 1)} {', '.join(map(repr, missing))}"
        )
    return value


def read_json(path: str, keys: Iterable[str] = ()) -> dict:
    return parse_json(path, read_bytes(path), keys)


# -- reading a set ----------------------------------------------------------------------------------
class ResultSet:
    """The result set in `folder`, as its manifest lists it (see the module docstring).

    Raises ResultFileError when the manifest is damaged or says the set was not finished; without a
    manifest (results written before manifests) warns once (UncheckedResultsWarning) and reads the files
    that are there."""

    def __init__(self, folder: str, manifest: str = MANIFEST):
        self.folder = folder
        self.manifest_path = os.path.join(folder, manifest)
        self.files: dict[str, dict] | None = None  # None: no manifest, nothing to check against
        if not os.path.lexists(self.manifest_path):
            warnings.warn(
                f"{folder}: no {manifest} (results written before result manifests): its files are read "
                "unchecked for truncation or a mix of two runs; run the benchmark again to get one",
                UncheckedResultsWarning,
                stacklevel=2,
            )
            return
        self.files = self._read_manifest()

    @property
    def checked(self) -> bool:
        return self.files is not None

    def _read_manifest(self) -> dict[str, dict]:
        path = self.manifest_path
        manifest = parse_json(path, read_bytes(path), ("format", "complete", "files"))
        if manifest["format"] != FORMAT:
            raise ResultFileError(
                path, f"format {manifest['format']!r} is not {FORMAT!r}: not written by this optbench"
            )
        if manifest["complete"] is not True:
            raise ResultFileError(
                path,
                "says its set was still being written: the run that wrote it was interrupted, so its files "
                f"may mix two runs; {RERUN}",
            )
        files = manifest["files"]
        if not isinstance(files, dict) or not all(
            isinstance(entry, dict)
            and isinstance(entry.get("sha256"), str)
            and isinstance(entry.get("bytes"), int)
            for entry in files.values()
        ):
            raise ResultFileError(path, "damaged: 'files' must map each file name to its bytes and sha256")
        return files

    def has(self, name: str) -> bool:
        """Whether the set holds `name` (listed in its manifest; without one, present on disk)."""
        if self.files is None:
            return os.path.exists(self.path(name))
        return name in self.files

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def bytes(self, name: str) -> bytes:
        """The file's bytes, exactly as the run wrote them (ResultFileError otherwise)."""
        path = self.path(name)
        if self.files is None:
            return read_bytes(path)
        entry = self.files.get(name)
        if entry is None:
            raise ResultFileError(path, f"not part of the set {self.manifest_path} lists")
        rows = f" ({entry['rows']} rows)" if isinstance(entry.get("rows"), int) else ""
        try:
            data = read_bytes(path)
        except ResultFileError as e:
            raise ResultFileError(path, f"{e.problem}, though {MANIFEST} lists it{rows}; {RERUN}") from None
        if len(data) < entry["bytes"]:
            raise ResultFileError(
                path,
                f"truncated or replaced: {len(data)} of the {entry['bytes']} bytes{rows} its manifest "
                f"lists; {RERUN}",
            )
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise ResultFileError(
                path,
                f"is not the file its manifest lists (sha256 differs: replaced by another run's file, or "
                f"edited), so the set would mix two runs; {RERUN}",
            )
        return data

    def csv(self, name: str, columns: Sequence[str] = (), numeric: Sequence[str] = ()) -> pd.DataFrame:
        """The set's CSV `name` (checked as `parse_csv` does, and against the manifest)."""
        df = parse_csv(self.path(name), self.bytes(name), columns, numeric)
        rows = (self.files or {}).get(name, {}).get("rows")
        if isinstance(rows, int) and len(df) != rows:
            raise ResultFileError(
                self.path(name), f"holds {len(df)} rows, its manifest lists {rows}; {RERUN}"
            )
        return df

    def json(self, name: str, keys: Sequence[str] = ()) -> dict:
        return parse_json(self.path(name), self.bytes(name), keys)
