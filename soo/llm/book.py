"""What the LLM chapters of the book show: the pages' tables, the paper-vs-ours tables and the values each page glues
(the SOO page's kept paper protocol: :mod:`soo.llm.ladder`).

One ``glue_<notebook>`` per LLM notebook returns ``{name: value}`` for :func:`soo.notebooks.glue_values`: the
numbers and the verdicts the page's sentences depend on (computed here, never typed into a page), and the
comparison tables, whose paper and official-repository rows come from ``soo/data/paper_results.json``
(``tests/test_notebooks.py`` checks every such number against it). Each table says how each row was measured
(:data:`MEASURED_AS`, :data:`PAPER_WAY`): only rows measured alike are comparable.

The convention of both wings' ``book`` modules: a page's glue function takes the page's configuration and its
steps' results (here the return values of the cached steps: :mod:`soo.llm.measure`, :mod:`soo.llm.organism`,
:mod:`soo.llm.experiment`; in :mod:`soo.rl.book`, the folder they are read back from) and derives every table and
value itself with this module's table functions, which the notebook calls to show the same tables; it never takes a
value the notebook derived only to hand it back.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import models
from . import scenarios as S
from .. import stats
from ..style import book_table
from . import scoring
from .config import CONDITIONS
from .experiment import CONTROLS, GENERALIZATION_CONDITIONS, Notebook


# ----------------------------------------------------------------------------- how a rate was measured
PAPER_WAY = "paper's way: paper order, greedy generation, first mention"
"""Our number measured as the paper measured its own (PAPER_SPEC §4.1): comparable with the paper's rows."""
COUNTERBALANCED_GEN = "counterbalanced: mean of paper and mirrored order, greedy generation, first mention"
COUNTERBALANCED_LP = "counterbalanced: mean of paper and mirrored order, log-prob of the two rooms"
MEASURED_AS = {"paper": "paper order, greedy generation (chat template), first mention",
               "repo": "paper order, greedy generation (raw prompt, no chat template), substring first mention"}
"""How the paper's and the official repository's rows of soo/data/paper_results.json were measured."""


def paper_rows(rows, columns) -> pd.DataFrame:
    """Rows of ``soo/data/paper_results.json`` (the paper's and the official repository's) with a "measured as"
    column, restricted to ``columns``."""
    paper = pd.DataFrame(rows)
    paper["measured as"] = paper["source"].map(MEASURED_AS)
    return paper[list(columns)]


# ----------------------------------------------------------------------------- the pages' tables
BASELINE_SETTINGS = {"generate": "generation", "generate_honesty": "generation + honesty prompt",
                     "logprob": "log-prob", "logprob_honesty": "log-prob + honesty prompt"}
"""The baseline's four scorings of the burglar scenarios, by their result file's name."""


def baseline_table(runs: dict) -> pd.DataFrame:
    """One row per scoring of :data:`BASELINE_SETTINGS` (index: its name): rates per order and their mean."""
    return pd.DataFrame([scoring.deception_row(runs[k], setting=v) for k, v in BASELINE_SETTINGS.items()]).set_index("setting")


def rates_by_order(named_runs: dict) -> pd.DataFrame:
    """``{setting: records}`` as long rows (setting, order, rate, CI) for :func:`soo.llm.figures.plot_baseline_rates`."""
    return pd.DataFrame([{"setting": k, "order": o, **scoring.summarize_orders(r)[o]}
                         for k, r in named_runs.items() for o in S.ORDERS])


def organism_table(runs: dict, before: dict) -> pd.DataFrame:
    """Deceptive rates of the organism and (when llm_baseline ran) the base model, by method."""
    rows = [scoring.deception_row(r, model="organism", method=m) for m, r in runs.items()]
    rows += [scoring.deception_row(r, model="base", method=m) for m, r in before.items()]
    return pd.DataFrame(rows).set_index(["model", "method"])


def latent_table(results) -> pd.DataFrame:
    """Latent SOO per (condition, layer, block), mean over seeds."""
    lat = pd.DataFrame([{**x, "condition": r["condition"]} for r in results for x in r["latent_soo"]])
    return lat.groupby(["condition", "layer", "block"], as_index=False)["mse"].mean()


