"""Every figure of the book, one function each (LLM figures first, then the RL figures), and the book's tables.

Each figure function takes tidy data (a pandas DataFrame) and an optional ``ax``, draws in the one seaborn style
of the book (:func:`style`, a colour-blind-safe palette), and returns the Axes (or the Figure for multi-panel
figures). No training, no evaluation and no file I/O here: the notebooks save the figures.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .llm.train import BASE_LABEL, CONDITIONS  # noqa: E402

PALETTE = sns.color_palette("colorblind")
RATE_LABEL = "Deceptive response rate (%)"
CONDITION_ORDER = ["base", *CONDITIONS]
"""The order (and colour index) of the LLM conditions in every figure: the start model, then soo.llm.train.CONDITIONS."""
CONDITION_NAMES = {"base": BASE_LABEL, **CONDITIONS}


def style():
    """The book's one figure style (seaborn whitegrid, colour-blind palette); every notebook calls it first."""
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)


def book_table(df, precision: int = 1):
    """A table as the book shows it: no index column, every label whole (a Styler; pandas' own HTML would add
    the index and cut cells at 50 characters)."""
    return df.style.hide(axis="index").format(precision=precision, na_rep="")


def _ax(ax, figsize=(6.4, 4)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


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
    """One bar per fine-tuning condition: mean over seeds ± population SD, seeds as dots.

    ``df``: one row per (condition, seed) with a ``condition`` column and the ``value`` column.
    """
    ax = _ax(ax, (7, 4))
    conds = [c for c in CONDITION_ORDER if c in set(df["condition"])]
    for i, c in enumerate(conds):
        v = df.loc[df["condition"] == c, value].to_numpy(dtype=float)
        ax.bar(i, v.mean(), color=PALETTE[i % len(PALETTE)], alpha=0.85)
        if len(v) > 1:
            ax.errorbar(i, v.mean(), yerr=v.std(ddof=0), fmt="none", ecolor="black", capsize=4)
        ax.scatter(np.full(len(v), i) + np.linspace(-0.12, 0.12, len(v)), v, color="black", s=12, zorder=3)
    ax.set_xticks(range(len(conds)), [CONDITION_NAMES.get(c, c) for c in conds], rotation=15)
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
    a1.plot(d["lr"], d["mean"], marker="o", color=PALETTE[1], label="after SOO")
    _errbars(a1, d["lr"], d["mean"], d["ci_low"], d["ci_high"], color=PALETTE[1])
    if base_rate is not None:
        a1.axhline(base_rate, color="grey", ls="--", label="before SOO")
    a1.set_ylabel(RATE_LABEL)
    a1.set_ylim(0, 105)
    a1.legend(fontsize="small")
    a2.plot(d["lr"], d["kl"], marker="o", color=PALETTE[2], label="KL to the model before SOO")
    a2.set_ylabel("capability KL (nats/token)")
    a2.set_ylim(0, max(0.1, float(d["kl"].max())) * 1.1)
    a3 = a2.twinx()
    a3.plot(d["lr"], d["generate unclear"], marker="s", ls=":", color=PALETTE[3], label="greedy answers naming no room")
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
    where there is one seed: no bar is drawn there).
    """
    fig, axes = plt.subplots(3, 3, figsize=(10, 9), sharey=True, layout="constrained")
    conds = [c for c in CONDITION_ORDER if c in set(df["condition"])]
    for ax, v in zip(axes.flat, variants):
        d = df[df["variant"] == v].set_index("condition").reindex(conds)
        ax.bar(range(len(conds)), d["rate"], color=[PALETTE[CONDITION_ORDER.index(c)] for c in conds])
        has_sd = d["sd"].notna().to_numpy()  # no SD bar where there is one seed (the start model, or seeds=[s])
        if has_sd.any():
            ax.errorbar(np.arange(len(conds))[has_sd], d["rate"][has_sd], yerr=d["sd"][has_sd], fmt="none",
                        ecolor="black", capsize=3)
        ax.set_title((titles or {}).get(v, v), fontsize="medium")
        ax.set_xticks(range(len(conds)), [CONDITION_NAMES.get(c, c) for c in conds], rotation=20, fontsize="small")
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


# ---- RL figures
# One function per figure of the RL chapter, in the style of the LLM figures above (``style()``, ``PALETTE``): data
# in (what soo.rl.experiment computes), Axes or Figure out; no training, no file I/O. The agent kinds and their
# labels come from soo.rl.config.AGENTS; their colours are here.
from .rl.config import AGENTS as RL_AGENTS  # noqa: E402

RL_AGENT_COLOURS = {"deceptive": PALETTE[3], "honest": PALETTE[2], "soo": PALETTE[0], "capability": PALETTE[4],
                    "random": PALETTE[7], "plain": PALETTE[1], "soo_held": PALETTE[9], "plain_held": PALETTE[5]}


def _rl_short(kind: str) -> str:
    return RL_AGENTS[kind].split()[0]  # "Deceptive", "Honest", "SOO", ...


def rl_pair_label(pair: str) -> str:
    """``"soo_vs_honest"`` (a key of soo.rl.metrics.behavioural_difference) -> ``"SOO vs Honest"``."""
    a, b = pair.split("_vs_")
    return f"{_rl_short(a)} vs {_rl_short(b)}"


def _population_sd(v: pd.Series) -> tuple[float, float]:
    """mean ± population SD (ddof=0); seaborn's ``errorbar="sd"`` uses the sample SD (ddof=1)."""
    return v.mean() - v.std(ddof=0), v.mean() + v.std(ddof=0)


