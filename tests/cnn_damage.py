"""Damaged dataset files, one case per way a file can be wrong, for the loaders' and the CLI's tests: a
case writes good tiny files (tests.cnn_files) into a data folder, spoils one of them, and says what the
error about that file must say."""

from __future__ import annotations

import gzip
import io
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tests.cnn_files import write_cifar, write_idx, write_mnist

CIFAR = "cifar-10-batches-py"


@dataclass(frozen=True)
class Damage:
    desc: str
    dataset: str
    file: str  # relative to the data folder
    spoil: Callable[[str], None]  # rewrites the file at this path
    expected: str  # in the error's message
    gz: bool = False  # the IDX files written gzipped

    def make(self, data_dir: str) -> str:
        """Good files in data_dir, then self.file spoiled; returns its path."""
        if self.dataset == "cifar10":
            write_cifar(os.path.join(data_dir, CIFAR))
        else:
            write_mnist(data_dir, gz=self.gz)
        path = os.path.join(data_dir, self.file)
        self.spoil(path)
        return path


def _bytes(change: Callable[[bytes], bytes]) -> Callable[[str], None]:
    def spoil(path: str) -> None:
        with open(path, "rb") as f:
            raw = f.read()
        with open(path, "wb") as f:
            f.write(change(raw))

    return spoil


def _gzipped(change: Callable[[bytes], bytes]) -> Callable[[str], None]:
    """Changes the IDX bytes inside a .gz file, which stays a good gzip file."""
    return _bytes(lambda raw: gzip.compress(change(gzip.decompress(raw))))


def _idx(array: np.ndarray) -> Callable[[str], None]:
    """A well-formed IDX file holding `array` instead."""
    return lambda path: write_idx(path, array, gz=False)


def _label(index: int, value: int, header: int = 8) -> Callable[[bytes], bytes]:
    return lambda raw: raw[: header + index] + bytes([value]) + raw[header + index + 1 :]


def _batch(change: Callable[[dict], object]) -> Callable[[str], None]:
    """A CIFAR batch (our own file, so plain pickle is fine here) rewritten as change(batch)."""

    def spoil(path: str) -> None:
        with open(path, "rb") as f:
            batch = pickle.load(f)
        with open(path, "wb") as f:
            pickle.dump(change(batch), f)

    return spoil


def _with(**changes) -> Callable[[dict], dict]:
    def change(batch: dict) -> dict:
        batch = dict(batch)
        for key, value in changes.items():
            if value is None:
                del batch[key.encode()]
            else:
                batch[key.encode()] = value(batch[key.encode()])
        return batch

    return change