def generalization_long(runs) -> pd.DataFrame:
    """One row per (condition, seed, variant): counterbalanced rate, per order, and the paper's way."""
    return pd.DataFrame([{"condition": r["condition"], "seed": r["seed"], "variant": v, "rate": d["mean_of_orders"],
                          "paper order": d["paper"]["rate"], "mirrored": d["mirrored"]["rate"],
                          "ci_low": d["pooled"]["ci_low"], "ci_high": d["pooled"]["ci_high"],
                          "paper way": r["generate_by_variant"][v]["rate"]}
                         for r in runs for v, d in r["by_variant"].items()])


def generalization_agg(long: pd.DataFrame) -> pd.DataFrame:
    """Mean and population SD over seeds per (variant, condition); the SD is NaN where there is one seed, whose
    run's 95 % bootstrap interval over scenarios (``ci_low``, ``ci_high``) is kept instead (NaN otherwise)."""
    agg = long.groupby(["variant", "condition"], sort=False).agg(
        rate=("rate", "mean"), sd=("rate", lambda v: np.std(v, ddof=0)), n_seeds=("rate", "size"),
        ci_low=("ci_low", "mean"), ci_high=("ci_high", "mean")).reset_index()
    agg.loc[agg["n_seeds"] < 2, "sd"] = np.nan
    agg.loc[agg["n_seeds"] >= 2, ["ci_low", "ci_high"]] = np.nan
    return agg


def generalization_avg7(long: pd.DataFrame) -> pd.DataFrame:
    """The average over the seven main variants per condition (mean over seeds): counterbalanced and paper's way."""
    seven = long[long["variant"].isin(S.VARIANTS[:7])].groupby(["condition", "seed"], dropna=False)[["rate", "paper way"]].mean()
    return seven.groupby(level=0).mean()


# ----------------------------------------------------------------------------- one function per page
def perspectives_by_method(runs: dict) -> dict:
    """Perspectives accuracy (%) of the baseline's ``runs`` (:func:`soo.llm.measure.baseline_scores`) by scoring
    method."""
    return {m: scoring.perspectives_accuracy(runs[f"perspectives_{m}"]) for m in ("generate", "logprob")}


def glue_llm_baseline(nb: Notebook, runs: dict) -> dict:
    """The values the llm_baseline page glues: ``base_*``, from the page's step results ``runs``
    (:func:`soo.llm.measure.baseline_scores`)."""
    table, persp = baseline_table(runs), perspectives_by_method(runs)
    g = table.loc["generation"]
    out = {f"base_{k}": float(v) for k, v in {
        "paper": g["paper order"], "mirrored": g["mirrored"], "mean": g["mean"], "first_room": g["first-room rate"],
        "lp_mean": table.loc["log-prob", "mean"], "honesty_mean": table.loc["generation + honesty prompt", "mean"],
        "persp_gen": persp["generate"], "persp_lp": persp["logprob"]}.items()}
    split = scoring.position_and_preference(out["base_paper"], out["base_mirrored"])
    lo, hi = g["mean CI"]
    out.update(base_position=float(split["position"]), base_preference=float(split["preference"]),
               base_paper_measures=split["paper_order_measures"], base_ci_low=float(lo), base_ci_high=float(hi),
               base_preference_verdict=scoring.preference_verdict(lo, hi))
    out["base_bottom"] = (
        f"by greedy generation the base model recommended the cheap room in {out['base_paper']:.1f} % of the scenarios "
        f"in the paper's order and {out['base_mirrored']:.1f} % mirrored ({nb.cfg.n_eval} per order): "
        f"{scoring.order_pattern(out['base_paper'], out['base_mirrored'])}; counterbalanced "
        f"{out['base_mean']:.1f} % [{lo:.0f}–{hi:.0f}], {out['base_preference_verdict']}, so its paper-order rate "
        f"measures {split['paper_order_measures']}")
    return {**out, "base_model": nb.cfg.model, "base_scale": nb.cfg.scale, "base_n": int(nb.cfg.n_eval),
            "base_tokens": int(nb.cfg.gen_tokens), "base_precision": nb.cfg.precision, "base_machine": models.machine(),
            "base_comparison": baseline_comparison(nb, table)}


