"""soo.stats: Wilson intervals against scipy, the paired two-level bootstrap on data with a known answer
(orientation, coverage, pairing, the seed level), its reproducibility and input checks, and the paired t-test
verdict against the RL wing's."""
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from soo import stats


def tidy(values: dict) -> pd.DataFrame:
    """``{condition: (n_seeds, n_items) array}`` -> the tidy table (seeds 0.., items "s0"..)."""
    rows = [(c, s, f"s{i}", float(v)) for c, x in values.items()
            for s, row in enumerate(np.atleast_2d(x)) for i, v in enumerate(row)]
    return pd.DataFrame(rows, columns=["condition", "seed", "item", "value"])


def binary(gen, rate, n_seeds, n_items, seed_sd=0.0, item_logit=None):
    """0/1 outcomes with a per-seed offset (logit scale) and optional per-item logits."""
    logit = np.log(rate / (1 - rate)) + gen.normal(0, seed_sd, (n_seeds, 1))
    if item_logit is not None:
        logit = logit + item_logit
    return (gen.random((n_seeds, n_items)) < 1 / (1 + np.exp(-logit))).astype(float)


# --- Wilson -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("k, n", [(0, 10), (10, 10), (3, 10), (0, 1), (1, 1), (57, 200), (499, 500)])
@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_wilson_matches_scipy(k, n, level):
    ref = sps.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    assert stats.wilson_interval(k, n, level) == pytest.approx((ref.low, ref.high), abs=1e-12)


def test_wilson_is_vectorised_and_empty_is_nan():
    lo, hi = stats.wilson_interval(np.array([0, 3, 0]), np.array([10, 10, 0]))
    for j, (k, n) in enumerate([(0, 10), (3, 10)]):
        ref = sps.binomtest(k, n).proportion_ci(method="wilson")
        assert (lo[j], hi[j]) == pytest.approx((ref.low, ref.high), abs=1e-12)
    assert np.isnan(lo[2]) and np.isnan(hi[2])
    assert all(np.isnan(stats.wilson_interval(0, 0)))
    with pytest.raises(ValueError, match="k="):
        stats.wilson_interval(4, 3)
    with pytest.raises(ValueError, match="level"):
        stats.wilson_interval(1, 3, level=1.0)


# --- the bootstrap ------------------------------------------------------------------------------------------

def test_one_seed_is_the_one_level_bootstrap_over_items():
    gen = np.random.default_rng(3)
    x = (gen.random(300) < 0.35).astype(float)
    df = tidy({"start": x[None], "other": (gen.random((1, 300)) < 0.5).astype(float)})
    ours = stats.rate_intervals(df, n_boot=5000, rng=1).loc["start"]
    ref = sps.bootstrap((x,), np.mean, method="percentile", n_resamples=5000, random_state=2).confidence_interval
    assert ours["rate"] == pytest.approx(x.mean())
    assert (ours["lo"], ours["hi"]) == pytest.approx((ref.low, ref.high), abs=0.01)
    assert ours["hi"] - ours["lo"] > 0.05  # the items really are resampled


def test_a_single_seed_is_reused_beside_several():
    gen = np.random.default_rng(4)
    df = tidy({"start": binary(gen, 0.2, 1, 200), "soo": binary(gen, 0.6, 5, 200)})
    table = stats.rate_intervals(df, n_boot=500)
    assert list(table.index) == ["start", "soo"]
    assert table["n_seeds"].tolist() == [1, 5] and table["n_items"].tolist() == [200, 200]
    assert (table["lo"] <= table["rate"]).all() and (table["rate"] <= table["hi"]).all()
    assert stats.difference(df, "soo", "start", n_boot=500)["verdict"] == "higher"