class _OpensAFile:
    """Unpickled by plain pickle, this calls open(path, "w"): the file appearing means code ran."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return io.open, (self.path, "w")


def ran_marker(path: str) -> str:
    """The file the code-running pickle of `path` creates if it is unpickled unrestricted."""
    return path + ".code-ran"


TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"

DAMAGES = [
    Damage("idx bad magic", "mnist", TRAIN_IMAGES, _bytes(lambda r: b"\x01\x02" + r[2:]), "bad magic number"),
    Damage("idx gzip not named .gz", "mnist", TEST_LABELS, _bytes(gzip.compress), "name it .gz"),
    Damage("idx element type", "mnist", TRAIN_LABELS, _bytes(lambda r: r[:2] + b"\x0d" + r[3:]), "type 0x0d"),
    Damage("idx empty file", "mnist", TRAIN_LABELS, _bytes(lambda r: b""), "truncated: 0 bytes"),
    Damage("idx truncated header", "mnist", TEST_IMAGES, _bytes(lambda r: r[:9]), "truncated header"),
    Damage(
        "idx data shorter than header",
        "mnist",
        TRAIN_IMAGES,
        _bytes(lambda r: r[:-100]),
        "header says shape (30, 28, 28) (23520 values), the file holds 23420",
    ),
    Damage(
        "idx labels of 3 dimensions",
        "mnist",
        TRAIN_LABELS,
        _idx(np.zeros((30, 1, 1))),
        "3 dimensions, expected 1",
    ),
    Damage("idx zero images", "mnist", TRAIN_IMAGES, _idx(np.zeros((0, 28, 28))), "holds no data"),
    Damage("idx not 28x28", "mnist", TEST_IMAGES, _idx(np.zeros((12, 14, 56))), "14x56 pixels"),
    Damage("idx label count", "mnist", TEST_LABELS, _idx(np.zeros(11)), "11 labels for the 12 images"),
    Damage(
        "idx label out of range",
        "mnist",
        TRAIN_LABELS,
        _bytes(_label(3, 25)),
        "label 25 at index 3 is out of range for 10 classes",
    ),
    Damage(
        "gz not gzip",
        "fashion-mnist",
        TRAIN_IMAGES + ".gz",
        _bytes(gzip.decompress),
        "not a whole gzip file",
        gz=True,
    ),
    Damage(
        "gz truncated",
        "fashion-mnist",
        TEST_IMAGES + ".gz",
        _bytes(lambda r: r[: len(r) // 2]),
        "not a whole gzip file",
        gz=True,
    ),
    Damage(
        "gz label out of range",
        "fashion-mnist",
        TEST_LABELS + ".gz",
        _gzipped(_label(11, 200)),
        "label 200 at index 11",
        gz=True,
    ),
    Damage(
        "cifar truncated",
        "cifar10",
        f"{CIFAR}/data_batch_2",
        _bytes(lambda r: r[: len(r) // 2]),
        "not a CIFAR-10 python batch",
    ),
    Damage(
        "cifar garbage",
        "cifar10",
        f"{CIFAR}/data_batch_3",
        _bytes(lambda r: bytes(range(256)) * 4),
        "not a CIFAR-10 python batch",
    ),
    Damage("cifar not a dict", "cifar10", f"{CIFAR}/test_batch", _batch(lambda b: [1, 2]), "holds a list"),
    Damage(
        "cifar no labels key",
        "cifar10",
        f"{CIFAR}/data_batch_1",
        _batch(_with(labels=None)),
        "without 'labels'",
    ),
    Damage(
        "cifar wrong data size",
        "cifar10",
        f"{CIFAR}/data_batch_4",
        _batch(_with(data=lambda d: d[:, :3000])),
        "data of shape (6, 3000), expected (N, 3072)",
    ),
    Damage(
        "cifar float data",
        "cifar10",
        f"{CIFAR}/data_batch_5",
        _batch(_with(data=lambda d: d.astype(np.float64))),
        "data is a float64 array",
    ),
    Damage(
        "cifar negative label",
        "cifar10",
        f"{CIFAR}/test_batch",
        _batch(_with(labels=lambda y: [-1, *map(int, y[1:])])),
        "label -1 at index 0 is out of range",
    ),
    Damage(
        "cifar label 10",
        "cifar10",
        f"{CIFAR}/data_batch_1",
        _batch(_with(labels=lambda y: [*map(int, y[:5]), 10])),
        "label 10 at index 5",
    ),
    Damage(
        "cifar label count",
        "cifar10",
        f"{CIFAR}/data_batch_2",
        _batch(_with(labels=lambda y: y[:-1])),
        "6 images but 5 labels",
    ),
    Damage(
        "cifar zero images",
        "cifar10",
        f"{CIFAR}/data_batch_3",
        _batch(_with(data=lambda d: d[:0], labels=lambda y: [])),
        "holds no images",
    ),
    Damage(
        "cifar pickle that runs code",
        "cifar10",
        f"{CIFAR}/data_batch_1",
        lambda path: _batch(_with(labels=lambda y: _OpensAFile(ran_marker(path))))(path),
        "refers to io.open",
    ),
]