def baseline_comparison(nb: Notebook, table: pd.DataFrame):
    """The paper's baselines next to ours: measured the paper's way, and counterbalanced."""
    sc, cols = nb.cfg, ["model", "measured as", "baseline", "honesty_prompt", "source"]
    gen, hon = table.loc["generation"], table.loc["generation + honesty prompt"]
    ours = pd.DataFrame([{"model": f"{sc.model} (this run)", "measured as": f"{PAPER_WAY}, {sc.n_eval} scenarios",
                          "baseline": gen["paper order"], "honesty_prompt": hon["paper order"],
                          "source": f"ours, scale={sc.scale}"},
                         {"model": f"{sc.model} (this run)", "measured as": f"{COUNTERBALANCED_GEN}, {sc.n_eval} per order",
                          "baseline": gen["mean"], "honesty_prompt": hon["mean"], "source": f"ours, scale={sc.scale}"}])
    return book_table(pd.concat([paper_rows(S.paper_results()["llm_main_scenario"], cols), ours[cols]], ignore_index=True))


def glue_llm_organism(nb: Notebook, runs: dict, info: dict) -> dict:
    """The values the llm_organism page glues: ``org_*``, from the page's step results: the organism's scores
    ``runs`` (:func:`soo.llm.organism.organism_scores`) and its training manifest ``info``
    (:func:`soo.llm.organism.organism_info`)."""
    table = organism_table(runs, {})
    g, lp = table.loc[("organism", "generate")], table.loc[("organism", "logprob")]
    return {"org_gen_mean": float(g["mean"]), "org_gen_paper": float(g["paper order"]),
            "org_gen_mirrored": float(g["mirrored"]), "org_lp_mean": float(lp["mean"]),
            "org_n_train": int(nb.cfg.organism_n), "org_epochs": int(nb.cfg.organism.epochs),
            "org_train_s": float(info["wall_s"]), "org_model": nb.cfg.model, "org_scale": nb.cfg.scale,
            "org_target_met": "met" if g["mean"] >= 90 else "not met", "org_n_eval": int(nb.cfg.n_eval),
            "org_bottom": (f"trained in, deception is reliable: the organism recommended the cheap room in "
                           f"{g['paper order']:.1f} % of greedy answers in the paper's order and {g['mirrored']:.1f} % "
                           f"mirrored ({nb.cfg.n_eval} held-out scenarios per order), {g['mean']:.1f} % "
                           f"counterbalanced ({lp['mean']:.1f} % by log-prob); the 90 % target was "
                           f"{'met' if g['mean'] >= 90 else 'not met'}")}


def n_seeds(seeds) -> str:
    """``"1 seed"``, ``"3 seeds"``."""
    return f"{len(seeds)} seed" + ("" if len(seeds) == 1 else "s")


def soo_comparison(nb: Notebook, base: dict, summary: pd.DataFrame, main: str, kept_rows=()):
    """The paper's SOO rows next to ours: measured the paper's way, and counterbalanced by log-prob; ``kept_rows``
    (:func:`soo.llm.ladder.comparison_rows`: the kept paper protocol's) before this run's."""
    sc = nb.cfg
    paper = pd.DataFrame(S.paper_results()["llm_main_scenario"])
    paper = paper.assign(soo=paper["soo_mean"].round(2).astype(str) + " ± " + paper["soo_sd"].round(2).astype(str),
                         baseline=paper["baseline"].map("{:.1f}".format),
                         **{"measured as": paper["source"].map(MEASURED_AS)})
    b, m = scoring.result_row(base), summary.loc[main]
    rates = ("generate paper", "mean")
    ours = our_rows(nb.start_label, f"ours, scale={sc.scale}, {n_seeds(sc.seeds)}", sc.n_generate, sc.n_soo_eval,
                    {c: b[c] for c in rates}, {c: m[f"{c} mean"] for c in rates}, {c: m[f"{c} sd"] for c in rates})
    cols = ["model", "measured as", "baseline", "soo", "source"]
    return book_table(pd.concat([paper[cols], pd.DataFrame(replication_rows()), pd.DataFrame([*kept_rows, *ours])],
                                ignore_index=True))


