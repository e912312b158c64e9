"""The book's one look, for both wings: the palette, the figure style, how a table is shown and how a figure is saved.

The figure functions themselves live with their wing (``soo.llm.figures``, ``soo.rl.figures``); they
take data and return a Figure or Axes, and a notebook saves it with :func:`save_figure` into the folder the book's
pages show. Importing this module selects matplotlib's Agg backend: figures are written to files, not displayed.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402

PALETTE = sns.color_palette("colorblind")


def style():
    """The book's one figure style (seaborn whitegrid, colour-blind palette); every notebook calls it first."""
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)


def book_table(df, precision: int = 1):
    """A table as the book shows it: no index column, every label whole (a Styler; pandas' own HTML would add
    the index and cut cells at 50 characters)."""
    return df.style.hide(axis="index").format(precision=precision, na_rep="")


def ax_or_new(ax=None, figsize=(6.4, 4)):
    """``ax``, or the Axes of a new figure of ``figsize`` (constrained layout) when it is None."""
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


@contextmanager
def fixed_jitter(seed: int = 0):
    """Draw strip plots with the same sideways jitter on every build: seaborn jitters with numpy's global random
    generator, which this seeds for the block and restores after it."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def save_figure(fig, fig_dir, name: str, dpi: int = 150, bbox_inches: str | None = "tight") -> None:
    """Write ``fig`` to ``{fig_dir}/{name}.png`` (the folder is created), as ``fig.savefig(path, dpi=dpi,
    bbox_inches=bbox_inches)`` would. The file is written beside its final name and moved into place, so a page
    never shows half a figure. Returns None, as ``savefig`` does: a notebook cell that ends with it shows nothing."""
    path = Path(fig_dir) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    try:
        fig.savefig(tmp, dpi=dpi, bbox_inches=bbox_inches)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
