"""The figures of the RL chapter, one function each: data in (what ``soo.rl.experiment`` and ``soo.rl.book``
compute), a Figure or Axes out, in the book's one style (``soo.style``); no training, no evaluation and no file
I/O (a notebook saves a figure with ``soo.style.save_figure``). The agent kinds and their labels come from
``soo.rl.config.AGENTS``; their colours are here.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..style import PALETTE, ax_or_new, fixed_jitter
from .config import AGENTS

AGENT_COLOURS = {"deceptive": PALETTE[3], "honest": PALETTE[2], "soo": PALETTE[0], "capability": PALETTE[4],
                 "random": PALETTE[7], "plain": PALETTE[1], "soo_held": PALETTE[9], "plain_held": PALETTE[5]}


def _short(kind: str) -> str:
    return AGENTS[kind].split()[0]  # "Deceptive", "Honest", "SOO", ...


def pair_label(pair: str) -> str:
    """``"soo_vs_honest"`` (a key of soo.rl.metrics.behavioural_difference) -> ``"SOO vs Honest"``."""
    a, b = pair.split("_vs_")
    return f"{_short(a)} vs {_short(b)}"


def _population_sd(v: pd.Series) -> tuple[float, float]:
    """mean ± population SD (ddof=0); seaborn's ``errorbar="sd"`` uses the sample SD (ddof=1)."""
    return v.mean() - v.std(ddof=0), v.mean() + v.std(ddof=0)


def plot_training_curves(history: pd.DataFrame, y: str = "return_blue", noise_end: int | None = None, fig=None):
    """Mean episode return (column ``y``) against training episode, one panel per ``agent`` of ``history``
    (band: mean ± population SD over seeds). ``noise_end``: the episode where the exploration noise reaches zero,
    drawn as a dashed line when training went past it."""
    kinds = [k for k in AGENTS if k in set(history["agent"])]
    fig = fig or plt.figure(figsize=(5.5 * len(kinds), 3.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(kinds)))
    for ax, k in zip(axes, kinds):
        sns.lineplot(data=history[history["agent"] == k], x="episode", y=y, color=AGENT_COLOURS[k],
                     errorbar=_population_sd, ax=ax)
        if noise_end is not None and noise_end < history["episode"].max():
            ax.axvline(noise_end, color="0.4", linestyle="--", linewidth=1, label="exploration noise ends")
            if ax is axes[0]:
                ax.legend(loc="lower right", frameon=False)
        label = ("Blue's episode return\n(its own training reward)" if y == "return_blue"
                 else y.replace("_", " ").capitalize())
        ax.set(title=AGENTS[k], xlabel="Training episode", ylabel=label)
    return fig


def plot_contours(surfaces: dict, xs, ys, sd: dict | None = None, fig=None):
    """The three count-surface panels (Deceptive baseline, SOO fine-tuning, Honest baseline), mean over seeds.

    ``surfaces[kind]``: ``(len(ys), len(xs))``; ``sd[kind]`` (optional) is overlaid as contour lines.
    """
    kinds = ("deceptive", "soo", "honest")
    fig = fig or plt.figure(figsize=(13, 3.8), layout="constrained")
    axes = fig.subplots(1, 3, sharey=True)
    vmax = max(float(np.max(surfaces[k])) for k in kinds) or 1.0
    levels = np.linspace(0, vmax, 15)
    for ax, k in zip(axes, kinds):
        cs = ax.contourf(xs, ys, surfaces[k], levels=levels, cmap="viridis")
        if sd is not None and np.max(sd[k]) > 0:
            ax.contour(xs, ys, sd[k], levels=4, colors="white", linewidths=0.6, alpha=0.7)
        ax.grid(False)
        ax.set(title=AGENTS[k], xlabel="Projection on non-goal threshold")
    axes[0].set_ylabel("Cosine angle goal-non-goal threshold")
    fig.colorbar(cs, ax=axes, label="Deceptive actions (mean over seeds)", format="%.0f")
    return fig


