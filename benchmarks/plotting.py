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


# Okabe and Ito's eight colours, distinguishable with colour-vision deficiencies too (tab10's purple,
# brown and grey made Adam, Adam without bias correction and diffGrad hard to tell apart).
OKABE_ITO = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")


def palette(optimizers: list[str]) -> dict[str, tuple]:
    """A colour for each optimizer name, in order: Okabe–Ito for up to eight, tab20 beyond."""
    import matplotlib.colors
    import seaborn as sns

    if len(optimizers) <= len(OKABE_ITO):
        colours = [matplotlib.colors.to_rgb(c) for c in OKABE_ITO]
    else:
        colours = sns.color_palette("tab20", len(optimizers))
    return dict(zip(optimizers, colours, strict=False))
