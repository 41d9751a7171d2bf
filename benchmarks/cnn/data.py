"""Image classification data, held in memory as uint8 tensors: scikit-learn's bundled digits (no
download), and MNIST, Fashion-MNIST and CIFAR-10 read from files the user already has. Nothing here
touches the network; a missing file raises DataNotFoundError naming the file and where it was sought."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

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


class DataNotFoundError(FileNotFoundError):
    """A dataset file (or the folder that should hold it) is missing; the message is one line that says
    which file and where it was looked for."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


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
def read_idx(path: str) -> np.ndarray:
    """An IDX file of unsigned bytes (gzipped if the name ends in .gz): magic 0x0000 08 <ndim>, then ndim
    big-endian int32 sizes, then the data."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    if raw[2] != _IDX_UBYTE:
        raise ValueError(f"{path}: IDX element type 0x{raw[2]:02x}, expected 0x08 (unsigned byte)")
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}i", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape}, file holds {data.size} values")
    return data.reshape(shape)


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
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"{name}: {images_path} holds {images.shape}, {labels_path} holds {labels.shape}; "
                "expected (N, H, W) images and N labels"
            )
        parts[split] = (
            torch.from_numpy(images.copy()).unsqueeze(1),
            torch.from_numpy(labels.astype(np.int64)),
        )
    return _make(name, *parts["train"], *parts["test"], 10)


# -- CIFAR-10 ---------------------------------------------------------------------------------------
def _read_cifar_batch(path: str) -> tuple[Tensor, Tensor]:
    # The format is a pickle: load only files you trust (as torchvision does).
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if len(data) != len(labels):
        raise ValueError(f"{path}: {len(data)} images but {len(labels)} labels")
    return torch.from_numpy(data.copy()), torch.from_numpy(labels)


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
    return _make("cifar10", train_x, train_y, test_x, test_y, 10)


def load_dataset(name: str, data_dir: str | None = None) -> ImageData:
    """One of DATASETS; digits needs no data_dir, the others read local files from it."""
    if name == "digits":
        return load_digits()
    if name in ("mnist", "fashion-mnist"):
        return load_idx_dataset(name, data_dir)
    if name == "cifar10":
        return load_cifar10(data_dir)
    raise ValueError(f"unknown dataset {name!r}; known: {list(DATASETS)}")