def plot_behavioural_difference(difference: dict, ax=None):
    """Horizontal bars of the surface MSE per pair of agents, mean ± population SD over seeds."""
    from matplotlib.ticker import EngFormatter

    ax = ax_or_new(ax, (7, 2.8))
    keys = list(difference)
    mean = np.array([difference[k]["mean"] for k in keys])
    sd = np.array([difference[k]["sd"] for k in keys])
    # an MSE is never below 0: the lower whisker stops there (mean - SD would cross it)
    ax.barh([pair_label(k) for k in keys], mean, xerr=[np.minimum(sd, mean), sd], color=PALETTE[:len(keys)],
            capsize=4)
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 200k, 1.2M: no offset text under the axis label
    ax.set(xlabel="Behavioural difference (MSE between count surfaces, counts²)")
    return ax


def plot_classification(episodes, mean, per_seed=None, ax=None):
    """Classification accuracy (%) of the mean-SOO classifier against episodes per evaluation seed: the mean over
    training seeds (line) and each training seed's accuracy (points: the values are often 0 or 100 %, so a mean ± SD
    band would hide them); dotted: 50 %, a coin."""
    ax = ax_or_new(ax, (6, 3.5))
    mean = 100 * np.asarray(mean, float)
    ax.plot(episodes, mean, marker="o", color=PALETTE[0], label="mean over training seeds", zorder=3)
    if per_seed is not None:
        for j, acc in enumerate(np.asarray(per_seed, float)):
            ax.scatter(np.asarray(episodes) * (1 + 0.02 * (j - len(per_seed) / 2)), 100 * acc, s=10, color="0.45",
                       alpha=0.6, label="training seeds" if j == 0 else None, zorder=2)
    ax.axhline(50, color="0.5", ls=":", lw=1)
    ax.set(xlabel="Number of episodes per seed", ylabel="Classification accuracy (%)", ylim=(-4, 104))
    ax.legend(fontsize="small", loc="lower right", frameon=False)
    return ax


def plot_trajectories(trajectories: dict, fig=None):
    """One episode per agent kind: red and blue paths, the goal (green) and the fake landmark (black)."""
    kinds = [k for k in AGENTS if k in trajectories]
    fig = fig or plt.figure(figsize=(3.2 * len(kinds), 3.4), layout="constrained")
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
        ax.set(title=AGENTS[k], xlim=(-1, 1), ylim=(-1, 1), aspect="equal")
    axes[0].legend(fontsize="x-small", loc="lower left")
    return fig


def _spread_labels(values, labels, min_gap: float = 0.06) -> list[tuple[float, object]]:
    """Label heights near ``values`` that keep at least ``min_gap`` of the values' range apart (so close values'
    labels do not overlap), in the values' order."""
    v = np.asarray(values, float)
    gap = min_gap * max(float(np.ptp(v)), 1e-9)
    order = np.argsort(v)
    ys = v[order].copy()
    for i in range(1, len(ys)):
        ys[i] = max(ys[i], ys[i - 1] + gap)
    ys -= (ys.mean() - v[order].mean())  # keep the labels centred on their points
    out = [None] * len(v)
    for rank, i in enumerate(order):
        out[i] = (float(ys[rank]), labels[i])
    return out