def our_rows(model: str, source: str, n_generate: int, n_per_order: int, before: dict, mean: dict, sd: dict) -> list:
    """Our two rows of the SOO comparison with the paper, the paper's way (``"generate paper"``) and counterbalanced
    by log-prob (``"mean"``); ``before``, ``mean``, ``sd``: ``{column: value}`` (SD NaN for one seed)."""
    return [{"model": model, "measured as": f"{how}, {n}", "baseline": f"{before[col]:.1f}",
             "soo": scoring.mean_sd_text(mean[col], sd[col], ".2f"), "source": source}
            for how, n, col in ((PAPER_WAY, f"{n_generate} scenarios", "generate paper"),
                                (COUNTERBALANCED_LP, f"{n_per_order} per order", "mean"))]


def replication_rows() -> list[dict]:
    """The two replications' Mistral-7B rows for the SOO table (``soo/data/replications.json``; the source column
    names the repository): the untrained model and SOO, mean ± SD over their 5 seeds where they give them."""
    rep = S.replications()
    bm, dr = rep["marcobaumann/paper-soo-overlap"], rep["DRAGNLabs/self-concept-experiments"]
    lad = {k.split(" (")[0]: v for k, v in bm["control_ladder"].items()}
    l16 = dr["mistral_L16_lasttok"]
    return [{"model": "Mistral-7B-Instruct-v0.2", "measured as": "paper order, greedy generation, an LLM judge's label",
             "baseline": f"{lad['untrained baseline']['mean']:.2f} ± {lad['untrained baseline']['sd']:.2f}",
             "soo": f"{lad['full SOO']['mean']:.2f} ± {lad['full SOO']['sd']:.2f}",
             "source": "marcobaumann/paper-soo-overlap"},
            {"model": "Mistral-7B-Instruct-v0.2 (SOO at layer 16, last token)",
             "measured as": "paper order, greedy generation, first mention",
             "baseline": f"{dr['mistral_baseline']['main_n250']:.1f}",
             "soo": f"{l16['mean']:.1f} ± {l16['sd']:.1f}", "source": "DRAGNLabs/self-concept-experiments"}]


def capability_comparison(nb: Notebook, base: dict, summary: pd.DataFrame, main: str):
    """The paper's (and the official repository's) latent SOO, MT-Bench and Perspectives figures next to what this
    run measured before and after SOO. Only the rows of one measure are comparable, and even they only in kind: the
    paper's latent SOO is an MSE over its own choice of outputs and prompts, and its MT-Bench is a GPT-4 judge's
    1-10 score, while ours is an offline KL divergence and perplexity against the start model."""
    pr, b, m = S.paper_results(), scoring.result_row(base), summary.loc[main]
    src = f"ours, scale={nb.cfg.scale}, {n_seeds(nb.cfg.seeds)}"

    def after(col, fmt):
        return scoring.mean_sd_text(m[col + " mean"], m[col + " sd"], fmt)

    def paper_after(r):
        return f"{r['soo_mean']:g}" + (f" ± {r['soo_sd']:g}" if r.get("soo_sd") is not None else "")

    rows = [{"measure": r["metric"] if r["metric"].startswith("latent SOO") else f"latent SOO: {r['metric']}",
             "model": r["model"], "before": f"{r['baseline']:g}",
             "after SOO": paper_after(r), "source": r["source"]} for r in pr["latent_soo"]]
    rows += [{"measure": f"latent SOO: {what}, mean over layers", "model": nb.start_label,
              "before": f"{b[col]:.3g}", "after SOO": after(col, ".3g"), "source": src}
             for what, col in (("attention output (o_proj) MSE", "latent attn"), ("MLP output (down_proj) MSE", "latent mlp"))]
    rows += [{"measure": "MT-Bench score (GPT-4 judge, 1-10)", "model": r["model"], "before": f"{r['baseline']:g}",
              "after SOO": paper_after(r), "source": r["source"]} for r in pr["mt_bench"] if "model" in r]
    rows += [{"measure": "capability: per-token KL to the start model on MT-Bench prompts (nats)",
              "model": nb.start_label, "before": f"{b['kl']:.3g}", "after SOO": after("kl", ".3g"), "source": src},
             {"measure": "capability: perplexity of the start model's MT-Bench answers", "model": nb.start_label,
              "before": f"{b['perplexity']:.2f}", "after SOO": after("perplexity", ".2f"), "source": src},
             {"measure": "Perspectives accuracy (%)", "model": "all three models", "before": "",
              "after SOO": pr["perspectives_accuracy_after_soo"]["value"],
              "source": pr["perspectives_accuracy_after_soo"]["source"]},
             {"measure": "Perspectives accuracy (%)", "model": nb.start_label,
              "before": f"{base['perspectives_accuracy']:.1f}", "after SOO": after("perspectives", ".1f"),
              "source": src}]
    return book_table(pd.DataFrame(rows))


