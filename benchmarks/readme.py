"""Keeps the README's result tables equal to the files under results/: each block between
`<!-- optbench:NAME -->` and `<!-- /optbench:NAME -->` is rewritten from results (never by hand)."""

from __future__ import annotations

import os
import re

import pandas as pd

from benchmarks.metadata import REPO
from benchmarks.resume import atomic_write

HEADLINE_WORKLOADS = ("16M", "resnet50", "gpt2", "overhead")
"""Bandwidth-bound (one tensor, a CNN), a transformer's 148 tensors, and per-tensor overhead alone."""


def _provenance_and_first_table(md_path: str, heading: str) -> str:
    """The 'Made by' line of a report and the first table after `heading`."""
    lines = open(md_path, encoding="utf-8").read().splitlines()
    made_by = next(line for line in lines if line.startswith("Made by"))
    start = lines.index(heading)
    table_start = next(i for i in range(start, len(lines)) if lines[i].startswith("|"))
    table_end = next((i for i in range(table_start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join([made_by, "", *lines[table_start:table_end]])


def _provenance_and_tables(md_path: str, heading: str, tables: int) -> str:
    """The 'Made by' line of a report, then everything after `heading` up to the end of its
    `tables`-th table: each table with the line above it that says what its cells are."""
    lines = open(md_path, encoding="utf-8").read().splitlines()
    made_by = next(line for line in lines if line.startswith("Made by"))
    start = lines.index(heading) + 1
    end, seen = start, 0
    while seen < tables:
        table_start = next(i for i in range(end, len(lines)) if lines[i].startswith("|"))
        end = next((i for i in range(table_start, len(lines)) if not lines[i].startswith("|")), len(lines))
        seen += 1
    body = lines[start:end]
    while body and not body[0]:
        body.pop(0)
    return "\n".join([made_by, "", *body])


def speed_headline(csv_path: str) -> str:
    """Ours against the peer each target names, on the headline workloads: each speedup with its 95%
    bootstrap interval over the interleaved rounds, and "parity" where that interval holds 1."""
    from benchmarks.metadata import provenance_line
    from benchmarks.speed.intervals import RESAMPLES
    from benchmarks.speed.run import PEERS_OF_NOTE, speedup_of

    df = pd.read_csv(csv_path)
    rows = [
        provenance_line(df.iloc[0].to_dict()),
        "",
        "Speedup: the peer's median step time ÷ ours, with its 95% bootstrap interval "
        f"({RESAMPLES} resamples of whole interleaved rounds); *parity* where the interval contains 1.",
        "",
        "| workload | rule | ours ms | ours % of floor | peer | peer ms | peer % of floor "
        "| speedup (95% CI) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for workload in HEADLINE_WORKLOADS:
        for rule, peer_name in PEERS_OF_NOTE.items():
            part = df[(df.workload == workload) & (df.rule == rule)]
            ours = part[part.implementation == "ours"]
            peer = part[part.implementation == peer_name]
            if ours.empty or peer.empty:
                continue
            o, p = ours.iloc[0], peer.iloc[0]
            rows.append(
                f"| {workload} | {rule} | {o.ms_median:.2f} | {o.pct_of_floor:.0f}% | {peer_name} | "
                f"{p.ms_median:.2f} | {p.pct_of_floor:.0f}% | {speedup_of(o, p)} |"
            )
    return "\n".join(rows)


def blocks(results: str) -> dict[str, str]:
    """NAME -> generated block, for the results present under `results`."""
    makers = {
        "functions": lambda: _provenance_and_tables(
            os.path.join(results, "functions", "convergence.md"), "## Tuned hyperparameters", 2
        ),
        "saddles": lambda: _provenance_and_tables(
            os.path.join(results, "saddles", "convergence.md"), "## Escape against lr", 1
        ),
        "cnn": lambda: _provenance_and_first_table(os.path.join(results, "cnn", "cnn.md"), "## Convergence"),
        "speed": lambda: speed_headline(os.path.join(results, "speed", "speed_cpu.csv")),
    }
    out = {}
    for name, make in makers.items():
        try:
            out[name] = make()
        except (OSError, StopIteration, ValueError):
            continue  # that part has not been run
    return out


def update_readme(results: str, readme: str = os.path.join(REPO, "README.md")) -> bool:
    """Rewrites the marked blocks of `readme` from `results`; True when the file changed."""
    if not os.path.isfile(readme):
        return False
    text = original = open(readme, encoding="utf-8").read()
    for name, body in blocks(results).items():
        pattern = re.compile(rf"(<!-- optbench:{name} -->\n).*?(<!-- /optbench:{name} -->)", re.S)
        text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), text)
    if text == original:
        return False
    atomic_write(readme, lambda f: f.write(text.encode("utf-8")))
    return True