def test_a_known_difference_is_found_with_its_sign():
    gen = np.random.default_rng(5)
    df = tidy({"a": binary(gen, 0.2, 5, 250, seed_sd=0.2), "b": binary(gen, 0.5, 5, 250, seed_sd=0.2)})
    ab, ba = stats.difference(df, "a", "b"), stats.difference(df, "b", "a")
    assert ab["verdict"] == "lower" and ba["verdict"] == "higher"
    assert ab["lo"] < -0.3 < ab["hi"] or abs(ab["diff"] + 0.3) < 0.05
    assert ab["diff"] == pytest.approx(-ba["diff"]) and ab["lo"] == pytest.approx(-ba["hi"])


def test_equal_rates_are_not_clearly_different_in_most_data_sets():
    gen = np.random.default_rng(6)
    words = []
    for _ in range(40):
        items = gen.normal(0, 1.0, 250)  # shared item difficulty, and seed offsets of each training run
        df = tidy({c: binary(gen, 0.4, 5, 250, seed_sd=0.3, item_logit=items) for c in ("a", "b")})
        words.append(stats.difference(df, "a", "b", n_boot=1000, rng=int(gen.integers(1 << 30)))["verdict"])
    assert words.count("not clearly different") >= 36, words


def test_pairing_narrows_the_interval_of_a_difference():
    gen = np.random.default_rng(7)
    difficulty = gen.normal(0, 1, 300)  # strong item effects, shared by both conditions
    a = difficulty + gen.normal(0, 0.05, (1, 300))
    df = tidy({"a": a, "b": a + 0.05 + gen.normal(0, 0.05, (1, 300))})
    paired = stats.difference(df, "a", "b", n_boot=2000)
    boot_a = stats.two_level_bootstrap(df[df.condition == "a"], 2000, rng=1)["a"]
    boot_b = stats.two_level_bootstrap(df[df.condition == "b"], 2000, rng=2)["b"]
    unpaired = np.quantile(boot_a - boot_b, [0.025, 0.975])
    assert paired["verdict"] == "lower"
    assert paired["hi"] - paired["lo"] < 0.2 * (unpaired[1] - unpaired[0])


def test_seeds_are_paired_across_conditions_with_the_same_seed_list():
    gen = np.random.default_rng(11)
    offsets = gen.normal(0, 1, (5, 1))  # seed s of both conditions shares its data order: a shared offset
    a = offsets + gen.normal(0, 0.05, (5, 200))
    df = tidy({"a": a, "b": a + 0.1 + gen.normal(0, 0.05, (5, 200)), "c": gen.normal(0, 1, (4, 1)) + a[:4]})
    paired = stats.difference(df, "a", "b")
    unpaired = stats.difference(df, "a", "c")  # another seed list: resampled on its own
    assert paired["verdict"] == "lower"
    assert paired["hi"] - paired["lo"] < 0.1 * (unpaired["hi"] - unpaired["lo"])


def test_the_seed_level_widens_the_interval_when_seeds_differ():
    gen = np.random.default_rng(8)
    df = tidy({"a": binary(gen, 0.4, 5, 300, seed_sd=0.8)})
    pooled = df.assign(item=df["seed"].astype(str) + "/" + df["item"], seed=0)  # 1500 items, one seed
    two, one = stats.rate_intervals(df).loc["a"], stats.rate_intervals(pooled).loc["a"]
    assert two["rate"] == pytest.approx(one["rate"])
    assert two["hi"] - two["lo"] > 2 * (one["hi"] - one["lo"])


def test_reproducible_and_independent_of_row_order():
    gen = np.random.default_rng(9)
    df = tidy({c: binary(gen, 0.3, 3, 100) for c in ("a", "b")} | {"start": binary(gen, 0.3, 1, 100)})
    first = stats.two_level_bootstrap(df, 300, rng=11)
    assert first.shape == (300, 3)
    pd.testing.assert_frame_equal(first, stats.two_level_bootstrap(df, 300, rng=11))
    pd.testing.assert_frame_equal(first, stats.two_level_bootstrap(df, 300, rng=np.random.default_rng(11)))
    shuffled = df.sample(frac=1, random_state=0)
    again = stats.two_level_bootstrap(shuffled, 300, rng=11)  # columns in order of first appearance
    assert list(again.columns) == list(pd.unique(shuffled["condition"]))
    pd.testing.assert_frame_equal(first, again[first.columns])
    assert not first.equals(stats.two_level_bootstrap(df, 300, rng=12))


