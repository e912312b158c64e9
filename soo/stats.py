"""The project's statistics, for both wings: binomial intervals, a paired two-level bootstrap of rates, a paired
t-test verdict. Pure functions on arrays and tidy tables; numpy, scipy and pandas only.

Why two levels. A condition (a fine-tuning method, a baseline, the untrained start model) is trained with several
seeds, and every seed is scored on the same scenarios (items). Two sources of chance make a rate move: which
seeds were drawn (training noise) and which scenarios were drawn (a finite test set). Mean +- SD over seeds
treats the scenarios as fixed: it says how far another seed would move the rate on these very scenarios, not how
far another draw of scenarios would, so with a few hundred scenarios it over-claims. :func:`two_level_bootstrap` resamples both: first the
seeds of each condition with replacement, then the items with replacement, and takes the mean over the resampled
seeds and items. A condition with a single seed (the start model) reuses that seed in every replicate, and with
one seed everywhere the procedure is the ordinary one-level bootstrap over items.

Why paired. Every condition sees the same items, and seed ``s`` of two conditions with the same seed list saw the
same data order and scenarios. A replicate therefore draws ONE set of item indices for all conditions and seeds,
and one set of seed indices for all conditions that share a seed list, so a difference between two conditions is
bootstrapped from the same items: hard scenarios are hard for both and cancel out of the difference.

* :func:`wilson_interval`: Wilson score interval for ``k`` successes in ``n`` trials.
* :func:`two_level_bootstrap` / :func:`rate_intervals` / :func:`difference` / :func:`verdict_word`.
* :func:`paired_t_verdict` and :data:`VERDICTS`: "is ``better`` lower than ``worse``, seed by seed?".
* :func:`seed_table`: mean and population SD over seeds, per group.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

COLUMNS = ("condition", "seed", "item", "value")
VERDICTS = ("yes", "no", "not resolved")


def _check_level(level) -> float:
    if not 0 < level < 1:
        raise ValueError(f"level={level!r} must lie strictly between 0 and 1.")
    return float(level)


def wilson_interval(k, n, level=0.95):
    """Wilson score interval (no continuity correction) for ``k`` successes out of ``n``; ``k`` and ``n`` are
    scalars or broadcastable arrays, and so are the returned ``(lo, hi)``. ``n = 0`` gives ``(nan, nan)``."""
    z = stats.norm.ppf(0.5 + _check_level(level) / 2)
    k, n = np.asarray(k, float), np.asarray(n, float)
    if np.any(n < 0) or np.any(k < 0) or np.any(k > n):
        raise ValueError(f"k={k!r}, n={n!r}: need 0 <= k <= n.")
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
        lo = np.where(n > 0, np.clip(centre - half, 0, 1), np.nan)
        hi = np.where(n > 0, np.clip(centre + half, 0, 1), np.nan)
    return (float(lo), float(hi)) if lo.ndim == 0 else (lo, hi)


def _sorted(values) -> list:
    try:
        return sorted(values)
    except TypeError:
        return list(values)


def _arrays(df: pd.DataFrame) -> tuple[dict[object, np.ndarray], dict[object, tuple], list]:
    """Per condition (in order of first appearance) its ``(n_seeds, n_items)`` array of values, with the items in
    one common order; its seed list; and that item order."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"df must be a pandas DataFrame with columns {list(COLUMNS)}, not {type(df).__name__}.")
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"df lacks the column(s) {missing}; it needs {list(COLUMNS)}.")
    if len(df) == 0:
        raise ValueError("df has no rows.")
    values = pd.to_numeric(df["value"], errors="coerce")
    if values.isna().any():
        raise ValueError("df['value'] must be numbers (no missing values).")
    df = df.assign(value=values.astype(float))
    if df.duplicated(["condition", "seed", "item"]).any():
        raise ValueError("df has several rows for one (condition, seed, item).")
    items = _sorted(df["item"].unique())
    arrays, seeds = {}, {}
    for cond, part in df.groupby("condition", sort=False):
        table = part.pivot(index="seed", columns="item", values="value")
        if len(table.columns) != len(items) or table.isna().any().any():
            raise ValueError(f"condition {cond!r}: every seed must have a value for every item "
                             f"({len(items)} items in df).")
        seeds[cond] = tuple(_sorted(table.index))
        arrays[cond] = table.loc[list(seeds[cond]), items].to_numpy()
    return arrays, seeds, items


def _row_counts(idx: np.ndarray, size: int) -> np.ndarray:
    """``(B, size)`` counts of each index in each row of the ``(B, m)`` integer array ``idx``."""
    b = idx.shape[0]
    flat = idx + size * np.arange(b)[:, None]
    return np.bincount(flat.ravel(), minlength=b * size).reshape(b, size).astype(float)


