"""Cached experiment steps shared by the three RL notebooks (each trains what it needs if missing).

Layout under ``{out_dir}/{scale}/rl/``::

    baselines/{mode}_seed{seed}/   model.pt, config.json, metrics.json (resume.pt while running)
    soo/{condition}_seed{seed}/    the same, for the fine-tuned blue policies
    eval/{kind}_seed{seed}.json    returns, distances, trap rate, deceptive-movement records, one trajectory
    eval/classification.json       mean-SOO curves and accuracies

Runs are independent processes (``workers``, one torch thread each); finished runs are read back.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..utils import atomic_write_json, manifest, read_json
from .config import CONDITIONS, RLConfig, ScaleConfig
from .env import MODES
from .maddpg import BLUE, is_finished, load_policies, train
from .metrics import (behavioural_difference, classification_accuracy, deceptive_moves, mean_soo_curve, rollout,
                      summary, threshold_grid, truncated_surfaces)
from .soo import make_aux_loss

AGENT_KINDS = MODES + CONDITIONS  # deceptive, honest, soo, capability, random


def rl_dir(out_dir, scale) -> Path:
    return Path(out_dir) / scale / "rl"


def agent_dir(out_dir, scale, kind: str, seed: int) -> Path:
    sub = "baselines" if kind in MODES else "soo"
    return rl_dir(out_dir, scale) / sub / f"{kind}_seed{seed}"


def _job(cfg_dict: dict, run_dir: str, init_dir: str | None) -> dict:
    torch.set_num_threads(1)
    cfg = RLConfig(**cfg_dict)
    init = aux = None
    if init_dir is not None:
        init = load_policies(Path(init_dir))
        aux = make_aux_loss(cfg.soo_condition, init, cfg.radius, np.random.default_rng([cfg.seed, 2]), cfg.soo_batch)
    m = train(cfg, run_dir, init=init, aux_loss=aux)
    return {"wall_time_s": m["wall_time_s"], "last": m["history"][-1]}


def _run_jobs(jobs, workers: int) -> list[dict]:
    todo = [j for j in jobs if not is_finished(j[1], RLConfig(**j[0]))]
    workers = min(workers, os.cpu_count() or 1)
    if workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(min(workers, len(todo)), mp_context=mp.get_context("spawn")) as ex:
            list(ex.map(_job, *zip(*todo)))
    else:
        n = torch.get_num_threads()
        try:
            for j in todo:
                _job(*j)
        finally:
            torch.set_num_threads(n)
    return [read_json(Path(j[1]) / "metrics.json") for j in jobs]


def train_baselines(scfg: ScaleConfig, out_dir, modes=MODES, workers: int | None = None) -> dict:
    """Deceptive and honest baselines for every seed of ``scfg``; returns ``{(mode, seed): metrics}``."""
    keys = [(m, s) for s in scfg.seeds for m in modes]
    jobs = [(scfg.rl_config(m, s).to_dict(), str(agent_dir(out_dir, scfg.scale, m, s)), None) for m, s in keys]
    return dict(zip(keys, _run_jobs(jobs, workers or scfg.workers)))


def finetune(scfg: ScaleConfig, out_dir, conditions=CONDITIONS, workers: int | None = None) -> dict:
    """SOO fine-tuning (and controls) of each seed's deceptive blue policy, in the environment whose
    reward is ``scfg.finetune_reward`` (the paper: deceptive); ``{(condition, seed): metrics}``."""
    train_baselines(scfg, out_dir, modes=("deceptive",), workers=workers)
    keys = [(c, s) for s in scfg.seeds for c in conditions]
    jobs = [(scfg.rl_config(scfg.finetune_reward, s, n_episodes=scfg.soo_episodes, soo_condition=c).to_dict(),
             str(agent_dir(out_dir, scfg.scale, c, s)), str(agent_dir(out_dir, scfg.scale, "deceptive", s)))
            for c, s in keys]
    return dict(zip(keys, _run_jobs(jobs, workers or scfg.workers)))


def load_agent(out_dir, scale, kind: str, seed: int):
    return load_policies(agent_dir(out_dir, scale, kind, seed))


def evaluate_agent(scfg: ScaleConfig, out_dir, kind: str, seed: int) -> dict:
    """``eval_episodes`` deterministic episodes of one trained agent in the deceptive environment (seeded by
    the training seed, so every agent of a seed meets the same initial states); cached in
    ``eval/{kind}_seed{seed}.json``: summary, deceptive-movement records, the first episode's trajectory."""
    path = rl_dir(out_dir, scfg.scale) / "eval" / f"{kind}_seed{seed}.json"
    trained = read_json(agent_dir(out_dir, scfg.scale, kind, seed) / "metrics.json")["config"]
    if path.exists() and read_json(path)["eval_episodes"] == scfg.eval_episodes and read_json(path).get("agent_config") == trained:
        return read_json(path)
    model = load_agent(out_dir, scfg.scale, kind, seed)
    ro = rollout(model, scfg.rl_config("deceptive", seed).env, scfg.eval_episodes, seed=10_000 + seed)
    res = {"seed": seed, "agent": kind, "eval_episodes": scfg.eval_episodes, "agent_config": trained, "summary": summary(ro),
           "records": deceptive_moves(ro), "trajectory": {k: ro[k][0] for k in ("pos", "goal", "fake", "trapped")}}
    atomic_write_json(path, res)
    return read_json(path)


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


