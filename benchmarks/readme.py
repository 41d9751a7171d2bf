"""Keeps the README's result tables equal to the files under results/: each block between
`<!-- optbench:NAME -->` and `<!-- /optbench:NAME -->` is rewritten from results (never by hand)."""

from __future__ import annotations

import os
import re

from benchmarks.metadata import REPO
from benchmarks.result_set import ResultFileError, ResultSet, own_manifest, read_text
from benchmarks.resume import write_text

HEADLINE_WORKLOADS = ("16M", "resnet50", "gpt2", "overhead")
"""Bandwidth-bound (one tensor, a CNN), a transformer's 148 tensors, and per-tensor overhead alone."""
REWRITE = "not a report this optbench wrote; run `optbench report` to rewrite it"


def _report_lines(md_path: str, heading: str) -> tuple[list[str], str, int]:
    """The lines of a report, its 'Made by' line and the index of `heading`: ResultFileError when the
    file is not UTF-8 text or lacks either."""
    lines = read_text(md_path).splitlines()
    made_by = next((line for line in lines if line.startswith("Made by")), None)
    if made_by is None:
        raise ResultFileError(md_path, f"has no 'Made by' line: {REWRITE}")
    if heading not in lines:
        raise ResultFileError(md_path, f"has no {heading!r} section: {REWRITE}")
    return lines, made_by, lines.index(heading)


def _table_end(md_path: str, lines: list[str], start: int) -> tuple[int, int]:
    """(first, end) line indices of the first table at or after `start`."""
    table_start = next((i for i in range(start, len(lines)) if lines[i].startswith("|")), None)
    if table_start is None:
        raise ResultFileError(md_path, f"has a section without its table: {REWRITE}")
    end = next((i for i in range(table_start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return table_start, end


def _provenance_and_tables(md_path: str, heading: str, tables: int) -> str:
    """The 'Made by' line of a report, then everything after `heading` up to the end of its
    `tables`-th table: each table with the line above it that says what its cells are."""
    lines, made_by, start = _report_lines(md_path, heading)
    start += 1
    end = start
    for _ in range(tables):
        _, end = _table_end(md_path, lines, end)
    body = lines[start:end]
    while body and not body[0]:
        body.pop(0)
    return "\n".join([made_by, "", *body])


def speed_headline(csv_path: str) -> str:
    """Ours against the peer each target names, on the headline workloads: each speedup with its 95%
    bootstrap interval over the interleaved rounds, and "parity" where that interval holds 1."""
    from benchmarks.metadata import provenance_line
    from benchmarks.speed.intervals import RESAMPLES
    from benchmarks.speed.report import REPORT_COLUMNS
    from benchmarks.speed.run import speedup_of

    folder, name = os.path.split(csv_path)
    results = ResultSet(folder, manifest=own_manifest(name))  # one set per speed table
    df = results.csv(name, REPORT_COLUMNS, ("ms_median", "pct_of_floor"))
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
        for rule, peer_name in _headline_rules():
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


def _headline_rules() -> list[tuple[str, str]]:
    """(rule, the peer its target is stated against), grouped by that peer in the order the rules
    first name it: the rules timed against torch-fused, then torch-foreach, then the other packages."""
    from benchmarks.speed.rules import RULES

    peers = list(dict.fromkeys(rule.target_peer for rule in RULES.values()))
    by_peer = sorted(RULES.values(), key=lambda rule: peers.index(rule.target_peer))  # stable
    return [(rule.name, rule.target_peer) for rule in by_peer]


def blocks(results: str) -> dict[str, str]:
    """NAME -> generated block, for the results present under `results`. A part that has not been run
    keeps its block; one whose file is there but damaged is a ResultFileError."""
    sources = {
        "functions": (os.path.join("functions", "convergence.md"), "## Tuned hyperparameters", 2),
        "saddles": (os.path.join("saddles", "convergence.md"), "## Escape against lr", 1),
        "cnn": (os.path.join("cnn", "cnn.md"), "## Results", 1),
        "speed": (os.path.join("speed", "speed_cpu.csv"), None, None),
    }
    out = {}
    for name, (file, heading, tables) in sources.items():
        path = os.path.join(results, file)
        if not os.path.lexists(path):
            continue
        if name == "speed":
            out[name] = speed_headline(path)
        else:
            out[name] = _provenance_and_tables(path, heading, tables)
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
    write_text(readme, text)
    return True
