"""Evaluating finished runs, cached on disk: one agent's deterministic episodes (:func:`evaluate_agent`) and what
the pages compute from them (summary table, behaviour surfaces, classification, reference blues, training logs,
provenance). The formulas are ``soo.rl.metrics`` and ``soo.rl.diagnostics``; the runs are ``soo.rl.runs``.

Files under ``{out_dir}/{tag}/rl/eval/``::

    {kind}_seed{seed}.json    returns, distances, trap rate, deceptive-movement records, one trajectory
    classification.json       mean-SOO curves and accuracies
    reference_blues.json      every baseline red against the learned and the scripted reference blues

They are :func:`soo.files.cached` results (``{"_key": settings, "value": result}``): the key holds the evaluation
settings and the trained settings of every agent evaluated, with a digest of its weights, so retraining an agent
(or changing the evaluation) recomputes them.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..files import cached, read_json
from ..provenance import manifest
from ..utils import torch_threads
from .config import AGENT_KINDS, FINETUNE_KINDS, ScaleConfig
from .diagnostics import REFERENCE_BLUES, reference_table
from .env import MODES
from .maddpg import BLUE
from .metrics import (behavioural_difference, classification_accuracy, deceptive_moves, mean_soo_curve, per_episode,
                      rollout, summary, threshold_grid, truncated_surfaces)
from .runs import agent_dir, protocol_runs, rl_dir
from .training import load_policies, weights_digest

EVAL_THREADS = 1
"""Torch threads of the evaluation rollouts: the policies are tiny, and on a 2-core machine two threads made the
rollouts about 6x slower than one (the thread count does not change the digits: checked on the book's glued values)."""


NOTEBOOK_OF = {**{m: "rl_baselines" for m in MODES}, **{c: "rl_soo" for c in FINETUNE_KINDS}}


def _trained_dir(out_dir, scale, kind: str, seed: int) -> Path:
    """The folder of a finished run; a clear error (which notebook to run first) if there is none."""
    d = agent_dir(out_dir, scale, kind, seed)
    if not (d / "model.pt").exists():
        raise FileNotFoundError(f"no trained {kind} agent for seed {seed} in {d}: run notebooks/{NOTEBOOK_OF[kind]} "
                                f"(or soo.rl.experiment.{'train_baselines' if kind in MODES else 'finetune'}) "
                                f"with the same scale, seeds and out_dir first.")
    return d


def load_agent(out_dir, scale, kind: str, seed: int):
    return load_policies(_trained_dir(out_dir, scale, kind, seed))


def trained_settings(out_dir, scale, kind: str, seed: int) -> dict:
    """What a finished run was trained with (its ``metrics.json`` config and settings key) and a digest of its
    weights: part of the cache key of every result computed from it, so a retrained or newly restored agent is
    evaluated again even when its settings did not change."""
    d = _trained_dir(out_dir, scale, kind, seed)
    m = read_json(d / "metrics.json")
    return {"config": m["config"], "settings_key": m.get("settings_key"), "weights": weights_digest(d / "model.pt")}


def evaluate_agent(scfg: ScaleConfig, out_dir, kind: str, seed: int) -> dict:
    """``eval_episodes`` deterministic episodes of one trained agent in the deceptive environment (seeded by
    the training seed, so every agent of a seed meets the same initial states); cached in
    ``eval/{kind}_seed{seed}.json``: summary, deceptive-movement records, the first episode's trajectory."""
    env_cfg = scfg.rl_config("deceptive", seed).env
    key = {"agent": kind, "seed": seed, "eval_episodes": scfg.eval_episodes, "eval_seed": 10_000 + seed,
           "env": asdict(env_cfg), "trained": trained_settings(out_dir, scfg.tag, kind, seed), "per_episode": True}

    def compute():
        with torch_threads(EVAL_THREADS):
            ro = rollout(load_agent(out_dir, scfg.tag, kind, seed), env_cfg, scfg.eval_episodes, seed=10_000 + seed)
        return {"seed": seed, "agent": kind, "eval_episodes": scfg.eval_episodes, "summary": summary(ro),
                "per_episode": per_episode(ro), "records": deceptive_moves(ro),
                "trajectory": {k: ro[k][0] for k in ("pos", "goal", "fake", "trapped")}}

    return cached(rl_dir(out_dir, scfg.tag) / "eval" / f"{kind}_seed{seed}.json", key, compute)


def summary_table(scfg: ScaleConfig, out_dir, kinds=AGENT_KINDS) -> pd.DataFrame:
    """One row per (agent, seed): mean returns, distances, trap rate."""
    rows = [{"agent": k, "seed": s, **evaluate_agent(scfg, out_dir, k, s)["summary"]} for s in scfg.seeds for k in kinds]
    return pd.DataFrame(rows)


def behaviour(scfg: ScaleConfig, out_dir) -> dict:
    """Count surfaces (per seed, truncated to the shortest record list as the official code does), their
    mean and SD over seeds, and the behavioural difference between SOO, honest and deceptive agents."""
    xs, ys = threshold_grid(scfg.grid)
    per_seed = []
    for seed in scfg.seeds:
        rec = {k: np.asarray(evaluate_agent(scfg, out_dir, k, seed)["records"]).reshape(-1, 3)
               for k in ("deceptive", "honest", "soo")}
        per_seed.append(truncated_surfaces(rec, xs, ys))
    kinds = ("deceptive", "honest", "soo")
    return {"xs": xs, "ys": ys, "per_seed": per_seed,
            "mean": {k: np.mean([s[k] for s in per_seed], 0) for k in kinds},
            "sd": {k: np.std([s[k] for s in per_seed], 0) for k in kinds},
            "difference": behavioural_difference(per_seed)}


def same_weights(scfg: ScaleConfig, out_dir, a: str = "capability", b: str = "random") -> list[bool]:
    """Per seed of ``scfg``: do the finished runs of kinds ``a`` and ``b`` hold the same weights, bit for bit?
    (The random control computes the capability-only training; :func:`stage_stacks` keeps the rounding equal.)"""
    out = []
    for seed in scfg.seeds:
        sa, sb = (torch.load(agent_dir(out_dir, scfg.tag, k, seed) / "model.pt", map_location="cpu",
                             weights_only=True) for k in (a, b))
        out.append(all(sa[p].keys() == sb[p].keys() and all(torch.equal(v, sb[p][n]) for n, v in sa[p].items())
                       for p in ("policies", "critics")))
    return out


def provenance(scfg: ScaleConfig, out_dir, kinds=AGENT_KINDS) -> pd.DataFrame:
    """Where each finished run of ``scfg`` (of the agent ``kinds``) was trained: machine, device, stack size, wall
    time, code commit."""
    rows = []
    for r in protocol_runs(scfg):
        d = agent_dir(out_dir, scfg.tag, r.kind, r.seed)
        if r.kind not in kinds or not (d / "metrics.json").exists():
            continue
        m = read_json(d / "metrics.json")
        on = m.get("trained_on") or {}
        mach = on.get("machine") or {}
        rows.append({"run": r.name, "cpu": mach.get("cpu"), "cpu_count": mach.get("cpu_count"),
                     "where": mach.get("platform"), "device": m.get("device"), "stacked_runs": m.get("stacked_runs"),
                     "wall_time_s": m["wall_time_s"], "commit": (on.get("git_commit") or "")[:10]})
    return pd.DataFrame(rows)


def trajectories(scfg: ScaleConfig, out_dir, seed: int | None = None, kinds=AGENT_KINDS) -> dict:
    seed = scfg.seeds[0] if seed is None else seed
    return {k: evaluate_agent(scfg, out_dir, k, seed)["trajectory"] for k in kinds}


def training_history(scfg: ScaleConfig, out_dir, kinds=MODES) -> pd.DataFrame:
    """Per-batch training logs of finished runs, one row per (agent, seed, episode)."""
    rows = []
    for k in kinds:
        for s in scfg.seeds:
            m = read_json(agent_dir(out_dir, scfg.tag, k, s) / "metrics.json")
            rows += [{"agent": k, "seed": s, "wall_time_s": m["wall_time_s"], **h} for h in m["history"]]
    return pd.DataFrame(rows)


def classify(scfg: ScaleConfig, out_dir) -> dict:
    """Mean-SOO classification of the deceptive vs honest baseline of each training seed over
    ``class_seeds`` evaluation seeds; cached in ``eval/classification.json`` (recomputed when the seeds, the
    episodes, the evaluation seeds or any baseline's trained settings change)."""
    episodes = list(scfg.class_episodes)
    key = {"seeds": list(scfg.seeds), "episodes": episodes, "class_seeds": scfg.class_seeds,
           "envs": {m: asdict(scfg.rl_config(m, scfg.seeds[0]).env) for m in MODES},
           "baselines": {f"{m}_seed{s}": trained_settings(out_dir, scfg.tag, m, s) for s in scfg.seeds for m in MODES}}

    def compute():
        with torch_threads(EVAL_THREADS):
            return _classify(scfg, out_dir, episodes)

    return cached(rl_dir(out_dir, scfg.tag) / "eval" / "classification.json", key, compute)


def _classify(scfg: ScaleConfig, out_dir, episodes: list) -> dict:
    """:func:`classify`'s computation: the mean-SOO curves of both baselines of each seed and the accuracies."""
    per_seed = []
    for seed in scfg.seeds:
        curves = {}
        for mode in MODES:
            model = load_agent(out_dir, scfg.tag, mode, seed)
            env_cfg = scfg.rl_config(mode, seed).env
            curves[mode] = []
            for k in range(scfg.class_seeds):  # evaluation seed k: same environments for both agents
                ro = rollout(model, env_cfg, max(episodes), seed=20_000 + k)
                rng = np.random.default_rng([seed, k])
                curves[mode].append(mean_soo_curve(model.policies[BLUE], ro, episodes, rng, env_cfg.radius).tolist())
        acc = classification_accuracy(np.array(curves["honest"]), np.array(curves["deceptive"]))
        per_seed.append({"seed": seed, "accuracy": acc.tolist(), "soo": curves})
    acc = np.array([p["accuracy"] for p in per_seed])
    return {"scale": scfg.scale, "seeds": list(scfg.seeds), "episodes": episodes, "class_seeds": scfg.class_seeds,
            "per_seed": per_seed, "accuracy_mean": acc.mean(0), "accuracy_sd": acc.std(0), "manifest": manifest()}


def reference_blues(scfg: ScaleConfig, out_dir) -> dict:
    """Every seed's baseline reds against the learned blues and the scripted reference blues
    (:func:`soo.rl.diagnostics.reference_table`: trap rate, blue's return undiscounted and discounted at the
    training discount, under the deceptive reward), on the evaluation episodes of :func:`evaluate_agent`;
    ``{"rows": [...], "gamma": ..}``, cached in ``eval/reference_blues.json`` under the baselines' trained settings."""
    gamma = scfg.rl_config("deceptive", scfg.seeds[0]).gamma
    key = {"seeds": list(scfg.seeds), "eval_episodes": scfg.eval_episodes, "gamma": gamma,
           "blues": list(REFERENCE_BLUES), "env": asdict(scfg.rl_config("deceptive", scfg.seeds[0]).env),
           "baselines": {f"{m}_seed{s}": trained_settings(out_dir, scfg.tag, m, s) for s in scfg.seeds for m in MODES}}

    def compute():
        rows = []
        with torch_threads(EVAL_THREADS):
            for seed in scfg.seeds:
                models = {m: load_agent(out_dir, scfg.tag, m, seed) for m in MODES}
                env_cfg = scfg.rl_config("deceptive", seed).env
                rows += [{"seed": seed, **r} for r in reference_table(models, env_cfg, scfg.eval_episodes,
                                                                      10_000 + seed, gamma)]
        return {"rows": rows, "gamma": gamma}

    return cached(rl_dir(out_dir, scfg.tag) / "eval" / "reference_blues.json", key, compute)


def reference_frame(ref: dict) -> pd.DataFrame:
    """:func:`reference_blues`' rows as a table, one row per (seed, red, blue)."""
    return pd.DataFrame(ref["rows"])


def deceptive_moves_per_episode(scfg: ScaleConfig, out_dir, kinds=MODES) -> dict:
    """``{kind: per-seed list}`` of the official deceptive-movement count with red in sight, per episode."""
    return {k: [float((np.asarray(evaluate_agent(scfg, out_dir, k, s)["records"]).reshape(-1, 3)[:, 2] > 0).sum())
                / scfg.eval_episodes for s in scfg.seeds] for k in kinds}
