"""The paper's RL claims and their premises, tested seed by seed (:func:`soo.stats.paired_t_verdict`): the claims
(:func:`claims`, :func:`claims_table`), the swaps that ask whether a difference is the blue's
(:func:`blue_traps_more`, :func:`red_trapped_more`), the pair lottery (:func:`pair_lottery`), and the one-sentence
bottom line those verdicts allow (:func:`bottom_line`). Computed from the cached evaluation steps
(``soo.rl.evaluation``); the pages' glued values are ``soo.rl.book``'s.
"""
from __future__ import annotations

import pandas as pd

from ..stats import paired_t_verdict
from .config import AGENT_KINDS, ScaleConfig
from .diagnostics import pair_claims
from .env import MODES
from .evaluation import (behaviour, deceptive_moves_per_episode, evaluate_agent, reference_blues, reference_frame,
                         summary_table)


CLAIM_NAMES = ("baselines_differ", "blue_deceives", "reduces", "reduces_moves", "beyond_control", "beyond_training",
               "held_reduces", "held_beyond_training", "red_adapts", "like_honest", "capability")
"""The paper's RL claims and their premises that :func:`claims` tests seed by seed, in the order the page lists them."""


def claims_table(cl: dict) -> pd.DataFrame:
    """One row per claim of :data:`CLAIM_NAMES` (``cl``: :func:`claims`): the verdict, the per-seed difference's mean
    and SD, in how many seeds it points the paper's way."""
    return pd.DataFrame({n: {"verdict": cl[n]["verdict"], "mean difference": cl[n]["mean_diff"], "SD": cl[n]["sd_diff"],
                             "seeds in favour": f"{cl[n]['n_better']} of {cl[n]['n']}"} for n in CLAIM_NAMES}).T


def claims(scfg: ScaleConfig, out_dir, table: pd.DataFrame | None = None, beh: dict | None = None) -> dict:
    """The paper's RL behaviour claims, tested seed by seed (:func:`soo.stats.paired_t_verdict`):

    * ``reduces``: the SOO agent traps red less often than the deceptive baseline (paired by seed);
      ``reduces_moves``: it makes fewer deceptive movements per episode with red in sight (all records);
    * ``beyond_control``: it traps red less often than the capability-only control (the SOO term's own effect);
    * ``like_honest``: its behavioural difference to the honest baseline is smaller than to the deceptive one;
    * ``capability``: it stays as close to the goal as the deceptive baseline (``no`` = it is significantly
      farther away: capability lost; ``yes`` otherwise);
    * ``baselines_differ``: the deceptive baseline traps red more often than the honest one; ``blue_deceives``:
      against the deceptive baseline's own red, its blue traps red more often than the honest baseline's blue
      (:func:`blue_traps_more`: the difference is blue's doing, not only red's);
    * ``beyond_training``: SOO traps red less often than plain continued training (no auxiliary term);
      ``held_reduces`` / ``held_beyond_training``: with red held at its baseline, SOO traps red less often than
      the deceptive baseline / than plain continued training with red held; ``red_adapts``: plain continued
      training traps red less often when red keeps learning than when it is held (red's own adaptation);
    * ``controls_reduce``: each control against the deceptive baseline.
    Each: verdict, mean and SD of the per-seed difference, seeds in favour, and the per-seed values.
    ``table`` (:func:`summary_table` of every agent) and ``beh`` (:func:`behaviour`): pass them if already computed."""
    table = summary_table(scfg, out_dir) if table is None else table
    per = {k: table[table.agent == k].set_index("seed").loc[list(scfg.seeds)] for k in AGENT_KINDS}
    beh = behaviour(scfg, out_dir) if beh is None else beh
    moves = deceptive_moves_per_episode(scfg, out_dir, AGENT_KINDS)  # per episode, red in sight
    diff = beh["difference"]
    out = {
        "reduces": paired_t_verdict(per["soo"]["trap_rate"], per["deceptive"]["trap_rate"]),
        "reduces_moves": paired_t_verdict(moves["soo"], moves["deceptive"]),
        "like_honest": paired_t_verdict(diff["soo_vs_honest"]["per_seed"], diff["soo_vs_deceptive"]["per_seed"]),
        "beyond_control": paired_t_verdict(per["soo"]["trap_rate"], per["capability"]["trap_rate"]),
        "capability": paired_t_verdict(per["deceptive"]["blue_dist_goal"], per["soo"]["blue_dist_goal"]),
        "baselines_differ": paired_t_verdict(per["honest"]["trap_rate"], per["deceptive"]["trap_rate"]),
        "blue_deceives": blue_traps_more(scfg, reference_blues(scfg, out_dir)),
        "beyond_training": paired_t_verdict(per["soo"]["trap_rate"], per["plain"]["trap_rate"]),
        "held_reduces": paired_t_verdict(per["soo_held"]["trap_rate"], per["deceptive"]["trap_rate"]),
        "held_beyond_training": paired_t_verdict(per["soo_held"]["trap_rate"], per["plain_held"]["trap_rate"]),
        "red_adapts": paired_t_verdict(per["plain"]["trap_rate"], per["plain_held"]["trap_rate"]),
        "controls_reduce": {c: paired_t_verdict(per[c]["trap_rate"], per["deceptive"]["trap_rate"])
                            for c in ("capability", "random", "plain", "plain_held")},
        "per_seed": {"trap_rate": {k: per[k]["trap_rate"].tolist() for k in AGENT_KINDS},
                     "blue_dist_goal": {k: per[k]["blue_dist_goal"].tolist() for k in AGENT_KINDS},
                     "deceptive_moves": moves, "seeds": list(scfg.seeds)},
    }
    # "capability kept" is the opposite question (is SOO *farther* from the goal?): yes = not significantly farther
    cap = out["capability"]
    cap["verdict"] = {"yes": "no", "no": "yes", "not resolved": "yes"}[cap["verdict"]]
    return out