def plot_baselines_per_seed(trap_rate: dict, moves: dict, seeds, fig=None):
    """Each seed's deceptive and honest baseline side by side: the trap rate (%, left) and the deceptive movements
    with red in sight per episode (right); one line per seed joins its two baselines."""
    fig = fig or plt.figure(figsize=(9, 3.4), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, values, label in ((axes[0], trap_rate, "Red trapped (% of episodes)"),
                              (axes[1], moves, "Moves towards the fake landmark\nwith red in sight, per episode")):
        for i, seed in enumerate(seeds):
            ax.plot([0, 1], [values["deceptive"][i], values["honest"][i]], color="0.6", lw=1, zorder=1)
        for y, seed in _spread_labels(values["honest"], seeds):
            ax.annotate(str(seed), (1.04, y), fontsize="xx-small", va="center", color="0.4")
        for x, k in enumerate(("deceptive", "honest")):
            ax.scatter([x] * len(seeds), values[k], color=AGENT_COLOURS[k], zorder=2, s=25)
        ax.set(xticks=[0, 1], xticklabels=[AGENTS["deceptive"], AGENTS["honest"]], xlim=(-0.3, 1.3),
               ylabel=label)
    return fig


def plot_per_seed(values: dict, ylabel: str, kinds=("deceptive", "soo", "capability", "random", "honest"), ax=None):
    """One dot per training seed and agent (``values[kind]``: per-seed list), with mean ± population SD."""
    ax = ax_or_new(ax, (max(6.5, 1.1 * len(kinds) + 1), 3.4))
    df = pd.DataFrame([{"agent": AGENTS[k], "value": v} for k in kinds for v in values[k]])
    order = [AGENTS[k] for k in kinds]
    pal = {AGENTS[k]: AGENT_COLOURS[k] for k in kinds}
    with fixed_jitter():
        sns.stripplot(data=df, x="agent", y="value", hue="agent", order=order, palette=pal, size=5, alpha=0.7,
                      jitter=0.15, legend=False, ax=ax)
    sns.pointplot(data=df, x="agent", y="value", order=order, color="black", errorbar=_population_sd,
                  linestyle="none", markers="_", markersize=20, capsize=0.2, ax=ax)
    ax.set(xlabel="", ylabel=ylabel)
    ax.tick_params(axis="x", labelrotation=25)
    for t in ax.get_xticklabels():
        t.set_horizontalalignment("right")
    return ax


def plot_reference_blues(df: pd.DataFrame, labels: dict, fig=None):
    """Trap rate (%) per training seed (dots) and mean ± population SD, one panel per red (the deceptive and the
    honest baseline's), one column per blue: the two learned blues, then the scripted reference blues.
    ``df``: ``soo.rl.evaluation.reference_frame``; ``labels``: the reference blues' labels."""
    names = {"learned_deceptive": "Learned deceptive", "learned_honest": "Learned honest", **labels}
    order = [names[b] for b in names if b in set(df["blue"])]
    reds = [r for r in AGENTS if r in set(df["red"])]
    fig = fig or plt.figure(figsize=(11, 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(reds), sharey=True))
    d = df.assign(blue_label=df["blue"].map(names), trap=100 * df["trap_rate"])
    for ax, red in zip(axes, reds):
        sub = d[d["red"] == red]
        with fixed_jitter():
            sns.stripplot(data=sub, x="blue_label", y="trap", order=order, color=PALETTE[0], size=4, alpha=0.7,
                          jitter=0.15, ax=ax)
        sns.pointplot(data=sub, x="blue_label", y="trap", order=order, color="black", errorbar=_population_sd,
                      linestyle="none", markers="_", markersize=18, capsize=0.2, ax=ax)
        ax.set(title=f"Red of the {AGENTS[red].lower()}", xlabel="", ylabel="Red trapped (% of episodes)")
        ax.tick_params(axis="x", labelrotation=30)
        for t in ax.get_xticklabels():
            t.set_horizontalalignment("right")
    return fig


def plot_pair_lottery(lottery: pd.DataFrame, labels: dict, ax=None):
    """Which trained pair (column: training seed), analysed alone, supports which claim (row): a grid of yes
    (filled) / no, with the count per claim in its label."""
    ax = ax_or_new(ax, (0.8 * lottery.shape[0] + 4.5, 0.5 * lottery.shape[1] + 1.2))
    data = lottery.T.astype(float)
    sns.heatmap(data, cmap=sns.light_palette(PALETTE[0], as_cmap=True), vmin=0, vmax=1, cbar=False, linewidths=1,
                linecolor="white", annot=lottery.T.map(lambda v: "yes" if v else "no"), fmt="", ax=ax)
    ax.set_yticklabels([f"{labels[c]} ({int(lottery[c].sum())} of {len(lottery)})" for c in lottery.columns],
                       rotation=0)
    ax.set(xlabel="Training seed (one trained set of agents, analysed alone)", ylabel="")
    return ax


def plot_screen(screen_rows: list, ax=None):
    """The settings screen: per setting, each seed's deceptive − honest trap-rate difference (points) with the
    mean; a setting that met the declared criterion is marked."""
    ax = ax_or_new(ax, (6.5, 3.2))
    from .config import SETTING_LABELS

    rows = [{"setting": SETTING_LABELS[r["setting"]] + (" (passes)" if r["passes"] else ""),
             "diff": 100 * (d - h)} for r in screen_rows
            for d, h in zip(r["trap_rate"]["deceptive"], r["trap_rate"]["honest"])]
    df = pd.DataFrame(rows)
    with fixed_jitter():
        sns.stripplot(data=df, x="setting", y="diff", color=PALETTE[3], size=5, alpha=0.7, jitter=0.1, ax=ax)
    sns.pointplot(data=df, x="setting", y="diff", color="black", errorbar=None, linestyle="none", markers="_",
                  markersize=20, ax=ax)
    ax.axhline(0, color="0.5", lw=1, ls="--")
    ax.set(xlabel="", ylabel="Deceptive − honest trap rate\n(points, per seed)")
    ax.tick_params(axis="x", labelrotation=15)
    return ax


def plot_screen_rounds(round1: list, round2: list, labels: dict, fig=None):
    """Both rounds of the settings screen. Left: per setting, each seed's deceptive − honest trap-rate difference
    after round 1's short runs and after round 2's runs at the protocol's length (or twice it); right: round 2's
    swap, the learned deceptive blue's trap rate minus the honest baseline's blue's, both against the deceptive
    baseline's own red. Points: seeds; bars: means; ``labels``: the settings' names."""
    fig = fig or plt.figure(figsize=(11, 3.8))
    ax1, ax2 = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [1.4, 1]})
    rows = [{"setting": labels[r["setting"]], "run length": f"{r['episodes'] // 1000}k episodes",
             "diff": 100 * (d - h)} for r in [*round1, *round2]
            for d, h in zip(r["trap_rate"]["deceptive"], r["trap_rate"]["honest"])]
    swap = [{"setting": labels[r["setting"]], "run length": f"{r['episodes'] // 1000}k episodes", "diff": 100 * (d - h)}
            for r in round2 for d, h in zip(r["swap_trap_rate"]["learned_deceptive"], r["swap_trap_rate"]["learned_honest"])]
    order = list(dict.fromkeys(labels[s] for s in labels))
    hue_order = sorted({r["run length"] for r in rows + swap}, key=lambda t: int(t.split("k")[0]))
    for ax, data, title in ((ax1, rows, "Deceptive − honest baseline (own reds)"),
                            (ax2, swap, "Swap: deceptive − honest blue\nagainst the deceptive red")):
        df = pd.DataFrame(data)
        if df.empty:
            ax.text(0.5, 0.5, "not run yet", ha="center", va="center", transform=ax.transAxes)
        else:
            present = [o for o in order if o in set(df.setting)]
            with fixed_jitter():
                sns.stripplot(data=df, y="setting", x="diff", hue="run length", order=present, hue_order=hue_order,
                              dodge=True, size=4, alpha=0.75, jitter=0.12, ax=ax, palette=PALETTE[:len(hue_order)])
            sns.pointplot(data=df, y="setting", x="diff", hue="run length", order=present, hue_order=hue_order,
                          dodge=0.4, errorbar=None, linestyle="none", markers="|", markersize=16, ax=ax,
                          palette=["black"] * len(hue_order), legend=False)
        ax.axvline(0, color="0.5", lw=1, ls="--")
        ax.set(title=title, ylabel="", xlabel="Trap-rate difference (points)")
    handles, lab = ax1.get_legend_handles_labels()
    for ax in (ax1, ax2):
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    fig.legend(handles[:len(hue_order)], lab[:len(hue_order)], loc="lower center", ncol=len(hue_order), frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1), w_pad=2)
    return fig
