"""The LLM paper protocol kept with the book (:mod:`soo.llm.full`) as the SOO page shows it: the control ladder's
runs read back (:func:`kept_ladder`), its table with each rung's verdict against SOO (MSE) and share of SOO's drop,
what the greedy answers of each rung are, the other studies' marks on its rungs, whether the page's quick rerun
agrees with it (:func:`quick_vs_kept`), and the values the page glues from it (:func:`glue_llm_full`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import scenarios as S
from .. import stats
from ..files import read_json
from . import scoring
from .config import CONDITIONS, LADDER


def ladder_marks() -> dict:
    """The other studies' rates on the ladder's rungs (% deceptive, greedy generation in the paper's order;
    ``{study: {condition: rate}}``), read from ``soo/data/paper_results.json`` (the paper's Mistral-7B row: start
    and SOO) and ``soo/data/replications.json`` (the control ladder of ``marcobaumann/paper-soo-overlap``)."""
    paper = next(r for r in S.paper_results()["llm_main_scenario"]
                 if r["source"] == "paper" and r["model"] == "mistralai/Mistral-7B-Instruct-v0.2")
    lad = S.replications()["marcobaumann/paper-soo-overlap"]["control_ladder"]
    rungs = {"untrained baseline": "base", "generic fine-tuning": "generic", "scenario exposure": "lm",
             "full SOO": "soo_mse"}
    baumann = {cond: lad[k]["mean"] for prefix, cond in rungs.items() for k in lad if k.startswith(prefix)}
    return {"paper (Mistral-7B)": {"base": paper["baseline"], "soo_mse": paper["soo_mean"]},
            "marcobaumann/paper-soo-overlap (Mistral-7B, 5 seeds)": baumann}


def kept_ladder(kept_dir=None) -> dict:
    """The kept paper-protocol runs (:mod:`soo.llm.full`) as the SOO page's ladder: ``per_seed`` (one row per run:
    rung, seed, log-prob rate counterbalanced and per order, generation in the paper's order and counterbalanced,
    unclear answers), ``items`` (:func:`soo.llm.scoring.item_table` of the log-prob records), ``items_gen`` (of the
    generated answers), the runs kept and expected. Empty tables where nothing is kept."""
    from . import full as F

    sc = F.full_config()
    names = F.run_names(sc, LADDER)
    kept_dir = kept_dir or F.KEPT_DIR
    kept = [n for n, _ in names if F.kept_manifest(n, kept_dir) is not None]
    results = [F.kept_result(n, kept_dir) for n in kept]
    mech = [read_json(kept_dir / n / "mechanism.json") if (kept_dir / n / "mechanism.json").exists() else {}
            for n in kept]
    per_seed = pd.DataFrame([{**scoring.result_row(r), "condition": r["condition"], **m}
                             for r, m in zip(results, mech)])
    organisms = {(F.kept_manifest(n, kept_dir) or {}).get("organism_digest") for n in kept}
    return {"per_seed": per_seed, "results": results, "n_kept": len(results), "n_expected": len(names),
            "n_organisms": len(organisms),
            "items": scoring.item_table(results) if results else pd.DataFrame(),
            "items_gen": scoring.item_table(results, "generate_records") if results else pd.DataFrame()}


def answer_kinds(results, examples: int = 2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What the greedy answers of each condition are (:func:`soo.llm.scoring.answer_kind`): the share (%) of each
    kind per condition, over its seeds and both orders, and ``examples`` answers of each kind per condition (the
    first ones in scenario order; whole answers where the run kept them whole)."""
    rows = [{"condition": r["condition"], "kind": scoring.answer_kind(x["response"], x["deceptive_room"],
                                                                       x["honest_room"]),
             "response": x["response"], "whole": x.get("whole", True)} for r in results for x in r["generate_records"]]
    df = pd.DataFrame(rows)
    share = (100 * pd.crosstab(df["condition"], df["kind"], normalize="index")).reindex(
        columns=list(scoring.ANSWER_KINDS), fill_value=0.0)
    share = share.reindex([c for c in ["base", *CONDITIONS] if c in share.index])
    share.index = ["Start" if c == "base" else CONDITIONS[c] for c in share.index]
    ex = df.sort_values("whole", ascending=False, kind="stable").groupby(["condition", "kind"]).head(examples)
    return share.round(1), ex[["condition", "kind", "response"]].reset_index(drop=True)


