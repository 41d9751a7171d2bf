"""The CNN benchmark's loaders on tiny files written in the real formats (IDX with its magic numbers,
gzipped and not; CIFAR-10's pickle batches), the bundled digits split, the missing-file errors, and every
kind of damaged file refused when it is loaded, with one line naming it."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from benchmarks.cnn import DATASETS, DataFileError, DataNotFoundError, load_dataset
from benchmarks.cnn.data import read_idx
from tests.cnn_damage import DAMAGES, ran_marker
from tests.cnn_files import write_cifar, write_idx, write_mnist


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_idx_files_load(tmp_path, name, gz):
    written = write_mnist(str(tmp_path), gz)
    data = load_dataset(name, str(tmp_path))
    assert data.name == name and data.shape == (1, 28, 28) and data.classes == 10
    assert data.train_x.dtype == torch.uint8 and data.train_y.dtype == torch.int64
    assert torch.equal(data.train_x[:, 0], torch.from_numpy(written["train"][0]))
    assert torch.equal(data.train_y, torch.from_numpy(written["train"][1]).long())
    assert torch.equal(data.test_x[:, 0], torch.from_numpy(written["test"][0]))
    assert torch.equal(data.test_y, torch.from_numpy(written["test"][1]).long())
    batch = data.normalize(data.train_x)  # standardized with the training set's statistics
    assert batch.dtype == torch.float32
    assert abs(batch.mean().item()) < 1e-4 and abs(batch.std().item() - 1) < 1e-3


def test_idx_in_torchvision_layout(tmp_path):
    write_mnist(str(tmp_path / "FashionMNIST" / "raw"), gz=True)
    assert len(load_dataset("fashion-mnist", str(tmp_path)).train_y) == 30


def test_read_idx_header(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(str(tmp_path / "x-idx3-ubyte"), array, gz=False)
    raw = (tmp_path / "x-idx3-ubyte").read_bytes()
    assert raw[:4] == b"\x00\x00\x08\x03"  # the magic number 2051 of an images file
    np.testing.assert_array_equal(read_idx(str(tmp_path / "x-idx3-ubyte")), array)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01" + raw[4:])
    with pytest.raises(ValueError, match="bad magic"):
        read_idx(str(tmp_path / "bad"))
    (tmp_path / "short").write_bytes(raw[:-1])
    with pytest.raises(ValueError, match="header says shape"):
        read_idx(str(tmp_path / "short"))


def test_idx_missing_file_names_file_and_folders(tmp_path):
    write_mnist(str(tmp_path), gz=False)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte")
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("mnist", str(tmp_path))
    message = str(info.value)
    assert "t10k-labels-idx1-ubyte" in message and str(tmp_path) in message
    assert "\n" not in message
    assert isinstance(info.value, FileNotFoundError)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "cifar10"])
def test_missing_data_dir(tmp_path, name):
    with pytest.raises(DataNotFoundError, match="data directory"):
        load_dataset(name, None)
    with pytest.raises(DataNotFoundError, match=f"{tmp_path / 'nowhere'} does not exist"):
        load_dataset(name, str(tmp_path / "nowhere"))


def test_cifar_batches_load(tmp_path):
    written = write_cifar(str(tmp_path / "cifar-10-batches-py"))
    data = load_dataset("cifar10", str(tmp_path))
    assert data.shape == (3, 32, 32) and len(data.train_y) == 30 and len(data.test_y) == 6
    assert torch.equal(data.train_x[:6], torch.from_numpy(written["data_batch_1"][0]))
    assert torch.equal(data.train_y[-6:], torch.from_numpy(written["data_batch_5"][1]).long())
    assert torch.equal(data.test_x, torch.from_numpy(written["test_batch"][0]))
    assert data.mean.shape == (3,) and data.std.shape == (3,)


def test_cifar_batch_as_the_download_has_it(tmp_path):
    """Protocol 2, Python ints as labels, the filenames too: what the restricted unpickler must admit."""
    folder = tmp_path / "cifar-10-batches-py"
    written = write_cifar(str(folder))
    images, labels = written["test_batch"]
    batch = {
        b"batch_label": b"testing batch 1 of 1",
        b"labels": [int(y) for y in labels],
        b"data": images.reshape(len(images), -1),
        b"filenames": [f"img_{i}.png".encode() for i in range(len(images))],
    }
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    data = load_dataset("cifar10", str(tmp_path))
    assert torch.equal(data.test_x, torch.from_numpy(images))
    assert data.test_y.tolist() == [int(y) for y in labels]


def test_cifar_missing_batch(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(str(folder))
    os.remove(folder / "data_batch_3")
    with pytest.raises(DataNotFoundError, match=r"data_batch_3 not found; looked in .*cifar-10-batches-py"):
        load_dataset("cifar10", str(tmp_path))


@pytest.mark.parametrize("damage", DAMAGES, ids=[d.desc for d in DAMAGES])
def test_damaged_file_is_refused_on_load(tmp_path, damage):
    path = damage.make(str(tmp_path))
    with pytest.raises(DataFileError) as info:
        load_dataset(damage.dataset, str(tmp_path))
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    assert damage.expected in message, message
    assert info.value.path == path and isinstance(info.value, ValueError)
    assert not os.path.exists(ran_marker(path))  # the CIFAR pickle's code was never run


def test_good_files_still_load_after_the_checks(tmp_path):
    """The damage cases spoil good files: unspoiled, each dataset loads (labels 0 and 9 included)."""
    write_mnist(str(tmp_path / "mnist"), gz=True)
    write_cifar(str(tmp_path / "cifar" / "cifar-10-batches-py"))
    for name, folder in (("fashion-mnist", "mnist"), ("cifar10", "cifar")):
        data = load_dataset(name, str(tmp_path / folder))
        assert 0 <= data.train_y.min() and data.train_y.max() <= 9 and len(data.test_y) > 0


def test_digits_split_is_fixed_and_stratified():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert a.shape == (1, 8, 8) and len(a.train_y) + len(a.test_y) == 1797
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert 0.19 < len(a.test_y) / 1797 < 0.21
    assert set(a.test_y.tolist()) == set(range(10))
    val = a.validation_split(0.2)
    assert len(val.train_y) + len(val.val_y) == len(a.train_y)
    assert torch.equal(val.test_x, a.test_x)  # the test split is untouched
    assert set(val.evaluation_splits()) == {"val", "test"}
    # the validation images come from the training set, not the test set
    train_rows = {tuple(x.flatten().tolist()) for x in a.train_x}
    assert all(tuple(x.flatten().tolist()) in train_rows for x in val.val_x[:50])
    held = val.without_test()
    assert held.test_x is None and set(held.evaluation_splits()) == {"val"}
    assert held.sizes() == {"train_size": len(val.train_y), "val_size": len(val.val_y), "test_size": 0}


def test_mnist1d_is_generated_locally_with_the_published_settings():
    """MNIST-1D from the mnist1d package's generator (never its downloader): 4,000 + 1,000 signals of
    length 40, balanced classes, the same data every time, and the global RNGs left as they were."""
    import random

    np.random.seed(123)
    random.seed(7)
    expected_np, expected_py = np.random.random(), random.random()
    np.random.seed(123)
    random.seed(7)
    a = load_dataset("mnist1d")
    assert (np.random.random(), random.random()) == (expected_np, expected_py)
    b = load_dataset("mnist1d")
    assert a.shape == (1, 40) and a.classes == 10 and a.train_x.dtype == torch.float32
    assert len(a.train_y) == 4000 and len(a.test_y) == 1000
    assert torch.bincount(torch.cat([a.train_y, a.test_y])).tolist() == [500] * 10
    assert torch.equal(a.train_x, b.train_x) and a.fingerprint() == b.fingerprint()
    # the mnist1d generator's own standardization of the whole set, before our per-channel one
    whole = torch.cat([a.train_x, a.test_x])
    assert abs(whole.mean().item()) < 1e-3 and abs(whole.std().item() - 1) < 1e-3
    batch = a.normalize(a.train_x[:7])
    assert batch.shape == (7, 1, 40) and batch.dtype == torch.float32


def test_unknown_dataset():
    assert DATASETS == ("mnist1d", "digits", "mnist", "fashion-mnist", "cifar10")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("imagenet")