def plot_rl_training_curves(history: pd.DataFrame, y: str = "return_blue", noise_end: int | None = None, fig=None):
    """Mean episode return (column ``y``) against training episode, one panel per ``agent`` of ``history``
    (band: mean ± population SD over seeds). ``noise_end``: the episode where the exploration noise reaches zero,
    drawn as a dashed line when training went past it."""
    kinds = [k for k in RL_AGENTS if k in set(history["agent"])]
    fig = fig or plt.figure(figsize=(5.5 * len(kinds), 3.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(kinds)))
    for ax, k in zip(axes, kinds):
        sns.lineplot(data=history[history["agent"] == k], x="episode", y=y, color=RL_AGENT_COLOURS[k],
                     errorbar=_population_sd, ax=ax)
        if noise_end is not None and noise_end < history["episode"].max():
            ax.axvline(noise_end, color="0.4", linestyle="--", linewidth=1, label="exploration noise ends")
            if ax is axes[0]:
                ax.legend(loc="lower right", frameon=False)
        label = ("Blue's episode return (its own training reward)" if y == "return_blue"
                 else y.replace("_", " ").capitalize())
        ax.set(title=RL_AGENTS[k], xlabel="Training episode", ylabel=label)
    return fig


def plot_rl_contours(surfaces: dict, xs, ys, sd: dict | None = None, fig=None):
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
        ax.set(title=RL_AGENTS[k], xlabel="Projection on non-goal threshold")
    axes[0].set_ylabel("Cosine angle goal-non-goal threshold")
    fig.colorbar(cs, ax=axes, label="Deceptive actions (mean over seeds)", format="%.0f")
    return fig


def plot_rl_behavioural_difference(difference: dict, ax=None):
    """Horizontal bars of the surface MSE per pair of agents, mean ± population SD over seeds."""
    from matplotlib.ticker import EngFormatter

    ax = _ax(ax, (7, 2.8))
    keys = list(difference)
    ax.barh([rl_pair_label(k) for k in keys], [difference[k]["mean"] for k in keys],
            xerr=[difference[k]["sd"] for k in keys], color=PALETTE[:len(keys)], capsize=4)
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 200k, 1.2M: no offset text under the axis label
    ax.set(xlabel="Behavioural difference (MSE between count surfaces)")
    return ax


def plot_rl_classification(episodes, mean, sd=None, ax=None):
    """Classification accuracy (%) of the mean-SOO classifier against episodes per evaluation seed."""
    ax = _ax(ax, (6, 3.5))
    mean = 100 * np.asarray(mean, float)
    ax.plot(episodes, mean, marker="o", color=PALETTE[0])
    if sd is not None:
        sd = 100 * np.asarray(sd, float)
        ax.fill_between(episodes, np.clip(mean - sd, 0, 100), np.clip(mean + sd, 0, 100), color=PALETTE[0],
                        alpha=0.2, linewidth=0)
    ax.set(xlabel="Number of episodes per seed", ylabel="Classification accuracy (%)", ylim=(-2, 102))
    return ax


def plot_rl_trajectories(trajectories: dict, fig=None):
    """One episode per agent kind: red and blue paths, the goal (green) and the fake landmark (black)."""
    kinds = [k for k in RL_AGENTS if k in trajectories]
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
        ax.set(title=RL_AGENTS[k], xlim=(-1, 1), ylim=(-1, 1), aspect="equal")
    axes[0].legend(fontsize="x-small", loc="lower left")
    return fig