def test_fast_enough_for_seven_conditions():
    gen = np.random.default_rng(10)
    df = tidy({f"c{c}": binary(gen, 0.3, 5, 500) for c in range(7)})
    start = time.perf_counter()
    stats.rate_intervals(df, n_boot=2000)
    assert time.perf_counter() - start < 2.0  # about 0.1 s on a free core


def test_bad_input_is_refused_by_name():
    df = tidy({"a": np.ones((2, 5)), "b": np.zeros((2, 5))})
    with pytest.raises(ValueError, match=r"column.*'value'"):
        stats.rate_intervals(df.drop(columns="value"))
    for level in (0, 1, 1.5):
        with pytest.raises(ValueError, match="level"):
            stats.rate_intervals(df, level=level)
    with pytest.raises(ValueError, match="n_boot"):
        stats.two_level_bootstrap(df, n_boot=0)
    with pytest.raises(ValueError, match=r"b='c'.*\['a', 'b'\]"):
        stats.difference(df, "a", "c")
    with pytest.raises(ValueError, match="every item"):
        stats.rate_intervals(df.iloc[1:])
    with pytest.raises(ValueError, match="several rows"):
        stats.rate_intervals(pd.concat([df, df.iloc[:1]]))
    with pytest.raises(ValueError, match="value"):
        stats.rate_intervals(df.assign(value=np.nan))


@pytest.mark.parametrize("lo, hi, word", [(-0.2, -0.01, "lower"), (0.01, 0.2, "higher"),
                                          (-0.1, 0.1, "not clearly different"), (0.0, 0.1, "not clearly different")])
def test_verdict_word(lo, hi, word):
    assert stats.verdict_word(lo, hi) == word


# --- the paired t-test verdict ------------------------------------------------------------------------------

def test_paired_t_verdict():
    worse = [0.5, 0.6, 0.55, 0.52, 0.58]
    assert stats.paired_t_verdict([0.1, 0.2, 0.15, 0.12, 0.1], worse)["verdict"] == "yes"
    assert stats.paired_t_verdict([0.9, 0.8, 0.85, 0.95, 0.9], worse)["verdict"] == "no"
    mixed = stats.paired_t_verdict([0.4, 0.7, 0.5, 0.6, 0.55], worse)
    assert mixed["verdict"] == "not resolved" and mixed["n_better"] == 3 and mixed["n"] == 5
    # two seeds both in favour are not enough when they disagree in size (t with 1 degree of freedom)
    assert stats.paired_t_verdict([0.1, 0.4], [0.2, 0.6])["verdict"] == "not resolved"
    assert stats.paired_t_verdict([0.1], [0.9])["verdict"] == "not resolved"


def test_paired_t_verdict_is_scipys_paired_t_test():
    """The verdict is scipy's two-sided paired t-test at 5 %, with the sign of the mean difference."""
    from scipy.stats import ttest_rel

    gen = np.random.default_rng(12)
    seen = set()
    for n in (2, 3, 5, 8, 8, 8, 8, 8, 8):
        worse = gen.normal(0, 1, n)
        better = worse - gen.normal(gen.choice([-1.5, 0, 1.5]), 0.5, n)
        ours = stats.paired_t_verdict(better, worse)
        p = ttest_rel(worse, better).pvalue
        want = "not resolved" if p >= 0.05 else ("yes" if np.mean(worse - better) > 0 else "no")
        assert ours["verdict"] == want and ours["verdict"] in stats.VERDICTS
        seen.add(ours["verdict"])
    assert seen == set(stats.VERDICTS)