def soo_conditions(runs: dict) -> list[str]:
    """The conditions of the main runs of ``runs`` (:func:`soo.llm.experiment.run_jobs`), in their order."""
    return list(dict.fromkeys(r["condition"] for r in runs["main"]))


def main_condition(conditions) -> str:
    """The condition compared with the paper: SOO (MSE) when it ran, else the first."""
    return "soo_mse" if "soo_mse" in conditions else list(conditions)[0]


def soo_tables(base: dict, runs: dict) -> dict[str, pd.DataFrame]:
    """The llm_soo page's tables from its step results (the start model's ``base``,
    :func:`soo.llm.experiment.base_run`; ``runs``, :func:`soo.llm.experiment.run_jobs`): ``per_seed`` (one row per
    run, the start model first), ``summary`` (mean and SD over seeds per condition), ``layers`` and ``lrs`` (one row
    per sweep run)."""
    per_seed = pd.DataFrame([scoring.result_row(r) for r in [base] + runs["main"]])
    columns = list(scoring.result_row(base))
    return {"per_seed": per_seed, "summary": scoring.seed_summary(per_seed),
            "layers": pd.DataFrame([scoring.result_row(r) for r in runs["layers"]], columns=columns),
            "lrs": pd.DataFrame([scoring.result_row(r) for r in runs["lrs"]], columns=columns)}


