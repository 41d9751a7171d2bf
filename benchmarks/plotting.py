"""What the benchmark plots share: a headless matplotlib with one seaborn theme, and one colour per
optimizer (the same optimizer keeps its colour across the plots of one report)."""

from __future__ import annotations


def pyplot():
    """matplotlib.pyplot (Agg backend: no display needed) and seaborn, themed for the reports."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    return plt, sns


def palette(optimizers: list[str]) -> dict[str, tuple]:
    """A tab10 colour for each optimizer name, in order."""
    import seaborn as sns

    return dict(zip(optimizers, sns.color_palette("tab10", max(len(optimizers), 3)), strict=False))