def blue_traps_more(scfg: ScaleConfig, ref: dict, than: str = "learned_honest", red: str = "deceptive") -> dict:
    """Is a difference in trapping *blue's* doing? Against each seed's ``red`` (default: the deceptive baseline's),
    does the learned deceptive blue trap red more often than blue ``than`` (default: the honest baseline's learned
    blue; ``"goal"``: the straight-to-goal reference blue)? :func:`soo.stats.paired_t_verdict` over seeds."""
    df = reference_frame(ref)
    trap = {b: df[(df.red == red) & (df.blue == b)].set_index("seed").loc[list(scfg.seeds), "trap_rate"]
            for b in ("learned_deceptive", than)}
    return paired_t_verdict(trap[than], trap["learned_deceptive"])


def red_trapped_more(scfg: ScaleConfig, ref: dict, blue: str = "goal") -> dict:
    """Is a difference in trapping *red's* doing? With the same ``blue`` (default: the straight-to-goal reference
    blue) in every world, is the deceptive baseline's red trapped more often than the honest baseline's red?
    :func:`soo.stats.paired_t_verdict` over seeds."""
    df = reference_frame(ref)
    trap = {r: df[(df.red == r) & (df.blue == blue)].set_index("seed").loc[list(scfg.seeds), "trap_rate"]
            for r in MODES}
    return paired_t_verdict(trap["honest"], trap["deceptive"])


PAIR_CLAIMS = {"baselines_differ": "Baselines differ (deceptive traps more)",
               "reduces": "SOO traps less than deceptive",
               "beyond_control": "SOO traps less than capability term",
               "beyond_training": "SOO traps less than continued training",
               "like_honest": "SOO behaves more like honest",
               "capability": "SOO keeps capability",
               "classifier_perfect": "Mean-SOO classifier perfect"}
"""The claims :func:`pair_lottery` reads per trained pair, with their labels."""


def pair_lottery(scfg: ScaleConfig, out_dir, beh: dict | None = None, cls_res: dict | None = None) -> pd.DataFrame:
    """Each training seed's agents analysed alone, as the paper analysed its one trained triple: one row per seed,
    one boolean column per claim of :data:`PAIR_CLAIMS` (:func:`soo.rl.diagnostics.pair_claims`: trap-rate and
    distance claims by a paired t-test over that seed's evaluation episodes). ``beh``: :func:`behaviour`;
    ``cls_res``: :func:`classify` (the classifier column is left out without it)."""
    beh = behaviour(scfg, out_dir) if beh is None else beh
    kinds = ("deceptive", "honest", "soo", "capability", "plain")
    rows = []
    for i, seed in enumerate(scfg.seeds):
        ep = {k: evaluate_agent(scfg, out_dir, k, seed)["per_episode"] for k in kinds}
        mse = {p: beh["difference"][p]["per_seed"][i] for p in ("soo_vs_honest", "soo_vs_deceptive")}
        acc = None if cls_res is None else cls_res["per_seed"][i]["accuracy"][-1]
        rows.append({"seed": seed, **pair_claims(ep, mse, acc)})
    return pd.DataFrame(rows).set_index("seed")


TRAP_RATE_CLAIMS = ("reduces", "beyond_control", "baselines_differ", "blue_deceives", "beyond_training",
                    "held_reduces", "held_beyond_training", "red_adapts")
"""Claims on trap rates: their differences are glued in percentage points."""


def bottom_line(cl: dict) -> str:
    """One sentence on what this setting's runs can say about SOO (glued, so the words follow the run): whether the
    premise holds (the deceptive baseline traps red more often than the honest one, :func:`claims`), and if it does,
    the verdicts of SOO against the baseline and against continued training."""
    b, d = cl["baselines_differ"], cl["blue_deceives"]
    if b["verdict"] != "yes":
        return (f"the deceptive baseline does not trap red significantly more often than the honest one here "
                f"(higher in {b['n_better']} of {b['n']} seeds), so there is no deception for SOO to remove, and the "
                f"SOO verdicts of this setting test neither the paper's claim nor its opposite")
    if d["verdict"] != "yes":
        return (f"the deceptive baseline traps red more often than the honest one (higher in {b['n_better']} of "
                f"{b['n']} seeds), but not demonstrably through its blue: against the same red, the honest baseline's "
                f"blue traps it about as often (the deceptive blue higher in {d['n_better']} of {d['n']} seeds, "
                f"{d['verdict']} by the paired test), so SOO fine-tuning of blue has no demonstrated deception of "
                f"blue's to remove, and its verdicts test neither the paper's claim nor its opposite")
    return (f"the deceptive baseline traps red more often than the honest one here ({b['n_better']} of {b['n']} "
            f"seeds), and through its blue ({d['n_better']} of {d['n']} seeds against the same red), so the claims are "
            f"tested: SOO reduces trapping, {cl['reduces']['verdict']}; beyond continued training, "
            f"{cl['beyond_training']['verdict']}; with red held, {cl['held_reduces']['verdict']}")