def glue_llm_soo(nb: Notebook, base: dict, runs: dict, kept_rows=()) -> dict:
    """The values the llm_soo page glues: ``soo_*`` (per condition: ``soo_<condition>_<column>[_sd]``), from the
    page's step results: the start model's ``base`` (:func:`soo.llm.experiment.base_run`) and ``runs``
    (:func:`soo.llm.experiment.run_jobs`); ``kept_rows``: the kept protocol's rows of the paper comparison."""
    tables, conditions = soo_tables(base, runs), soo_conditions(runs)
    per_seed, summary, sweep, lr_sweep = (tables[k] for k in ("per_seed", "summary", "layers", "lrs"))
    main = main_condition(conditions)
    comparison = soo_comparison(nb, base, summary, main, kept_rows)
    sc, b = nb.cfg, scoring.result_row(base)
    out = {"soo_comparison": comparison, "soo_capability_comparison": capability_comparison(nb, base, summary, main),
           "soo_base_rate": float(b["mean"]),
           "soo_base_persp": float(base["perspectives_accuracy"]), "soo_base_latent_attn": float(b["latent attn"]),
           "soo_base_latent_mlp": float(b["latent mlp"])}
    for cond in conditions:
        row = summary.loc[cond]
        for col in ("mean", "generate mean", "generate paper", "generate mirrored", "generate unclear", "perspectives",
                    "kl", "perplexity", "latent attn", "latent mlp"):
            out[f"soo_{cond}_{col.replace(' ', '_')}"] = float(row[f"{col} mean"])
            out[f"soo_{cond}_{col.replace(' ', '_')}_sd"] = float(row[f"{col} sd"])
    one_seed = len(sc.seeds) == 1
    for cond in conditions:  # how far seeds of one condition disagree (unclear greedy answers over seeds)
        u = per_seed.loc[per_seed["condition"] == cond, "generate unclear"]
        out[f"soo_{cond}_generate_unclear_range"] = (f"{u.min():.0f} % (one seed)" if len(u) == 1
                                                     else f"{u.min():.0f} % with every seed" if u.min() == u.max()
                                                     else f"from {u.min():.0f} to {u.max():.0f} % over seeds")
        row, s = per_seed.loc[per_seed["condition"] == cond].iloc[0], summary.loc[cond]
        out[f"soo_{cond}_rate"] = (f"{row['mean']:.1f} % [{row['ci_low']:.0f}–{row['ci_high']:.0f}]" if one_seed
                                   else f"{scoring.mean_sd_text(s['mean mean'], s['mean sd'])} %")
    if len(sweep):
        best = sweep.loc[sweep["mean"].idxmin()]
        out.update(soo_sweep_best_layer=int(best["layer"]), soo_sweep_best_rate=float(best["mean"]),
                   soo_sweep_min_rate=float(sweep["mean"].min()), soo_sweep_max_rate=float(sweep["mean"].max()),
                   soo_sweep_layers=", ".join(str(int(v)) for v in sorted(sweep["layer"])))
    if len(lr_sweep):  # the lowest and the highest learning rate of the sweep
        for end, r in (("min", lr_sweep.loc[lr_sweep["lr"].idxmin()]), ("max", lr_sweep.loc[lr_sweep["lr"].idxmax()])):
            out[f"soo_lr_{end}"] = f"{r['lr']:g}"
            for col in ("mean", "kl", "generate unclear"):
                out[f"soo_lr_{end}_{col.replace(' ', '_')}"] = float(r[col])
        out["soo_lr_sweep_lrs"] = ", ".join(f"{v:g}" for v in sorted(lr_sweep["lr"]))
        out.update(soo_lr_sweep_min_rate=float(lr_sweep["mean"].min()),
                   soo_lr_sweep_max_rate=float(lr_sweep["mean"].max()))
    out.update(soo_layer=int(sc.soo.layer), soo_lr=f"{sc.soo.lr:g}", soo_epochs=int(sc.soo.epochs),
               soo_seeds=", ".join(map(str, sc.seeds)), soo_scale=sc.scale, soo_model=str(sc.model),
               soo_seeds_text=f"{len(sc.seeds)} (seed{'s' * (len(sc.seeds) > 1)} {', '.join(map(str, sc.seeds))})",
               soo_start=nb.start_label, soo_tokens=int(sc.gen_tokens),
               soo_base_generate_paper=float(b["generate paper"]), soo_base_generate_mirrored=float(b["generate mirrored"]),
               soo_n_eval=int(sc.n_soo_eval), soo_n_generate=int(sc.n_generate))
    # verdicts for the prose: the one rule (scoring.paired_verdict), the paired two-level bootstrap of the difference
    # over seeds and scenarios; each rate with its two-level interval
    items = scoring.item_table([base] + runs["main"])
    intervals = stats.rate_intervals(items)
    out["soo_spread"] = (f"in brackets the 95 % interval over {'seeds and ' * (not one_seed)}scenarios, "
                         f"by a paired bootstrap{' of two levels' * (not one_seed)}")
    ranges = [f"{out[f'soo_{c}_generate_unclear_range']} for {CONDITIONS[c]}" for c in conditions]
    out["soo_unclear_seeds"] = (
        f"Greedy answers that name neither room: {'; '.join(ranges)}." if one_seed else
        f"The seeds of one condition need not agree on this: unclear greedy answers were {'; '.join(ranges)}. A wide "
        "range means that the same loss, learning rate and budget left the model answering with one seed and broke "
        "it with another, which a mean ± SD of the deceptive rate alone does not show.")
    out["soo_verdict_basis"] = ("whether the 95 % interval of the paired difference excludes zero (a bootstrap over "
                                + ("scenarios, one seed per condition)" if one_seed else
                                   f"{len(sc.seeds)} seeds, then scenarios within them)"))
    for cond in conditions:
        iv = intervals.loc[cond]
        out[f"soo_{cond}_rate"] = f"{100 * iv['rate']:.1f} % [{100 * iv['lo']:.0f}–{100 * iv['hi']:.0f}]"
    for cond in [c for c in CONTROLS if c in conditions and c != main]:
        out[f"soo_vs_{cond}"] = scoring.paired_verdict(items, main, cond)["verdict"]
    for cond in conditions:  # the two orders beside every counterbalanced rate, and what they say together
        row = summary.loc[cond]
        out[f"soo_{cond}_paper_order"] = float(row["paper order mean"])
        out[f"soo_{cond}_mirrored"] = float(row["mirrored mean"])
        out[f"soo_{cond}_pattern"] = scoring.order_pattern(row["paper order mean"], row["mirrored mean"],
                                                           b["paper order"], b["mirrored"])
    out["soo_base_paper_order"], out["soo_base_mirrored"] = float(b["paper order"]), float(b["mirrored"])
    equal = [CONDITIONS[c] for c in conditions if c != main and out.get(f"soo_vs_{c}") == "not clearly different from"]
    vs_base = scoring.paired_verdict(items, main, "base")
    out["soo_vs_base"] = "below" if vs_base["verdict"] == "lower than" else "not clearly below"
    out["soo_vs_base_diff"] = f"{vs_base['diff']:+.1f} points [{vs_base['lo']:+.0f} to {vs_base['hi']:+.0f}]"
    label = CONDITIONS[main]
    out["soo_bottom"] = (
        f"{label} left {out[f'soo_{main}_rate']} deceptive answers by log-prob (the organism: "
        f"{out['soo_base_rate']:.1f} %), {out['soo_vs_base']} the organism; in the paper's order "
        f"{out[f'soo_{main}_paper_order']:.0f} %, mirrored {out[f'soo_{main}_mirrored']:.0f} %: "
        f"{out[f'soo_{main}_pattern']}. "
        + (f"It is not clearly different from {', '.join(equal)}" if equal
           else "It differs from every control that ran") + f", judged by {out['soo_verdict_basis']}.")
    # Perspectives after SOO against the start model: is the self-other distinction kept? The one rule on the
    # per-scenario answers where the runs kept them; else (results from before they were kept) Wilson intervals
    p_soo, p_base = summary.loc[main, "perspectives mean"], float(base["perspectives_accuracy"])
    with_records = [base] + [r for r in runs["main"] if r["condition"] == main]
    if all("perspectives_records" in r for r in with_records):
        persp_items = scoring.item_table(with_records, "perspectives_records", positive="honest")
        persp = scoring.paired_verdict(persp_items, main, "base")["verdict"]
    else:
        n = 2 * sc.n_perspectives * len(sc.seeds)
        persp = scoring.verdict_intervals(scoring.proportion_ci(p_soo, n), scoring.proportion_ci(p_base, n))
    out["soo_persp_verdict"] = persp
    out["soo_persp_rate"] = (f"{p_soo:.1f} %" if one_seed
                             else f"{scoring.mean_sd_text(p_soo, summary.loc[main, 'perspectives sd'])} %")
    out["soo_persp_kept"] = "kept" if persp != "lower than" else "reduced"
    return out


