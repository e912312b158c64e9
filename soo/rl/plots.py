"""Figures of the RL experiment: one function per figure, data in, Axes/Figure out (no training, no I/O)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

PALETTE = sns.color_palette("colorblind")
AGENT_COLOURS = {"deceptive": PALETTE[3], "honest": PALETTE[2], "soo": PALETTE[0], "capability": PALETTE[4],
                 "random": PALETTE[7]}
AGENT_LABELS = {"deceptive": "Deceptive baseline", "honest": "Honest baseline", "soo": "SOO fine-tuning",
                "capability": "Capability term only", "random": "Random + capability"}
PAIR_LABELS = {"soo_vs_honest": "SOO vs Honest", "soo_vs_deceptive": "SOO vs Deceptive",
               "honest_vs_deceptive": "Honest vs Deceptive"}


def _population_sd(v: pd.Series) -> tuple[float, float]:
    """mean ± population SD (ddof=0); seaborn's ``errorbar="sd"`` uses the sample SD (ddof=1)."""
    return v.mean() - v.std(ddof=0), v.mean() + v.std(ddof=0)


def plot_training_curves(history: pd.DataFrame, y: str = "return_blue", ax=None):
    """Mean episode return (column ``y``) against training episode, one line per ``agent``
    (band: mean ± population SD over seeds)."""
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    sns.lineplot(data=history, x="episode", y=y, hue="agent", palette=AGENT_COLOURS, errorbar=_population_sd, ax=ax)
    ax.set(xlabel="Training episode", ylabel=y.replace("_", " ").capitalize())
    return ax


def plot_contours(surfaces: dict, xs, ys, sd: dict | None = None, fig=None):
    """The three count-surface panels (Deceptive baseline, SOO fine-tuning, Honest baseline), mean over seeds.

    ``surfaces[kind]``: ``(len(ys), len(xs))``; ``sd[kind]`` (optional) is overlaid as contour lines.
    """
    kinds = ("deceptive", "soo", "honest")
    fig = fig or plt.figure(figsize=(13, 3.8))
    axes = fig.subplots(1, 3, sharey=True)
    vmax = max(float(np.max(surfaces[k])) for k in kinds) or 1.0
    levels = np.linspace(0, vmax, 15)
    for ax, k in zip(axes, kinds):
        cs = ax.contourf(xs, ys, surfaces[k], levels=levels, cmap="viridis")
        if sd is not None and np.max(sd[k]) > 0:
            ax.contour(xs, ys, sd[k], levels=4, colors="white", linewidths=0.6, alpha=0.7)
        ax.set(title=AGENT_LABELS[k], xlabel="Projection on non-goal threshold")
    axes[0].set_ylabel("Cosine angle goal-non-goal threshold")
    fig.colorbar(cs, ax=axes, label="Deceptive actions (mean over seeds)", format="%.0f")
    return fig


def plot_behavioural_difference(difference: dict, ax=None):
    """Horizontal bars of the surface MSE per pair, mean +- SD over seeds."""
    ax = ax or plt.subplots(figsize=(6, 2.6))[1]
    keys = list(PAIR_LABELS)
    means = [difference[k]["mean"] for k in keys]
    sds = [difference[k]["sd"] for k in keys]
    ax.barh([PAIR_LABELS[k] for k in keys], means, xerr=sds, color=[PALETTE[0], PALETTE[1], PALETTE[2]],
            capsize=4)
    ax.invert_yaxis()
    ax.set(xlabel="Behavioural difference (MSE between count surfaces)")
    return ax


def plot_classification(episodes, mean, sd=None, ax=None):
    """Classification accuracy (%) of the mean-SOO classifier against episodes per evaluation seed."""
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    mean = 100 * np.asarray(mean, float)
    ax.plot(episodes, mean, marker="o", color=PALETTE[0])
    if sd is not None:
        sd = 100 * np.asarray(sd, float)
        ax.fill_between(episodes, np.clip(mean - sd, 0, 100), np.clip(mean + sd, 0, 100), color=PALETTE[0],
                        alpha=0.2, linewidth=0)
    ax.set(xlabel="Number of episodes per seed", ylabel="Classification accuracy (%)", ylim=(-2, 102))
    return ax


def plot_trajectories(trajectories: dict, fig=None):
    """One episode per agent type: red and blue paths, the goal (green) and the fake landmark (black)."""
    kinds = [k for k in AGENT_LABELS if k in trajectories]
    fig = fig or plt.figure(figsize=(3.2 * len(kinds), 3.4))
    axes = np.atleast_1d(fig.subplots(1, len(kinds), sharex=True, sharey=True))
    for ax, k in zip(axes, kinds):
        tr = trajectories[k]
        pos = np.asarray(tr["pos"])  # (T+1, 2 agents, 2)
        for i, (c, name) in enumerate(((PALETTE[3], "red"), (PALETTE[0], "blue"))):
            ax.plot(pos[:, i, 0], pos[:, i, 1], color=c, lw=1.5, label=name)
            ax.scatter(*pos[0, i], color=c, marker="o", s=25)
            ax.scatter(*pos[-1, i], color=c, marker="x", s=35)
        ax.scatter(*tr["goal"], s=250, facecolor="none", edgecolor=PALETTE[2], lw=2, label="goal")
        ax.scatter(*tr["fake"], s=250, facecolor="none", edgecolor="black", lw=2, label="fake")
        ax.set(title=AGENT_LABELS[k], xlim=(-1, 1), ylim=(-1, 1), aspect="equal")
    axes[0].legend(fontsize=7, loc="lower left")
    return fig


def plot_per_seed(values: dict, ylabel: str, kinds=("deceptive", "soo", "capability", "random", "honest"), ax=None):
    """One dot per training seed and agent (``values[kind]``: per-seed list), with mean ± population SD."""
    ax = ax or plt.subplots(figsize=(6.5, 3.2))[1]
    df = pd.DataFrame([{"agent": AGENT_LABELS[k], "value": v} for k in kinds for v in values[k]])
    order = [AGENT_LABELS[k] for k in kinds]
    pal = {AGENT_LABELS[k]: AGENT_COLOURS[k] for k in kinds}
    sns.stripplot(data=df, x="agent", y="value", hue="agent", order=order, palette=pal, size=5, alpha=0.7,
                  jitter=0.15, legend=False, ax=ax)
    sns.pointplot(data=df, x="agent", y="value", order=order, color="black", errorbar=_population_sd,
                  linestyle="none", markers="_", markersize=20, capsize=0.2, ax=ax)
    ax.set(xlabel="", ylabel=ylabel)
    ax.tick_params(axis="x", labelrotation=15)
    return ax
