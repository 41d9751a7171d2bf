"""The CNN's per-run files: a damaged one found on rerun is trained again and replaced, never an error;
runs of other settings are other files, so they never replace each other."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from benchmarks.cnn import RunKey, resumable_run

CONFIG = "cfg-0123456789ab"
KEY = RunKey("final", "Adam", 0.001, 0, CONFIG)


def _rows(epochs: int = 2, config: str = CONFIG) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "stage": KEY.stage,
            "optimizer": KEY.optimizer,
            "lr": KEY.lr,
            "seed": KEY.seed,
            "epoch": range(1, epochs + 1),
            "test_accuracy": [0.5, 0.75][:epochs],
            "config": config,
        }
    )


DAMAGED = {
    "not UTF-8": b"stage,optimizer\n\xff\xfe\x80 final,Adam\n",
    "garbage": b'\x00\x01"unclosed\n' * 3,
    "empty": b"",
    "header only": b"stage,optimizer,lr,seed,epoch,config\n",
    "other columns": b"a,b\n1,2\n",
}


@pytest.mark.parametrize("content", DAMAGED.values(), ids=DAMAGED)
def test_damaged_run_file_is_trained_again(tmp_path, content):
    path = tmp_path / KEY.filename
    path.write_bytes(content)
    calls = []
    frame, trained = resumable_run(str(tmp_path), KEY, 2, lambda: calls.append(1) or _rows())
    assert trained and calls == [1]
    pd.testing.assert_frame_equal(frame, _rows())
    assert pd.read_csv(path).equals(frame)
    assert sorted(os.listdir(tmp_path)) == [KEY.filename]  # no temporary file left

    again, trained = resumable_run(str(tmp_path), KEY, 2, lambda: pytest.fail("trained twice"))
    assert not trained and again.equals(frame)


def test_other_settings_are_another_file(tmp_path):
    other = RunKey(KEY.stage, KEY.optimizer, KEY.lr, KEY.seed, "cfg-ba9876543210")
    assert other.filename != KEY.filename
    resumable_run(str(tmp_path), KEY, 2, _rows)
    frame, trained = resumable_run(str(tmp_path), other, 2, lambda: _rows(config=other.config))
    assert trained and (frame.config == other.config).all()
    again, trained = resumable_run(str(tmp_path), KEY, 2, lambda: pytest.fail("replaced by the other"))
    assert not trained and (again.config == CONFIG).all()