def plot_rl_baselines_per_seed(trap_rate: dict, moves: dict, seeds, fig=None):
    """Each seed's deceptive and honest baseline side by side: the trap rate (%, left) and the deceptive movements
    with red in sight per episode (right); one line per seed joins its two baselines."""
    fig = fig or plt.figure(figsize=(9, 3.4), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, values, label in ((axes[0], trap_rate, "Red trapped (% of episodes)"),
                              (axes[1], moves, "Moves towards the fake landmark\nwith red in sight, per episode")):
        for i, seed in enumerate(seeds):
            ax.plot([0, 1], [values["deceptive"][i], values["honest"][i]], color="0.6", lw=1, zorder=1)
            ax.annotate(str(seed), (1.04, values["honest"][i]), fontsize="xx-small", va="center", color="0.4")
        for x, k in enumerate(("deceptive", "honest")):
            ax.scatter([x] * len(seeds), values[k], color=RL_AGENT_COLOURS[k], zorder=2, s=25)
        ax.set(xticks=[0, 1], xticklabels=[RL_AGENTS["deceptive"], RL_AGENTS["honest"]], xlim=(-0.3, 1.3),
               ylabel=label)
    return fig


def plot_rl_per_seed(values: dict, ylabel: str, kinds=("deceptive", "soo", "capability", "random", "honest"), ax=None):
    """One dot per training seed and agent (``values[kind]``: per-seed list), with mean ± population SD."""
    ax = _ax(ax, (max(6.5, 1.1 * len(kinds) + 1), 3.4))
    df = pd.DataFrame([{"agent": RL_AGENTS[k], "value": v} for k in kinds for v in values[k]])
    order = [RL_AGENTS[k] for k in kinds]
    pal = {RL_AGENTS[k]: RL_AGENT_COLOURS[k] for k in kinds}
    sns.stripplot(data=df, x="agent", y="value", hue="agent", order=order, palette=pal, size=5, alpha=0.7,
                  jitter=0.15, legend=False, ax=ax)
    sns.pointplot(data=df, x="agent", y="value", order=order, color="black", errorbar=_population_sd,
                  linestyle="none", markers="_", markersize=20, capsize=0.2, ax=ax)
    ax.set(xlabel="", ylabel=ylabel)
    ax.tick_params(axis="x", labelrotation=25)
    for t in ax.get_xticklabels():
        t.set_horizontalalignment("right")
    return ax


def plot_rl_reference_blues(df: pd.DataFrame, labels: dict, fig=None):
    """Trap rate (%) per training seed (dots) and mean ± population SD, one panel per red (the deceptive and the
    honest baseline's), one column per blue: the two learned blues, then the scripted reference blues.
    ``df``: ``soo.rl.experiment.reference_frame``; ``labels``: the reference blues' labels."""
    names = {"learned_deceptive": "Learned deceptive", "learned_honest": "Learned honest", **labels}
    order = [names[b] for b in names if b in set(df["blue"])]
    reds = [r for r in RL_AGENTS if r in set(df["red"])]
    fig = fig or plt.figure(figsize=(11, 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(reds), sharey=True))
    d = df.assign(blue_label=df["blue"].map(names), trap=100 * df["trap_rate"])
    for ax, red in zip(axes, reds):
        sub = d[d["red"] == red]
        sns.stripplot(data=sub, x="blue_label", y="trap", order=order, color=PALETTE[0], size=4, alpha=0.7,
                      jitter=0.15, ax=ax)
        sns.pointplot(data=sub, x="blue_label", y="trap", order=order, color="black", errorbar=_population_sd,
                      linestyle="none", markers="_", markersize=18, capsize=0.2, ax=ax)
        ax.set(title=f"Red of the {RL_AGENTS[red].lower()}", xlabel="", ylabel="Red trapped (% of episodes)")
        ax.tick_params(axis="x", labelrotation=30)
        for t in ax.get_xticklabels():
            t.set_horizontalalignment("right")
    return fig


def plot_rl_pair_lottery(lottery: pd.DataFrame, labels: dict, ax=None):
    """Which trained pair (column: training seed), analysed alone, supports which claim (row): a grid of yes
    (filled) / no, with the count per claim in its label."""
    ax = _ax(ax, (0.8 * lottery.shape[0] + 4.5, 0.5 * lottery.shape[1] + 1.2))
    data = lottery.T.astype(float)
    sns.heatmap(data, cmap=sns.light_palette(PALETTE[0], as_cmap=True), vmin=0, vmax=1, cbar=False, linewidths=1,
                linecolor="white", annot=lottery.T.map(lambda v: "yes" if v else "no"), fmt="", ax=ax)
    ax.set_yticklabels([f"{labels[c]} ({int(lottery[c].sum())} of {len(lottery)})" for c in lottery.columns],
                       rotation=0)
    ax.set(xlabel="Training seed (one trained set of agents, analysed alone)", ylabel="")
    return ax


def plot_rl_screen(screen_rows: list, ax=None):
    """The settings screen: per setting, each seed's deceptive − honest trap-rate difference (points) with the
    mean; a setting that met the declared criterion is marked."""
    ax = _ax(ax, (6.5, 3.2))
    rows = [{"setting": r["setting"] + (" (passes)" if r["passes"] else ""),
             "diff": 100 * (d - h)} for r in screen_rows
            for d, h in zip(r["trap_rate"]["deceptive"], r["trap_rate"]["honest"])]
    df = pd.DataFrame(rows)
    sns.stripplot(data=df, x="setting", y="diff", color=PALETTE[3], size=5, alpha=0.7, jitter=0.1, ax=ax)
    sns.pointplot(data=df, x="setting", y="diff", color="black", errorbar=None, linestyle="none", markers="_",
                  markersize=20, ax=ax)
    ax.axhline(0, color="0.5", lw=1, ls="--")
    ax.set(xlabel="", ylabel="Deceptive − honest trap rate\n(points, per seed)")
    ax.tick_params(axis="x", labelrotation=15)
    return ax
