"""Image classification data, held in memory as uint8 tensors: scikit-learn's bundled digits (no
download), and MNIST, Fashion-MNIST and CIFAR-10 read from files the user already has. Nothing here
touches the network; a missing file raises DataNotFoundError naming the file and where it was sought, and
a file that is there but damaged raises DataFileError naming the file and what is wrong with it. A dataset
is checked completely when it is loaded (headers, sizes, label range), so a bad file fails before any
training, never in the middle of it."""

from __future__ import annotations

import codecs
import gzip
import math
import os
import pickle
import struct
import zlib
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

try:
    from numpy._core import multiarray as _multiarray  # numpy 2
except ImportError:
    from numpy.core import multiarray as _multiarray  # numpy 1

DATASETS: tuple[str, ...] = ("digits", "mnist", "fashion-mnist", "cifar10")

SPLIT_SEED = 0
"""Seeds every split (digits train/test, validation carved from train): all runs see the same data."""

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# Folders under data_dir also searched, as torchvision lays the raw files out.
_IDX_SUBDIRS = {"mnist": ("MNIST/raw", "mnist"), "fashion-mnist": ("FashionMNIST/raw", "fashion-mnist")}
_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST = "test_batch"
_IDX_UBYTE = 0x08
_IDX_SIZE = (28, 28)  # MNIST and Fashion-MNIST images
_CIFAR_SHAPE = (3, 32, 32)
CLASSES = 10  # every dataset here has ten


class DataNotFoundError(FileNotFoundError):
    """A dataset file (or the folder that should hold it) is missing; the message is one line that says
    which file and where it was looked for."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class DataFileError(ValueError):
    """A dataset file is there but cannot be used: damaged, truncated, or not in its format. The message
    is one line: the file, then what is wrong with it."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path


@dataclass(frozen=True)
class ImageData:
    """Train and evaluation images as uint8 (N, C, H, W) with int64 labels; `normalize` turns a batch into
    float32 standardized by the training set's per-channel mean and std (computed once, on `train_x`
    of the full training set, before any validation split)."""

    name: str
    train_x: Tensor
    train_y: Tensor
    eval_x: Tensor
    eval_y: Tensor
    mean: Tensor  # (C,), in uint8 units
    std: Tensor
    classes: int
    eval_split: str = "test"  # "test", or "val" for a split carved from the training set

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])

    def normalize(self, x: Tensor) -> Tensor:
        mean = self.mean.to(x.device).view(1, -1, 1, 1)
        std = self.std.to(x.device).view(1, -1, 1, 1)
        return (x.float() - mean) / std

    def validation_split(self, fraction: float = 0.2, seed: int = SPLIT_SEED) -> ImageData:
        """Training set minus a stratified `fraction`, evaluated on that fraction (for the lr sweep)."""
        train, val = _stratified_split(self.train_y, fraction, seed)
        return replace(
            self,
            train_x=self.train_x[train],
            train_y=self.train_y[train],
            eval_x=self.train_x[val],
            eval_y=self.train_y[val],
            eval_split="val",
        )

    def subset(self, train: int | None, eval: int | None, seed: int = SPLIT_SEED) -> ImageData:
        """At most `train` training and `eval` evaluation images (stratified; for quick runs)."""
        out = self
        if train is not None and train < len(self.train_y):
            keep, _ = _stratified_split(self.train_y, 1 - train / len(self.train_y), seed)
            out = replace(out, train_x=out.train_x[keep], train_y=out.train_y[keep])
        if eval is not None and eval < len(self.eval_y):
            keep, _ = _stratified_split(self.eval_y, 1 - eval / len(self.eval_y), seed)
            out = replace(out, eval_x=out.eval_x[keep], eval_y=out.eval_y[keep])
        return out

    def to(self, device: str | torch.device) -> ImageData:
        return replace(
            self,
            train_x=self.train_x.to(device),
            train_y=self.train_y.to(device),
            eval_x=self.eval_x.to(device),
            eval_y=self.eval_y.to(device),
        )


