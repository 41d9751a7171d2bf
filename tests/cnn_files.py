"""Tiny dataset files in the real formats, for the CNN benchmark's tests: IDX (MNIST, Fashion-MNIST) and
CIFAR-10's pickle batches, filled with random pixels and labels."""

from __future__ import annotations

import gzip
import os
import pickle
import struct

import numpy as np

IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def write_idx(path: str, array: np.ndarray, gz: bool) -> None:
    """IDX: two zero bytes, type 0x08 (unsigned byte), ndim; big-endian int32 sizes; the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(path + ".gz", "wb") as f:
            f.write(payload)
    else:
        with open(path, "wb") as f:
            f.write(payload)


def fake_images(n: int, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, *shape), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def write_mnist(folder: str, gz: bool, n_train: int = 30, n_test: int = 12) -> dict[str, tuple]:
    os.makedirs(folder, exist_ok=True)
    written = {}
    for split, n, seed in (("train", n_train, 0), ("test", n_test, 1)):
        images, labels = fake_images(n, (28, 28), seed)
        write_idx(os.path.join(folder, IDX_NAMES[split][0]), images, gz)
        write_idx(os.path.join(folder, IDX_NAMES[split][1]), labels, gz)
        written[split] = (images, labels)
    return written


def write_cifar(folder: str, per_batch: int = 6) -> dict[str, tuple]:
    os.makedirs(folder, exist_ok=True)
    written = {}
    for i, name in enumerate([*(f"data_batch_{k}" for k in range(1, 6)), "test_batch"]):
        images, labels = fake_images(per_batch, (3, 32, 32), seed=10 + i)
        batch = {
            b"batch_label": name.encode(),
            b"data": images.reshape(per_batch, -1),
            b"labels": list(labels),
        }
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump(batch, f)
        written[name] = (images, labels)
    return written