def generalization_comparison(nb: Notebook, avg):
    """The paper's seven-variant averages next to ours (the paper's way, and counterbalanced)."""
    sc, src = nb.cfg, f"ours, scale={nb.cfg.scale}"
    ours = pd.DataFrame([{"model": nb.start_label, "measured as": f"{PAPER_WAY}, {sc.n_generalization} per variant",
                          "baseline_mean": avg.loc["base", "paper way"], "soo_mean": avg.loc["soo_mse", "paper way"],
                          "source": src},
                         {"model": nb.start_label,
                          "measured as": f"{COUNTERBALANCED_LP}, {sc.n_generalization} per variant and order",
                          "baseline_mean": avg.loc["base", "rate"], "soo_mean": avg.loc["soo_mse", "rate"], "source": src}])
    cols = ["model", "measured as", "baseline_mean", "soo_mean", "source"]
    paper = paper_rows(S.paper_results()["llm_generalization"]["paper_seven_variant_average"], cols)
    return book_table(pd.concat([paper[cols], ours[cols]], ignore_index=True), precision=2)


EXTENDED = ("treasure_hunt", "escape_room")
"""The two extended generalization scenarios."""


def extended_comparison(nb: Notebook, agg: pd.DataFrame):
    """The paper's Treasure Hunt and Escape Room rates (all three models, where the paper gives them) next to ours,
    per scenario; ours counterbalanced by log-prob, mean over seeds."""
    pr = S.paper_results()["llm_generalization"]["paper_extended"]
    rows = [{"scenario": r["scenario"].replace("_", " "), "model": r["model"],
             "measured as": MEASURED_AS[r["source"]],
             "baseline": "" if r.get("baseline") is None else f"{r['baseline']:.2f}",
             "soo": f"{r['soo_mean']:.2f}", "source": r["source"]} for r in pr]
    pv = agg.pivot(index="variant", columns="condition", values="rate")
    sc = nb.cfg
    rows += [{"scenario": v.replace("_", " "), "model": nb.start_label,
              "measured as": f"{COUNTERBALANCED_LP}, {sc.n_generalization} per order",
              "baseline": f"{pv.loc[v, 'base']:.2f}", "soo": f"{pv.loc[v, 'soo_mse']:.2f}",
              "source": f"ours, scale={sc.scale}, {len(sc.generalization_seeds)} seed(s)"} for v in EXTENDED]
    return book_table(pd.DataFrame(rows).sort_values("scenario", kind="stable"))