def _stratified_split(y: Tensor, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Indices (kept, held out): `fraction` of each class held out, chosen by a seeded permutation."""
    g = torch.Generator().manual_seed(seed)
    kept, held = [], []
    for c in torch.unique(y).tolist():
        idx = torch.nonzero(y == c).view(-1)
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_held = int(round(fraction * len(idx)))
        held.append(idx[:n_held])
        kept.append(idx[n_held:])
    return torch.sort(torch.cat(kept)).values, torch.sort(torch.cat(held)).values


def _make(name: str, train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, classes: int):
    x = train_x.double()
    mean = x.mean(dim=(0, 2, 3)).float()
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-6).float()
    return ImageData(name, train_x, train_y.long(), test_x, test_y.long(), mean, std, classes)


# -- digits -----------------------------------------------------------------------------------------
def load_digits(test_fraction: float = 0.2, seed: int = SPLIT_SEED) -> ImageData:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, pixel values 0-16), split
    train/test stratified with a fixed seed."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    x = torch.from_numpy(bunch.images.astype(np.uint8)).unsqueeze(1)  # (N, 1, 8, 8)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    train, test = _stratified_split(y, test_fraction, seed)
    return _make("digits", x[train], y[train], x[test], y[test], 10)


# -- IDX (MNIST, Fashion-MNIST) ---------------------------------------------------------------------
def read_idx(path: str, ndim: int | None = None) -> np.ndarray:
    """An IDX file of unsigned bytes (gzipped if the name ends in .gz): magic 0x0000 08 <ndim>, then ndim
    big-endian 32-bit sizes, then the data. ndim: the dimensions the file must have (3 for images, 1 for
    labels). Raises DataFileError if the file is not such a file or its data does not fill its header."""
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataFileError(path, f"truncated: {len(raw)} bytes, shorter than the 4-byte IDX magic number")
    if raw[0] != 0 or raw[1] != 0:
        hint = " (it looks gzip-compressed: name it .gz)" if raw[:2] == b"\x1f\x8b" else ""
        raise DataFileError(
            path,
            f"not an IDX file (bad magic number 0x{raw[:4].hex()}, expected 0x000008 and the ndim){hint}",
        )
    if raw[2] != _IDX_UBYTE:
        raise DataFileError(path, f"IDX element type 0x{raw[2]:02x}, expected 0x08 (unsigned byte)")
    if ndim is not None and raw[3] != ndim:
        raise DataFileError(path, f"IDX file of {raw[3]} dimensions, expected {ndim}")
    header = 4 + 4 * raw[3]
    if len(raw) < header:
        raise DataFileError(
            path,
            f"truncated header: {raw[3]} dimensions need {header} bytes of header, the file has {len(raw)}",
        )
    shape = struct.unpack(f">{raw[3]}I", raw[4:header])
    values = len(raw) - header
    if values != math.prod(shape):
        raise DataFileError(
            path, f"header says shape {shape} ({math.prod(shape)} values), the file holds {values} values"
        )
    if values == 0:
        raise DataFileError(path, f"holds no data (header says shape {shape})")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _read_bytes(path: str) -> bytes:
    """The file's bytes, decompressed if its name ends in .gz."""
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        with open(path, "rb") as f:
            return f.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataFileError(path, f"named .gz but not a whole gzip file ({e})") from None
    except OSError as e:
        raise DataFileError(path, f"cannot be read ({e.strerror or e})") from None


def _check_labels(path: str, labels: np.ndarray, classes: int = CLASSES) -> None:
    bad = np.flatnonzero((labels < 0) | (labels >= classes))
    if len(bad):
        raise DataFileError(
            path,
            f"label {labels[bad[0]]} at index {bad[0]} is out of range for {classes} classes "
            f"(0..{classes - 1}){f' (and {len(bad) - 1} more)' if len(bad) > 1 else ''}",
        )


def _find(name: str, filename: str, folders: list[str]) -> str:
    """The first of folder/filename or folder/filename.gz that exists."""
    for folder in folders:
        for candidate in (filename, filename + ".gz"):
            path = os.path.join(folder, candidate)
            if os.path.isfile(path):
                return path
    raise DataNotFoundError(f"{name}: file {filename}[.gz] not found; looked in {', '.join(folders)}")


def _data_dir(name: str, data_dir: str | None, what: str) -> str:
    if data_dir is None:
        raise DataNotFoundError(f"{name} is read from local files: give a data directory holding {what}")
    if not os.path.isdir(data_dir):
        raise DataNotFoundError(f"{name}: data directory {data_dir} does not exist (expected {what})")
    return data_dir


def load_idx_dataset(name: str, data_dir: str | None) -> ImageData:
    """MNIST or Fashion-MNIST from the four standard IDX files (gzipped or not) in data_dir, or in
    data_dir/MNIST/raw, data_dir/FashionMNIST/raw (torchvision's layout)."""
    data_dir = _data_dir(name, data_dir, "train-images-idx3-ubyte[.gz] and the other IDX files")
    folders = [data_dir, *[os.path.join(data_dir, sub) for sub in _IDX_SUBDIRS[name]]]
    parts = {}
    for split, (images_file, labels_file) in _IDX_FILES.items():
        images_path, labels_path = _find(name, images_file, folders), _find(name, labels_file, folders)
        images, labels = read_idx(images_path, ndim=3), read_idx(labels_path, ndim=1)
        if images.shape[1:] != _IDX_SIZE:
            raise DataFileError(
                images_path, f"images of {images.shape[1]}x{images.shape[2]} pixels, expected 28x28"
            )
        if len(images) != len(labels):
            raise DataFileError(
                labels_path, f"{len(labels)} labels for the {len(images)} images of {images_path}"
            )
        _check_labels(labels_path, labels)
        parts[split] = (
            torch.from_numpy(images.copy()).unsqueeze(1),
            torch.from_numpy(labels.astype(np.int64)),
        )
    return _make(name, *parts["train"], *parts["test"], CLASSES)


# -- CIFAR-10 ---------------------------------------------------------------------------------------
class _BatchUnpickler(pickle.Unpickler):
    """Unpickles only what a CIFAR-10 batch holds (dicts, lists, bytes, ints and numpy arrays): unpickling
    may call any global a file names, so any other global is refused and the file is never run as code."""

    _ALLOWED = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,  # numpy 1.x's pickles
        ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,  # numpy 2.x's
        ("numpy.core.multiarray", "scalar"): _multiarray.scalar,
        ("numpy._core.multiarray", "scalar"): _multiarray.scalar,
        ("_codecs", "encode"): codecs.encode,  # bytes in a protocol 2 pickle written by Python 3
    }

    def find_class(self, module: str, name: str):
        try:
            return self._ALLOWED[module, name]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refers to {module}.{name}, which a CIFAR-10 batch does not hold; not loaded "
                "(unpickling it could run code)"
            ) from None


