"""The LLM chapter's figures, one function each.

Each figure function takes tidy data (a pandas DataFrame) and an optional ``ax``, draws in the one style of the
book (``soo.style``: :func:`style`, a colour-blind-safe palette), and returns the Axes (or the Figure for
multi-panel figures). No training, no evaluation and no file I/O here: the notebooks save the figures. The RL
chapter's figures are in ``soo.rl.figures``.
"""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from ..style import PALETTE
from ..style import ax_or_new as _ax
from .config import BASE_LABEL, CONDITIONS

RATE_LABEL = "Deceptive response rate (%)"
CONDITION_ORDER = ["base", *CONDITIONS]
"""The order (and colour index) of the LLM conditions in every figure: the start model, then soo.llm.config.CONDITIONS."""
CONDITION_NAMES = {"base": BASE_LABEL, **CONDITIONS}


def _errbars(ax, x, y, lo, hi, color="black"):
    ax.errorbar(x, y, yerr=[np.asarray(y) - np.asarray(lo), np.asarray(hi) - np.asarray(y)], fmt="none",
                ecolor=color, capsize=3, lw=1)


def plot_baseline_rates(df: pd.DataFrame, ax=None):
    """Deceptive rate by condition (x) and scenario order (hue), with 95 % bootstrap intervals.

    ``df`` columns: ``setting`` (x label), ``order`` ("paper" / "mirrored"), ``rate``, ``ci_low``, ``ci_high``.
    """
    ax = _ax(ax, (7, 4))
    settings = list(dict.fromkeys(df["setting"]))
    orders = list(dict.fromkeys(df["order"]))
    w = 0.8 / len(orders)
    for j, o in enumerate(orders):
        d = df[df["order"] == o].set_index("setting").loc[settings]
        x = np.arange(len(settings)) + (j - (len(orders) - 1) / 2) * w
        ax.bar(x, d["rate"], width=w, color=PALETTE[j], label=f"{o} order")
        _errbars(ax, x, d["rate"], d["ci_low"], d["ci_high"])
    ax.axhline(50, color="grey", ls=":", lw=1)
    ax.set_xticks(np.arange(len(settings)), [s.replace(" + ", "\n+ ").replace(", ", ",\n") for s in settings])
    ax.set_ylim(0, 119)
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel(RATE_LABEL)
    ax.legend(title="Scenario order", loc="upper center", ncol=len(orders), fontsize="small", title_fontsize="small")
    return ax


def plot_conditions(df: pd.DataFrame, ax=None, value="mean", ylabel=RATE_LABEL):
    """One bar per fine-tuning condition: mean over seeds ± population SD, seeds as dots. A condition with one seed
    gets its run's 95 % bootstrap interval over scenarios instead, where ``df`` has it (``ci_low``/``ci_high`` of
    the deceptive rate, ``value="mean"``).

    ``df``: one row per (condition, seed) with a ``condition`` column and the ``value`` column.
    """
    ax = _ax(ax, (7, 4))
    conds = [c for c in CONDITION_ORDER if c in set(df["condition"])]
    for i, c in enumerate(conds):
        v = df.loc[df["condition"] == c, value].to_numpy(dtype=float)
        ax.bar(i, v.mean(), color=PALETTE[i % len(PALETTE)], alpha=0.85)
        if len(v) > 1:
            ax.errorbar(i, v.mean(), yerr=v.std(ddof=0), fmt="none", ecolor="black", capsize=4)
        elif value == "mean" and {"ci_low", "ci_high"} <= set(df.columns):
            lo, hi = df.loc[df["condition"] == c, ["ci_low", "ci_high"]].to_numpy(dtype=float)[0]
            _errbars(ax, [i], v, [lo], [hi])
        jitter = np.linspace(-0.12, 0.12, len(v)) if len(v) > 1 else 0.0
        ax.scatter(np.full(len(v), i) + jitter, v, color="black", s=12, zorder=3)
    ax.set_xticks(range(len(conds)), [textwrap.fill(CONDITION_NAMES.get(c, c), 14) for c in conds])
    ax.set_ylabel(ylabel)
    if value in ("mean", "paper order", "mirrored", "perspectives"):
        ax.set_ylim(0, 105)
    return ax