def trajectories(scfg: ScaleConfig, out_dir, seed: int | None = None, kinds=AGENT_KINDS) -> dict:
    seed = scfg.seeds[0] if seed is None else seed
    return {k: evaluate_agent(scfg, out_dir, k, seed)["trajectory"] for k in kinds}


def training_history(scfg: ScaleConfig, out_dir, kinds=MODES) -> pd.DataFrame:
    """Per-batch training logs of finished runs, one row per (agent, seed, episode)."""
    rows = []
    for k in kinds:
        for s in scfg.seeds:
            m = read_json(agent_dir(out_dir, scfg.scale, k, s) / "metrics.json")
            rows += [{"agent": k, "seed": s, "wall_time_s": m["wall_time_s"], **h} for h in m["history"]]
    return pd.DataFrame(rows)


def classify(scfg: ScaleConfig, out_dir) -> dict:
    """Mean-SOO classification of the deceptive vs honest baseline of each training seed over
    ``class_seeds`` evaluation seeds; cached in ``eval/classification.json``."""
    path = rl_dir(out_dir, scfg.scale) / "eval" / "classification.json"
    episodes = list(scfg.class_episodes)
    if path.exists():
        old = read_json(path)
        if (old["seeds"], old["episodes"], old["class_seeds"]) == (list(scfg.seeds), episodes, scfg.class_seeds):
            return old
    per_seed = []
    for seed in scfg.seeds:
        curves = {}
        for mode in MODES:
            model = load_agent(out_dir, scfg.scale, mode, seed)
            env_cfg = scfg.rl_config(mode, seed).env
            curves[mode] = []
            for k in range(scfg.class_seeds):  # evaluation seed k: same environments for both agents
                ro = rollout(model, env_cfg, max(episodes), seed=20_000 + k)
                rng = np.random.default_rng([seed, k])
                curves[mode].append(mean_soo_curve(model.policies[BLUE], ro, episodes, rng, env_cfg.radius).tolist())
        acc = classification_accuracy(np.array(curves["honest"]), np.array(curves["deceptive"]))
        per_seed.append({"seed": seed, "accuracy": acc.tolist(), "soo": curves})
    acc = np.array([p["accuracy"] for p in per_seed])
    res = {"scale": scfg.scale, "seeds": list(scfg.seeds), "episodes": episodes, "class_seeds": scfg.class_seeds,
           "per_seed": per_seed,
           "accuracy_mean": acc.mean(0), "accuracy_sd": acc.std(0), "manifest": manifest()}
    atomic_write_json(path, res)
    return read_json(path)