def _describe(value) -> str:
    return f"a {value.dtype} array" if isinstance(value, np.ndarray) else f"a {type(value).__name__}"


def _read_cifar_batch(path: str) -> tuple[Tensor, Tensor]:
    """A python batch: a pickled dict with b"data" (N x 3072 uint8, channel-major 32x32 images) and
    b"labels" (N ints in 0..9), read with _BatchUnpickler and checked whole."""
    try:
        with open(path, "rb") as f:
            batch = _BatchUnpickler(f, encoding="bytes").load()
    except OSError as e:
        raise DataFileError(path, f"cannot be read ({e.strerror or e})") from None
    except Exception as e:  # a damaged pickle fails in many ways (EOFError, UnpicklingError, ValueError, ...)
        raise DataFileError(path, f"not a CIFAR-10 python batch ({type(e).__name__}: {e})") from None
    if not isinstance(batch, dict):
        raise DataFileError(path, f"not a CIFAR-10 python batch (holds {_describe(batch)}, not a dict)")
    missing = [key.decode() for key in (b"data", b"labels") if key not in batch]
    if missing:
        raise DataFileError(path, f"CIFAR-10 batch without {' and '.join(map(repr, missing))}")
    data, labels = batch[b"data"], batch[b"labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        raise DataFileError(path, f"data is {_describe(data)}, expected a uint8 array")
    if data.ndim != 2 or data.shape[1] != math.prod(_CIFAR_SHAPE):
        raise DataFileError(path, f"data of shape {data.shape}, expected (N, 3072): N images of 3x32x32")
    if len(data) == 0:
        raise DataFileError(path, "holds no images")
    try:
        labels = np.asarray(labels)
    except (TypeError, ValueError, OverflowError) as e:
        raise DataFileError(path, f"labels are not a list of integers ({e})") from None
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataFileError(
            path, f"labels are {_describe(labels)} of shape {labels.shape}, expected N integers"
        )
    if len(data) != len(labels):
        raise DataFileError(path, f"{len(data)} images but {len(labels)} labels")
    _check_labels(path, labels)
    images = torch.from_numpy(data.reshape(-1, *_CIFAR_SHAPE).copy())
    return images, torch.from_numpy(labels.astype(np.int64))


def load_cifar10(data_dir: str | None) -> ImageData:
    """CIFAR-10 from the python batches (data_batch_1..5, test_batch) in data_dir/cifar-10-batches-py/ or
    in data_dir itself."""
    data_dir = _data_dir("cifar10", data_dir, f"{_CIFAR_DIR}/ with data_batch_1..5 and test_batch")
    folders = [os.path.join(data_dir, _CIFAR_DIR), data_dir]

    def path(filename: str) -> str:
        for folder in folders:
            if os.path.isfile(os.path.join(folder, filename)):
                return os.path.join(folder, filename)
        raise DataNotFoundError(f"cifar10: file {filename} not found; looked in {', '.join(folders)}")

    paths = [path(f) for f in (*_CIFAR_TRAIN, _CIFAR_TEST)]
    train = [_read_cifar_batch(p) for p in paths[:-1]]
    test_x, test_y = _read_cifar_batch(paths[-1])
    train_x = torch.cat([x for x, _ in train])
    train_y = torch.cat([y for _, y in train])
    return _make("cifar10", train_x, train_y, test_x, test_y, CLASSES)


def load_dataset(name: str, data_dir: str | None = None) -> ImageData:
    """One of DATASETS; digits needs no data_dir, the others read local files from it."""
    if name == "digits":
        return load_digits()
    if name in ("mnist", "fashion-mnist"):
        return load_idx_dataset(name, data_dir)
    if name == "cifar10":
        return load_cifar10(data_dir)
    raise ValueError(f"unknown dataset {name!r}; known: {list(DATASETS)}")
