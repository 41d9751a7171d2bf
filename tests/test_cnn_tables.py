"""The CNN table's statistics over seeds, on held-out rows with known answers: the t interval of the
mean accuracy, the geometric mean of the training loss, time to target with failures as never, diverged
runs kept, and the separation line's numbers."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from benchmarks.cnn.tables import per_run, results_table, separation, summarize

T4 = 2.7764451051977987  # Student t, 97.5th percentile, 4 degrees of freedom


def _final(accuracies: dict[str, list[float]], losses: dict[str, list[float]] | None = None) -> pd.DataFrame:
    """Two epochs per (optimizer, seed): epoch 1 misses both targets, epoch 2 has the given test
    accuracy, training loss (default 0.1: under the 0.2 target) and a validation accuracy equal to it."""
    rows = []
    for opt, accs in accuracies.items():
        for seed, acc in enumerate(accs):
            loss = (losses or {}).get(opt, [0.1] * len(accs))[seed]
            for epoch, (a, lo) in enumerate([(0.1, 2.0), (acc, loss)], start=1):
                rows.append(
                    {
                        "optimizer": opt,
                        "seed": seed,
                        "lr": 0.01,
                        "epoch": epoch,
                        "test_accuracy": a,
                        "test_loss": lo,
                        "train_loss": lo,
                        "val_accuracy": a,
                        "elapsed_seconds": 1.5 * epoch,
                        "step_ms": 0.25,
                        "diverged": False,
                        "loss_target": 0.2,
                        "accuracy_target": 0.85,
                    }
                )
    return pd.DataFrame(rows)


def test_mean_accuracy_has_the_t_interval_over_seeds():
    final = _final({"A": [0.5, 0.6, 0.7, 0.8, 0.9]})
    (row,) = summarize(final).itertuples()
    half = T4 * math.sqrt(0.025) / math.sqrt(5)  # sample std of the five is sqrt(0.025)
    assert row.test_accuracy == pytest.approx((0.7, 0.7 - half, 0.7 + half))
    assert row.n == 5
    table = "\n".join(results_table(final, {"A": True}))
    assert f"70.0 [{100 * (0.7 - half):.1f}, {100 * (0.7 + half):.1f}]" in table
    assert "0.01 †" in table and "n=5" in table
    assert row.step_ms == (0.25, 0.25, 0.25)  # every run's median step time is 0.25 ms
    assert table.rstrip().endswith("| 0.250 [0.250, 0.250] |")


def test_training_loss_is_a_geometric_mean_and_targets_count_failures_as_never():
    final = _final({"A": [0.9, 0.9, 0.86, 0.86, 0.86]}, {"A": [0.01, 0.1, 1.0, 1.0, 1.0]})
    (row,) = summarize(final).itertuples()
    assert row.train_loss[0] == pytest.approx((0.01 * 0.1 * 1.0**3) ** (1 / 5))
    runs = per_run(final)
    assert runs.epochs_to_loss.tolist() == [2, 2, math.inf, math.inf, math.inf]
    assert runs.seconds_to_loss.tolist() == [3.0, 3.0, math.inf, math.inf, math.inf]
    assert math.isinf(row.epochs_to_loss[0]) and row.reached_loss == 2  # 3 of 5 never: median never
    assert row.epochs_to_accuracy[0] == 2 and row.reached_accuracy == 5
    assert "never [2, never] (2/5)" in "\n".join(results_table(final, {}))


def test_diverged_runs_stay_in_the_statistics():
    final = _final({"A": [0.9, 0.9, 0.1]}, {"A": [0.1, 0.1, math.nan]})
    final.loc[(final.seed == 2), "diverged"] = True
    (row,) = summarize(final).itertuples()
    assert row.test_accuracy[0] == pytest.approx(1.9 / 3) and row.diverged == 1
    assert math.isnan(row.test_loss[0])
    assert "(1/3 diverged)" in "\n".join(results_table(final, {}))


def test_separation_counts_disjoint_intervals():
    final = _final(
        {
            "A": [0.90, 0.91, 0.92, 0.91, 0.90],
            "B": [0.50, 0.52, 0.51, 0.50, 0.52],
            "C": [0.89, 0.93, 0.91, 0.90, 0.92],
        }
    )
    s = separation(final)
    assert s["pairs"] == 3 and set(s["disjoint_pairs"]) == {("A", "B"), ("B", "C")}
    assert s["spread"] == pytest.approx(0.91 - 0.51)  # C's mean is 0.91, B's 0.51
    widths = [hi - lo for _, lo, hi in summarize(final).test_accuracy]
    assert s["median_width"] == pytest.approx(sorted(widths)[1])