def two_level_bootstrap(df: pd.DataFrame, n_boot: int = 2000, rng=0) -> pd.DataFrame:
    """The paired two-level bootstrap distribution of each condition's mean value.

    ``df`` is tidy: one row per (condition, seed, item) with columns ``condition, seed, item, value``; every
    condition x seed has the same items. Each of the ``n_boot`` replicates draws the seeds of each condition
    with replacement (one draw per distinct seed list, shared by the conditions that have it; a single seed is
    always reused) and then ``n_items`` item indices with replacement, the same for every condition and seed.
    ``rng`` seeds a ``numpy.random.Generator`` (or is one). Returns an ``(n_boot, n_conditions)`` DataFrame,
    one column per condition in order of first appearance.
    """
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot={n_boot!r} must be a positive integer.")
    n_boot = int(n_boot)
    arrays, seeds, items = _arrays(df)
    gen = np.random.default_rng(rng)
    n_items = len(items)
    item_counts = _row_counts(gen.integers(0, n_items, (n_boot, n_items)), n_items)  # (B, I)
    seed_counts = {}
    for key in sorted(set(seeds.values()), key=repr):  # draw order independent of row order
        s = len(key)
        seed_counts[key] = (np.ones((n_boot, 1)) if s == 1
                            else _row_counts(gen.integers(0, s, (n_boot, s)), s))  # (B, S)
    out = {}
    for cond, x in arrays.items():
        s = x.shape[0]
        per_item = seed_counts[seeds[cond]] @ x  # (B, I): sum over the resampled seeds
        out[cond] = (per_item * item_counts).sum(1) / (s * n_items)
    return pd.DataFrame(out)


def _interval(boot: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def rate_intervals(df: pd.DataFrame, n_boot: int = 2000, level: float = 0.95, rng=0) -> pd.DataFrame:
    """Per condition (the index, in order of first appearance): ``rate`` (the plain mean over seeds and items),
    ``lo`` and ``hi`` (the percentile interval of :func:`two_level_bootstrap` at ``level``), ``n_seeds`` and
    ``n_items``."""
    level = _check_level(level)
    boot = two_level_bootstrap(df, n_boot=n_boot, rng=rng)
    arrays, _, _ = _arrays(df)
    rows = {c: {"rate": float(x.mean()), **dict(zip(("lo", "hi"), _interval(boot[c].to_numpy(), level))),
                "n_seeds": x.shape[0], "n_items": x.shape[1]} for c, x in arrays.items()}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "condition"
    return out


def verdict_word(lo: float, hi: float) -> str:
    """The word for an interval of a difference a - b: ``"lower"`` if ``hi < 0``, ``"higher"`` if ``lo > 0``,
    else ``"not clearly different"``."""
    return "lower" if hi < 0 else ("higher" if lo > 0 else "not clearly different")


def difference(df: pd.DataFrame, a, b, n_boot: int = 2000, level: float = 0.95, rng=0) -> dict:
    """Condition ``a`` relative to ``b``: ``diff`` = rate a - rate b, its paired percentile interval ``lo, hi``
    at ``level`` (both rates from the same replicates) and the :func:`verdict_word` of that interval."""
    level = _check_level(level)
    conditions = list(pd.unique(df["condition"])) if "condition" in getattr(df, "columns", ()) else []
    for name, c in (("a", a), ("b", b)):
        if c not in conditions:
            raise ValueError(f"{name}={c!r} is not a condition of df; conditions: {conditions}.")
    boot = two_level_bootstrap(df, n_boot=n_boot, rng=rng)
    arrays, _, _ = _arrays(df)
    lo, hi = _interval((boot[a] - boot[b]).to_numpy(), level)
    return {"diff": float(arrays[a].mean() - arrays[b].mean()), "lo": lo, "hi": hi, "verdict": verdict_word(lo, hi)}


def seed_table(df, by: str, columns=None):
    """Mean and population SD (ddof=0, the convention of the paper and of this project) over the rows
    (seeds) of each ``by`` group of a DataFrame: columns ``"<col> mean"`` and ``"<col> sd"`` for each of
    ``columns`` (default: every other numeric column), groups in their order of appearance."""
    g = df.groupby(by, sort=False)
    columns = list(columns) if columns is not None else [c for c in df.select_dtypes("number").columns if c != by]
    mean, sd = g[columns].mean(), g[columns].std(ddof=0)
    out = mean.add_suffix(" mean").join(sd.add_suffix(" sd"))
    return out[[f"{c} {k}" for c in columns for k in ("mean", "sd")]]


def paired_t_verdict(better, worse) -> dict:
    """Is ``better`` lower than ``worse``, seed by seed? A two-sided paired t-test at 5 % on the per-seed
    differences ``d = worse - better`` (two ``(n,)`` arrays): ``"yes"`` when their mean is above ``t * SE`` (``t``
    the 97.5 % quantile of Student's t with n - 1 degrees of freedom, SE the sample SD / sqrt(n)), ``"no"`` when
    it is below ``-t * SE``, else ``"not resolved"`` (always with fewer than 2 seeds). Returns the verdict, the
    mean and population SD of ``d``, ``n``, in how many seeds ``better < worse``, ``se`` and ``t_crit``."""
    d = np.asarray(worse, float) - np.asarray(better, float)
    n = len(d)
    se = d.std(ddof=1) / np.sqrt(n) if n > 1 else np.inf
    t = stats.t.ppf(0.975, n - 1) if n > 1 else np.inf
    m = float(d.mean())
    verdict = "yes" if m > t * se else ("no" if m < -t * se else "not resolved")
    return {"verdict": verdict, "mean_diff": m, "sd_diff": float(d.std(ddof=0)), "n": n,
            "n_better": int((d > 0).sum()), "se": float(se), "t_crit": float(t)}
