"""RL performance, ratios measured in one run (2-core CPU is the target machine).

1. Environment steps/s of the batched environment vs mpe2's ``simple_adversary_v3`` (random actions);
   one "step" = one step of one environment. Target: ratio >= 20.
2. Wall time of one 40k-episode baseline training (MADDPG, default ``num_envs``), extrapolated from a
   partial run of ``--episodes`` episodes (``--episodes 40000`` measures the full run). Target <= 30 min.
3. ``--notebooks``: wall time of the three RL notebooks at the default scale (fresh ``--out-dir``). Target <= 10 min.

Usage: ``python benchmarks/bench_rl.py [--episodes 4000] [--notebooks]``; results also go to
``results/bench/rl.json``.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from soo.rl.config import RLConfig  # noqa: E402
from soo.rl.env import BatchedDeceptionEnv, DeceptionParallelEnv  # noqa: E402
from soo.rl.maddpg import train  # noqa: E402
from soo.utils import atomic_write_json, manifest, project_root  # noqa: E402


def mpe2_steps_per_s(n_steps=20_000, seed=0):
    from mpe2 import simple_adversary_v3

    env = simple_adversary_v3.parallel_env(N=2, max_cycles=50, continuous_actions=True)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    t0, done = time.perf_counter(), 0
    while done < n_steps:
        if not env.agents:
            env.reset()
        env.step({a: rng.uniform(0, 1, 5).astype(np.float32) for a in env.agents})
        done += 1
    return done / (time.perf_counter() - t0)


def parallel_env_steps_per_s(n_steps=20_000, seed=0):
    env = DeceptionParallelEnv()
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    t0, done = time.perf_counter(), 0
    while done < n_steps:
        if not env.agents:
            env.reset()
        env.step({a: rng.uniform(-1, 1, 2) for a in env.agents})
        done += 1
    return done / (time.perf_counter() - t0)


def batched_steps_per_s(num_envs=1000, n_vector_steps=500, seed=0):
    env = BatchedDeceptionEnv(num_envs, seed=seed)
    env.reset()
    rng = np.random.default_rng(seed)
    acts = rng.uniform(-1, 1, (n_vector_steps, 2, num_envs, 2))
    t0 = time.perf_counter()
    for i in range(n_vector_steps):
        _, _, done, _ = env.step(acts[i])
        if done:
            env.reset()
    return num_envs * n_vector_steps / (time.perf_counter() - t0)


def training_time(episodes: int, seed=155):
    torch.set_num_threads(1)
    cfg = RLConfig(mode="deceptive", seed=seed, n_episodes=episodes, save_interval=1000)
    tmp = Path(tempfile.mkdtemp(prefix="bench_rl_"))
    try:
        m = train(cfg, tmp / "run")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return m["wall_time_s"]


def notebooks_time(out_dir: str):
    from soo.notebooks import execute

    times = {}
    for name in ("rl_baselines", "rl_soo", "rl_classification"):
        t0 = time.perf_counter()
        execute(name, scale="default", parameters={"out_dir": out_dir, "fig_dir": f"{out_dir}/figures"}, executed_dir=f"{out_dir}/executed")
        times[name] = time.perf_counter() - t0
    return times


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=4000, help="episodes of the partial training run")
    ap.add_argument("--notebooks", action="store_true", help="also time the RL notebooks at default scale")
    args = ap.parse_args(argv)
    res = {"mpe2_steps_per_s": mpe2_steps_per_s(), "parallel_env_steps_per_s": parallel_env_steps_per_s(),
           "batched_steps_per_s": batched_steps_per_s()}
    res["batched_vs_mpe2"] = res["batched_steps_per_s"] / res["mpe2_steps_per_s"]
    print(f"mpe2 simple_adversary: {res['mpe2_steps_per_s']:12,.0f} env steps/s")
    print(f"DeceptionParallelEnv:  {res['parallel_env_steps_per_s']:12,.0f} env steps/s")
    print(f"BatchedDeceptionEnv:   {res['batched_steps_per_s']:12,.0f} env steps/s  "
          f"({res['batched_vs_mpe2']:.0f}x mpe2; target >= 20x)")
    wall = training_time(args.episodes)
    res.update(train_episodes=args.episodes, train_wall_s=wall, full_40k_min=wall / args.episodes * 40_000 / 60)
    print(f"MADDPG training: {args.episodes} episodes in {wall:.1f} s -> one 40k-episode run "
          f"{res['full_40k_min']:.1f} min (target <= 30 min)")
    if args.notebooks:
        out = tempfile.mkdtemp(prefix="bench_rl_nb_")
        try:
            res["notebooks_s"] = notebooks_time(out)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        total = sum(res["notebooks_s"].values())
        print(f"RL notebooks at default scale: {total / 60:.1f} min (target <= 10 min) {res['notebooks_s']}")
    atomic_write_json(project_root() / "results" / "bench" / "rl.json", {**res, "manifest": manifest()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