def ladder_table(ladder: dict) -> pd.DataFrame:
    """One row per rung that has kept runs, in the ladder's order from the start model: seeds, the log-prob rate
    with its two-level interval, the two orders, greedy generation (paper order; counterbalanced; unclear), the
    paired verdict against SOO (MSE), and the share of the start model's rate that the rung removes relative to SOO's
    drop (:func:`drop_shares`)."""
    ps = ladder["per_seed"]
    if ps.empty:
        return pd.DataFrame(columns=["rung"])
    iv = stats.rate_intervals(ladder["items"])
    shares = drop_shares(ps)
    rows = []
    for c in ["base", *LADDER]:
        d = ps[ps.condition == c]
        if d.empty:
            continue
        v = (scoring.paired_verdict(ladder["items"], c, "soo_mse")["verdict"]
             if c != "soo_mse" and "soo_mse" in set(ps.condition) else "")
        rows.append({"rung": "Start (the organism)" if c == "base" else CONDITIONS[c], "seeds": len(d),
                     "log-prob % [95 %]": f"{100 * iv.loc[c, 'rate']:.1f} [{100 * iv.loc[c, 'lo']:.0f}–{100 * iv.loc[c, 'hi']:.0f}]",
                     "paper / mirrored %": f"{d['paper order'].mean():.0f} / {d['mirrored'].mean():.0f}",
                     "generation, paper order %": f"{d['generate paper'].mean():.1f}",
                     "generation, both orders %": f"{d['generate mean'].mean():.1f}",
                     "unclear %": f"{d['generate unclear'].mean():.1f}",
                     "vs SOO (MSE)": v, "share of SOO's drop": "" if c == "base" else f"{shares.get(c, np.nan):.0%}",
                     **({"site spread": f"{d['spread'].mean():.3f}",
                         "self/other gap": f"{d['self_other_gap'].mean():.3g}",
                         "name gap": f"{d['name_gap'].mean():.3g}"} if "spread" in d else {})})
    return pd.DataFrame(rows).set_index("rung")


def drop_shares(per_seed: pd.DataFrame, column: str = "mean") -> dict:
    """For each rung, the fraction of SOO (MSE)'s drop from the start model that the rung's own drop reaches:
    ``(start - rung) / (start - SOO)`` on the mean over seeds of ``column`` (log-prob, counterbalanced). 1 means the
    rung does all SOO does; 0, nothing. Empty where SOO or the start model is missing or SOO did not lower the rate."""
    means = per_seed.groupby("condition")[column].mean()
    if "base" not in means or "soo_mse" not in means or means["base"] <= means["soo_mse"]:
        return {}
    drop = means["base"] - means["soo_mse"]
    return {c: float((means["base"] - m) / drop) for c, m in means.items() if c != "base"}


def quick_vs_kept(quick_results, ladder: dict) -> dict:
    """Whether the quick rerun's verdicts (this notebook's runs at its own scale) agree with the kept protocol's: for
    every condition both have, the verdict against the start model and against SOO (MSE), by the one rule on each
    set's own log-prob items. ``llm_quick_agrees`` (a sentence) and ``llm_quick_vs_kept`` (the table)."""
    if ladder["per_seed"].empty:
        return {"llm_quick_agrees": "not compared yet: no run of the paper's protocol is kept",
                "llm_quick_vs_kept": pd.DataFrame()}
    quick = scoring.item_table(quick_results)
    kept = ladder["items"]
    order = ["base", *LADDER, *(c for c in CONDITIONS if c not in LADDER)]  # the ladder's order, from the start up
    common = [c for c in order if c in set(quick.condition) and c in set(kept.condition)]
    pairs = [(c, "base") for c in common if c != "base"]
    pairs += [("soo_mse", c) for c in common if c not in ("base", "soo_mse") and "soo_mse" in common]
    rows = []
    for a, b in pairs:
        vq, vk = (scoring.paired_verdict(t, a, b)["verdict"] for t in (quick, kept))
        rows.append({"comparison": f"{_label(a)} vs {_label(b)}", "quick rerun": vq, "paper's protocol": vk,
                     "agree": "yes" if vq == vk else "no"})
    table = pd.DataFrame(rows).set_index("comparison") if rows else pd.DataFrame()
    if not rows:
        return {"llm_quick_agrees": "not compared yet: the kept runs and the quick rerun share no condition",
                "llm_quick_vs_kept": table}
    differ = [r["comparison"] for r in rows if r["agree"] == "no"]
    text = f"{len(rows) - len(differ)} of {len(rows)} of the quick rerun's verdicts agree with the paper's protocol's"
    if differ:
        text += f" (they differ on {'; '.join(differ)})"
    return {"llm_quick_agrees": text, "llm_quick_vs_kept": table}