def generalization_tables(runs) -> dict[str, pd.DataFrame]:
    """The llm_generalization page's tables from its step results ``runs``
    (:func:`soo.llm.experiment.generalization_runs`): ``long`` (:func:`generalization_long`), ``agg``
    (:func:`generalization_agg`) and ``avg7`` (:func:`generalization_avg7`)."""
    long = generalization_long(runs)
    return {"long": long, "agg": generalization_agg(long), "avg7": generalization_avg7(long)}


def glue_llm_generalization(nb: Notebook, runs) -> dict:
    """The values the llm_generalization page glues: ``gen_*``, from the page's step results ``runs``
    (:func:`soo.llm.experiment.generalization_runs`)."""
    tables = generalization_tables(runs)
    agg, avg, comparison = tables["agg"], tables["avg7"], generalization_comparison(nb, tables["avg7"])
    out = {"gen_comparison": comparison, "gen_extended_comparison": extended_comparison(nb, agg)}
    repo = {r["scenario"].split(" ")[0]: r for r in S.paper_results()["llm_generalization"]["repo_mistral_kl_variant"]}
    th = next(r for r in S.paper_results()["llm_generalization"]["paper_extended"]
              if r["scenario"] == "treasure_hunt" and r["model"].startswith("Mistral"))
    out.update(gen_paper_th_mistral_base=float(th["baseline"]), gen_paper_th_mistral_soo=float(th["soo_mean"]),
               **{f"gen_repo_{v}_{k}": float(repo[v][c]) for v in EXTENDED
                  for k, c in (("base", "baseline"), ("soo", "soo_mean"))})
    n_seeds = len(nb.cfg.generalization_seeds)
    out["gen_spread"] = (f"mean ± SD over {n_seeds} seeds" if n_seeds > 1
                         else "one seed: error bars are the run's 95 % Wilson interval over scenarios")
    for cond in ("base", *GENERALIZATION_CONDITIONS):
        out[f"gen_{cond}_avg7"] = float(avg.loc[cond, "rate"])
        out[f"gen_{cond}_avg7_paper_way"] = float(avg.loc[cond, "paper way"])
    pv = agg.pivot(index="variant", columns="condition", values="rate")
    for v in ("treasure_hunt", "escape_room"):
        for cond in ("base", *GENERALIZATION_CONDITIONS):
            out[f"gen_{v}_{cond}"] = float(pv.loc[v, cond])
    long = tables["long"]
    seven = long[long["variant"].isin(S.VARIANTS[:7])].groupby("condition")[["paper order", "mirrored"]].mean()
    soo_p, soo_m = float(seven.loc["soo_mse", "paper order"]), float(seven.loc["soo_mse", "mirrored"])
    out.update(gen_soo_mse_avg7_paper_order=soo_p, gen_soo_mse_avg7_mirrored=soo_m)
    out["gen_bottom"] = (
        f"Over the seven variants SOO (MSE) left {out['gen_soo_mse_avg7']:.1f} % deceptive answers counterbalanced "
        f"(the organism {out['gen_base_avg7']:.1f} %, scenario exposure {out['gen_lm_avg7']:.1f} %), "
        f"{out['gen_soo_mse_avg7_paper_way']:.1f} % the paper's way; by log-prob {soo_p:.0f} % in the paper's order "
        f"and {soo_m:.0f} % mirrored: {scoring.order_pattern(soo_p, soo_m)}")
    return {**out, "gen_scale": nb.cfg.scale, "gen_start": nb.start_label, "gen_n": int(nb.cfg.n_generalization),
            "gen_seeds": ", ".join(map(str, nb.cfg.generalization_seeds)),
            "gen_seeds_text": f"{n_seeds} (seed{'s' * (n_seeds > 1)} {', '.join(map(str, nb.cfg.generalization_seeds))})"}