def plot_latent_soo(df: pd.DataFrame):
    """Latent self-other distinction (MSE) per layer, attention vs MLP, for each condition.

    ``df`` columns: ``condition``, ``layer``, ``block`` ("attention"/"mlp"), ``mse`` (mean over seeds).
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained", sharex=True)
    conds = [c for c in CONDITION_ORDER if c in set(df["condition"])]
    for ax, block in zip(axes, ("attention", "mlp")):
        d = df[df["block"] == block]
        for i, c in enumerate(conds):
            dc = d[d["condition"] == c].sort_values("layer")
            ax.plot(dc["layer"], dc["mse"], marker="o", ms=3, color=PALETTE[i], label=CONDITION_NAMES.get(c, c),
                    ls="--" if c == "base" else "-")
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("Layer")
        ax.set_title(f"{'Attention (o_proj)' if block == 'attention' else 'MLP (down_proj)'} outputs")
    axes[0].set_ylabel("Latent self-other distinction (MSE)")
    axes[1].legend(fontsize="small")
    return fig


def plot_layer_sweep(df: pd.DataFrame, base_rate: float | None = None, ax=None):
    """Deceptive rate after SOO (MSE) against the SOO layer. ``df``: ``layer``, ``mean``, ``ci_low``, ``ci_high``."""
    ax = _ax(ax, (6, 3.8))
    d = df.sort_values("layer")
    ax.plot(d["layer"], d["mean"], marker="o", color=PALETTE[1], label="after SOO")
    _errbars(ax, d["layer"], d["mean"], d["ci_low"], d["ci_high"], color=PALETTE[1])
    if base_rate is not None:
        ax.axhline(base_rate, color="grey", ls="--", label="before SOO")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("SOO layer (o_proj output)")
    ax.set_ylabel(RATE_LABEL)
    ax.set_ylim(0, 105)
    ax.legend(fontsize="small")
    return ax


def plot_lr_sweep(df: pd.DataFrame, base_rate: float | None = None):
    """SOO (MSE) against the learning rate: the deceptive rate (log-prob, with 95 % intervals) and
    what it costs (capability KL to the model before SOO; greedy answers naming no room).
    ``df``: ``lr``, ``mean``, ``ci_low``, ``ci_high``, ``kl``, ``generate unclear``."""
    d = df.sort_values("lr")
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    a1.plot(d["lr"], d["mean"], marker="o", ls="none", color=PALETTE[1], label="after SOO")  # points: no trend
    _errbars(a1, d["lr"], d["mean"], d["ci_low"], d["ci_high"], color=PALETTE[1])
    if base_rate is not None:
        a1.axhline(base_rate, color="grey", ls="--", label="before SOO")
    a1.set_ylabel(RATE_LABEL)
    a1.set_ylim(0, 105)
    a1.legend(fontsize="small")
    a2.plot(d["lr"], d["kl"], marker="o", ls="none", color=PALETTE[2], label="KL to the model before SOO")
    a2.set_ylabel("capability KL (nats/token)")
    a2.set_ylim(0, max(0.1, float(d["kl"].max())) * 1.1)
    a3 = a2.twinx()
    a3.plot(d["lr"], d["generate unclear"], marker="s", ls="none", color=PALETTE[3],
            label="greedy answers naming no room")
    a3.set_ylabel("answers naming no room (%)")
    a3.set_ylim(0, 110)
    a3.grid(False)
    a2.legend(handles=a2.get_lines() + a3.get_lines(), fontsize="small", loc="upper left")
    for ax in (a1, a2):
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
    return fig


def plot_generalization(df: pd.DataFrame, variants, titles=None):
    """The paper's 3x3 grid: one panel per generalization scenario, bars per model condition.

    ``df`` columns: ``variant``, ``condition``, ``rate`` (mean over orders and seeds), ``sd`` (over seeds; NaN
    where there is one seed), ``ci_low``/``ci_high`` (the one run's 95 % bootstrap interval over scenarios where
    there is one seed). Error bars: the SD, or the interval; the dotted line is 50 % (no preference between the rooms).
    """
    fig, axes = plt.subplots(3, 3, figsize=(10, 9), sharey=True, layout="constrained")
    conds = [c for c in CONDITION_ORDER if c in set(df["condition"])]
    for ax, v in zip(axes.flat, variants):
        d = df[df["variant"] == v].set_index("condition").reindex(conds)
        ax.bar(range(len(conds)), d["rate"], color=[PALETTE[CONDITION_ORDER.index(c)] for c in conds])
        has_sd = d["sd"].notna().to_numpy()  # one seed (the start model, or seeds=[s]): its run's interval
        if has_sd.any():
            ax.errorbar(np.arange(len(conds))[has_sd], d["rate"][has_sd], yerr=d["sd"][has_sd], fmt="none",
                        ecolor="black", capsize=3)
        if "ci_low" in d and (~has_sd).any():
            x = np.arange(len(conds))[~has_sd]
            _errbars(ax, x, d["rate"][~has_sd], d["ci_low"][~has_sd], d["ci_high"][~has_sd])
        ax.axhline(50, color="grey", ls=":", lw=1)
        ax.set_title((titles or {}).get(v, v), fontsize="medium")
        ax.set_xticks(range(len(conds)), [textwrap.fill(CONDITION_NAMES.get(c, c), 14) for c in conds], fontsize="small")
        ax.set_ylim(0, 105)
    for ax in axes[:, 0]:
        ax.set_ylabel(RATE_LABEL)
    return fig


def plot_training_curves(curves: dict, ax=None, ylabel="Training loss (epoch mean)"):
    """Loss per epoch, one line per run. ``curves``: {label: [loss per epoch]}."""
    ax = _ax(ax, (6, 3.5))
    for i, (k, v) in enumerate(curves.items()):
        ax.plot(np.arange(1, len(v) + 1), v, marker="o", ms=3, color=PALETTE[i % len(PALETTE)], label=k)
    ax.set_xlabel("Epoch")
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    ax.legend(fontsize="small")
    return ax



def plot_ladder(per_seed: pd.DataFrame, marks: dict, ladder, value: str = "generate paper",
                mirrored: str | None = "generate mirrored", ax=None):
    """The control ladder: one column per rung from the start model up (``ladder``: the rungs' condition names in
    order), each seed's rate as a dot and their mean as a bar; ``value``: a column of ``per_seed`` (default: greedy
    generation in the paper's order, the measure the paper and the replications report), and beside it (hatched)
    the same rate in the mirrored order (``mirrored``; None: not drawn), so that a rung that only moved which room
    comes first reads as such. ``marks`` (``{study: {condition: rate}}``) are other studies' rates on the same rungs
    (the paper's order), drawn as open markers on our paper-order bar. With no runs of ours, only the marks are drawn."""
    ax = _ax(ax, (8.5, 4))
    rungs = ["base", *ladder]
    x = np.arange(len(rungs))
    cols = [(value, -0.19, None, "paper order")] + ([(mirrored, 0.19, "///", "mirrored order")] if mirrored else [])
    w = 0.36 if mirrored else 0.6
    if not per_seed.empty:
        for col, dx, hatch, label in cols:
            for i, c in enumerate(rungs):
                v = per_seed.loc[per_seed.condition == c, col].to_numpy(float)
                if v.size:
                    ax.bar(i + (dx if mirrored else 0), v.mean(), width=w, hatch=hatch, edgecolor="0.3" if hatch else None,
                           color=PALETTE[CONDITION_ORDER.index(c) % len(PALETTE)], alpha=0.55 if not hatch else 0.3,
                           label=f"ours, {label}" if i == 0 and mirrored else None)
                    ax.scatter(i + (dx if mirrored else 0) + np.linspace(-w / 4, w / 4, v.size), v, color="black",
                               s=10, zorder=3)
    for j, (study, rates) in enumerate(marks.items()):
        pts = [(rungs.index(c), r) for c, r in rates.items() if c in rungs]
        ax.scatter([p[0] + (-0.19 if mirrored else 0.33) for p in pts], [p[1] for p in pts], marker="os^"[j % 3],
                   facecolors="none", edgecolors=PALETTE[(j + 4) % len(PALETTE)], s=45, lw=1.5, label=study, zorder=4)
    ax.set_xticks(x, [textwrap.fill(CONDITION_NAMES[c], 12) for c in rungs], fontsize="small")
    ax.set_ylim(0, 105)
    ax.set_ylabel(RATE_LABEL)
    if per_seed.empty:
        ax.text(0.5, 0.55, "ours: not computed yet (make llm-full)", transform=ax.transAxes, ha="center", color="0.3")
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    return ax