def comparison_rows(ladder: dict) -> list[dict]:
    """The kept paper protocol's rows of the SOO page's comparison with the paper
    (:func:`soo.llm.book.soo_comparison`): measured the paper's way (paper order, greedy generation, first mention,
    every scenario) and counterbalanced by log-prob, the organism before and SOO (MSE) after, mean ± SD over seeds.
    Empty where the set has no start row or no SOO run."""
    from . import full as F
    from .book import our_rows

    ps = ladder["per_seed"]
    if ps.empty or not {"base", "soo_mse"} <= set(ps.condition):
        return []
    base, soo = ps[ps.condition == "base"], ps[ps.condition == "soo_mse"]
    run = next(r for r in ladder["results"] if r["condition"] == "soo_mse")  # its scenarios per order, both orders
    cols = ("generate paper", "mean")
    return our_rows(f"the organism of {F.full_config().model}",
                    f"ours, the paper's protocol (kept), {len(soo)} seed{'s' * (len(soo) != 1)}",
                    len(run["generate_records"]) // 2, len(run["records"]) // 2, {c: base[c].mean() for c in cols},
                    {c: soo[c].mean() for c in cols}, {c: _sd(soo[c]) for c in cols})


def _sd(values: pd.Series) -> float:
    """The population SD over seeds, NaN for one seed (as the page's per-condition summaries)."""
    return float(np.std(values, ddof=0)) if len(values) > 1 else float("nan")


def _label(condition: str) -> str:
    return "Start" if condition == "base" else CONDITIONS[condition]


def glue_llm_full(ladder: dict) -> dict:
    """``{glue name: value}`` of the SOO page's kept paper protocol: how many runs are kept, the ladder table, and
    the bottom line in words (``llm_full_bottom``): SOO's rate with its interval and per order, and the rungs it does
    not differ from, by the one verdict rule; or that the set is not computed yet."""
    out = {"llm_full_kept": f"{ladder['n_kept']} of {ladder['n_expected']}",
           "llm_full_table": ladder_table(ladder)}
    if ladder.get("n_organisms", 1) > 1:  # runs computed from organisms with different weights: say so first
        out["llm_full_kept"] += f" (from {ladder['n_organisms']} organisms with different weights: not one set)"
    ps = ladder["per_seed"]
    have = set(ps.condition) if not ps.empty else set()
    if not {"base", "soo_mse"} <= have:
        out["llm_full_bottom"] = (f"not computed yet ({out['llm_full_kept']} of its runs are kept; make llm-full "
                                  "computes them), so this page's verdicts are the quick rerun's below")
        out["llm_full_paper_way"] = "the paper's protocol is not computed yet (make llm-full computes it)"
        return out
    iv = stats.rate_intervals(ladder["items"])
    soo = ps[ps.condition == "soo_mse"]
    equal = [CONDITIONS[c] for c in have - {"base", "soo_mse"}
             if scoring.paired_verdict(ladder["items"], "soo_mse", c)["verdict"] == "not clearly different from"]
    vs_base = scoring.paired_verdict(ladder["items"], "soo_mse", "base")["verdict"]
    lower = [CONDITIONS[c] for c in ("soo_mse_shuffled", "soo_mse_names") if c in have
             and scoring.paired_verdict(ladder["items"], c, "soo_mse")["verdict"] == "lower than"]
    out["llm_full_bottom"] = (
        f"SOO (MSE) left {100 * iv.loc['soo_mse', 'rate']:.1f} % [{100 * iv.loc['soo_mse', 'lo']:.0f}–"
        f"{100 * iv.loc['soo_mse', 'hi']:.0f}] deceptive answers by log-prob ({len(soo)} "
        f"seed{'s' if len(soo) != 1 else ''}, {ladder['n_kept']} of {ladder['n_expected']} runs kept), {vs_base} "
        f"the organism's "
        f"{100 * iv.loc['base', 'rate']:.1f} %; paper order {soo['paper order'].mean():.0f} %, mirrored "
        f"{soo['mirrored'].mean():.0f} %: "
        + scoring.order_pattern(soo["paper order"].mean(), soo["mirrored"].mean(),
                                ps[ps.condition == "base"]["paper order"].mean(),
                                ps[ps.condition == "base"]["mirrored"].mean())
        + (f"; it is not clearly different from {', '.join(equal)}" if equal else "; it differs from every other rung")
        + (f"; lower than SOO (MSE) itself: {', '.join(lower)}, which have no self/other contrast" if lower else "")
        + f". By greedy generation (the paper's measure) SOO (MSE) left {soo['generate mean'].mean():.1f} % "
        f"counterbalanced, {soo['generate paper'].mean():.1f} % in the paper's order (the organism "
        f"{ps[ps.condition == 'base']['generate paper'].mean():.1f} %)")
    base = ps[ps.condition == "base"]
    out["llm_full_paper_way"] = (
        f"SOO (MSE) left {scoring.mean_sd_text(soo['generate paper'].mean(), _sd(soo['generate paper']))} % "
        f"deceptive answers ({'mean ± SD over ' * (len(soo) > 1)}{len(soo)} seed{'s' * (len(soo) > 1)}) against "
        f"{base['generate paper'].mean():.1f} % before; "
        f"with the two rooms in the mirrored order, which the paper did not run, {soo['generate mirrored'].mean():.1f} % "
        f"against {base['generate mirrored'].mean():.1f} %")
    return out
