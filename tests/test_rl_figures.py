"""The RL figures (``soo.rl.figures``) draw on synthetic data shaped like ``soo.rl.experiment``'s results."""
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import soo.rl.figures as figures
import soo.style
from soo.rl.config import AGENTS

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _close():
    soo.style.style()
    yield
    plt.close("all")


def _titles(fig):
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def test_agent_labels_and_colours():
    assert set(figures.AGENT_COLOURS) == set(AGENTS) and figures.AGENTS is AGENTS
    assert [figures.pair_label(p) for p in ("soo_vs_honest", "soo_vs_deceptive", "honest_vs_deceptive")] == [
        "SOO vs Honest", "SOO vs Deceptive", "Honest vs Deceptive"]


def test_training_curves_one_panel_per_agent():
    history = pd.DataFrame([{"agent": k, "seed": s, "episode": e, "return_blue": RNG.normal()}
                            for k in ("honest", "deceptive") for s in (1, 2) for e in (100, 200, 300)])
    fig = figures.plot_training_curves(history)
    assert _titles(fig) == ["Deceptive baseline", "Honest baseline"]
    assert fig.axes[0].get_xlabel() == "Training episode" and fig.axes[0].get_ylabel() == "Blue's episode return\n(its own training reward)"
    dashed = lambda f: [ln for ln in f.axes[0].get_lines() if ln.get_linestyle() == "--"]  # noqa: E731
    assert dashed(fig) == []
    assert [ln.get_xdata()[0] for ln in dashed(figures.plot_training_curves(history, noise_end=200))] == [200]
    assert dashed(figures.plot_training_curves(history, noise_end=300)) == []  # training stopped there


def test_contours_trajectories_and_per_seed():
    xs, ys = np.linspace(0, 1, 5), np.linspace(-1, 1, 4)
    surf = {k: RNG.random((4, 5)) for k in ("deceptive", "soo", "honest")}
    fig = figures.plot_contours(surf, xs, ys, sd=surf)
    assert _titles(fig) == ["Deceptive baseline", "SOO fine-tuning", "Honest baseline"]
    assert len(fig.axes) == 4  # three panels and the colour bar
    tr = {"pos": RNG.uniform(-1, 1, (51, 2, 2)).tolist(), "goal": [0.1, 0.2], "fake": [-0.3, 0.4], "trapped": 0.0}
    fig = figures.plot_trajectories({k: tr for k in ("honest", "soo", "deceptive")})
    assert _titles(fig) == ["Deceptive baseline", "Honest baseline", "SOO fine-tuning"]  # in the order of AGENTS
    ax = figures.plot_per_seed({k: list(RNG.random(3)) for k in AGENTS}, "Red trapped (%)")
    assert [t.get_text() for t in ax.get_xticklabels()] == [AGENTS[k] for k in
                                                            ("deceptive", "soo", "capability", "random", "honest")]


def test_behavioural_difference_and_classification():
    diff = {p: {"mean": m, "sd": 1.0} for p, m in (("soo_vs_honest", 3.0), ("soo_vs_deceptive", 2.0),
                                                     ("honest_vs_deceptive", 1.0))}
    ax = figures.plot_behavioural_difference(diff)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["SOO vs Honest", "SOO vs Deceptive", "Honest vs Deceptive"]
    assert [bar.get_width() for bar in ax.patches] == [3.0, 2.0, 1.0]
    wide = {p: {"mean": 1.0, "sd": 3.0} for p in diff}  # SD above the mean: the whisker stops at 0 (an MSE is >= 0)
    ax = figures.plot_behavioural_difference(wide)
    from matplotlib.collections import LineCollection

    xs = [x for c in ax.collections if isinstance(c, LineCollection) for seg in c.get_segments() for x in seg[:, 0]]
    assert min(xs) == 0.0 and max(xs) == 4.0
    seeds = [[0.0, 1.0, 1.0], [1.0, 0.5, 1.0]]
    ax = figures.plot_classification([1, 10, 100], [0.5, 0.75, 1.0], seeds)
    assert list(ax.lines[0].get_ydata()) == [50, 75, 100] and ax.get_ylim() == (-4, 104)
    points = sorted(float(y) for c in ax.collections for y in c.get_offsets()[:, 1])
    assert points == sorted(100 * v for s in seeds for v in s)  # every training seed's accuracy drawn
    assert any(list(line.get_ydata()) == [50, 50] for line in ax.lines)  # the coin line


def test_save_figure_writes_what_savefig_writes(tmp_path):
    """The saver the notebooks use: the folder is made, nothing is left beside the figure, and the bytes are those
    of ``fig.savefig(path, dpi=150, bbox_inches="tight")`` on the same figure (each drawn and saved once: a second
    save of one figure may differ, its layout settled by the first draw)."""
    def draw():
        return figures.plot_classification([1, 10, 100], [0.5, 0.75, 1.0]).figure

    assert soo.style.save_figure(draw(), tmp_path / "figs", "rl_classification") is None
    path = tmp_path / "figs" / "rl_classification.png"
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    draw().savefig(tmp_path / "direct.png", dpi=150, bbox_inches="tight")
    assert path.read_bytes() == (tmp_path / "direct.png").read_bytes()
