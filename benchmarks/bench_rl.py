"""RL performance, ratios measured in one run (2-core CPU is the target machine).

1. Environment steps/s of the batched environment vs mpe2's ``simple_adversary_v3`` (random actions);
   one "step" = one step of one environment. Target: ratio >= 20.
2. Wall time of one 40k-episode baseline training (MADDPG, default ``num_envs``), extrapolated from a
   partial run of ``--episodes`` episodes (``--episodes 40000`` measures the full run). Target <= 30 min.
3. ``--notebooks``: wall time of the three RL notebooks at the default scale (fresh ``--out-dir``). Target <= 10 min.

4. ``--stacked``: the training speed-ups, on ``--device`` (cpu or cuda):
   ``update_speedup``: one update round (replay sample, both agents' updates, target update) of
   :class:`StackedMADDPG` with K = 1 vs :meth:`MADDPG.update_reference` with the reference buffer, same
   inputs (full 1e6-transition buffers), the median ratio of 25 interleaved pairs (which side goes first
   alternates); ``stacked_speedup``: ``--stack-k`` (16) runs of ``--stack-episodes`` episodes trained as one
   stack vs the same runs one at a time; ``full_protocol_minutes``: the 40-run protocol's wall time, measured
   (``--full-protocol``, runs ``soo.rl.experiment``) or extrapolated: on a CPU from the same 40 runs, stacks and
   2 workers at 1/``--protocol-fraction`` (20) of the episodes, on a GPU from the stacked speed (the JSON says
   which). Ends with one JSON line.

Usage: ``python benchmarks/bench_rl.py [--episodes 4000] [--notebooks] [--stacked [--device cuda]]``; results
also go to ``results/bench/rl.json``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from soo.rl.config import FINETUNE_KINDS, RLConfig  # noqa: E402
from soo.rl.env import BatchedDeceptionEnv, DeceptionParallelEnv  # noqa: E402
from soo.rl.maddpg import MADDPG, ReplayBuffer  # noqa: E402
from soo.rl.stacked import StackedMADDPG, StackedReplayBuffer  # noqa: E402
from soo.rl.training import train, train_stacked  # noqa: E402
from soo.files import atomic_write_json  # noqa: E402
from soo.provenance import manifest  # noqa: E402
from soo.utils import project_root  # noqa: E402


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


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def update_speedup(device="cpu", n_fill=1_000_000, reps=25, rounds=10, seed=0):
    """Time of one update round, reference vs fast (K = 1), on identical full buffers and generators: ``reps``
    interleaved pairs of ``rounds`` rounds each, so a burst of machine noise hits both sides of one pair; the
    speed-up is the median of the pairs' ratios (their range is reported too)."""
    import copy

    cfg = RLConfig(seed=3)
    rb, sb = ReplayBuffer(n_fill), StackedReplayBuffer(1, n_fill)
    g = np.random.default_rng(seed)
    for _ in range(n_fill // 100_000):
        m = 100_000
        obs = [g.standard_normal((m, 6)).astype(np.float32), g.standard_normal((m, 10)).astype(np.float32)]
        obs[1][: m // 2, 6:8] = 0
        nxt = [g.standard_normal((m, 6)).astype(np.float32), g.standard_normal((m, 10)).astype(np.float32)]
        acs = [g.uniform(-1, 1, (m, 2)).astype(np.float32) for _ in range(2)]
        rew = g.standard_normal((m, 2)).astype(np.float32)
        rb.push(obs, acs, rew, nxt)
        sb.push([o[None] for o in obs], [a[None] for a in acs], rew[None], [o[None] for o in nxt])
    torch.manual_seed(3)
    ref = MADDPG(cfg)
    fast = StackedMADDPG([copy.deepcopy(ref)], device)
    ref = ref.to(device)
    ref.policy_opts = [torch.optim.Adam(p.parameters(), lr=cfg.lr) for p in ref.policies]
    ref.critic_opts = [torch.optim.Adam(c.parameters(), lr=cfg.lr) for c in ref.critics]
    r1, r2 = np.random.default_rng(1), np.random.default_rng(1)

    def ref_round():
        for a in range(2):
            s = rb.sample(cfg.batch_size, r1)
            s = tuple([t.to(device) for t in x] if isinstance(x, list) else x.to(device) for x in s)
            ref.update_reference(s, a)
        ref.update_targets()

    def fast_round():
        for a in range(2):
            fast.update(sb.sample(cfg.batch_size, [r2], fast.device), a)
        fast.update_targets()

    def timed(f):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(rounds):
            f()
        _sync(device)
        return (time.perf_counter() - t0) / rounds

    for f in (ref_round, fast_round):  # warm-up (allocator, kernels), untimed
        for _ in range(3):
            f()
    pairs = []
    for i in range(reps):  # which side goes first alternates
        first, second = (ref_round, fast_round) if i % 2 == 0 else (fast_round, ref_round)
        t = {first: timed(first), second: timed(second)}
        pairs.append((t[ref_round], t[fast_round]))
    ratios = [r / f for r, f in pairs]
    return {"update_round_ref_ms": 1e3 * float(np.median([r for r, _ in pairs])),
            "update_round_fast_ms": 1e3 * float(np.median([f for _, f in pairs])),
            "update_speedup": float(np.median(ratios)), "update_speedup_range": [min(ratios), max(ratios)],
            "update_pairs": reps}


def stacked_speedup(device="cpu", k=16, episodes=200):
    """``k`` baselines of ``episodes`` episodes (paper settings otherwise) as one stack vs one at a time."""
    cfgs = [RLConfig(mode=("deceptive", "honest")[i % 2], seed=100 + i, n_episodes=episodes, save_interval=10**6)
            for i in range(k)]
    tmp = Path(tempfile.mkdtemp(prefix="bench_rl_stack_"))
    try:
        t0 = time.perf_counter()
        train_stacked(cfgs, [tmp / f"s{i}" for i in range(k)], device=device)
        stacked = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i, c in enumerate(cfgs):
            train(c, tmp / f"o{i}", device=device)
        one = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"stack_k": k, "stack_episodes": episodes, "stacked_s": stacked, "one_at_a_time_s": one,
            "stacked_speedup": one / stacked}


def scaled_protocol(fraction=20, workers=2):
    """The full protocol's 40 runs, stacks and workers exactly as ``make rl-full`` on a CPU, at 1/``fraction`` of
    the episodes: per stage, the stacks' training-loop seconds (from the runs' ``wall_time_s``, so process start-up
    is not extrapolated) summed and shared over the workers, scaled back to the full episode counts."""
    from soo.rl.config import scale_config
    from soo.rl.runs import baseline_runs, finetune_runs, run_all, stage_stacks

    full = scale_config("full")
    scfg = scale_config("full", baseline_episodes=full.baseline_episodes // fraction,
                        soo_episodes=full.soo_episodes // fraction)
    tmp = Path(tempfile.mkdtemp(prefix="bench_rl_protocol_"))
    out = {}
    try:
        for stage, runs in (("baselines", baseline_runs(scfg)), ("finetune", finetune_runs(scfg))):
            t0 = time.perf_counter()
            metrics = run_all(runs, tmp, "full", workers, kept_dir=None, cpu_stack=scfg.cpu_stack)
            stacks = stage_stacks(runs, scfg.cpu_stack)
            loop_s = sum(metrics[(st[0].kind, st[0].seed)]["wall_time_s"] for st in stacks)
            out[stage] = {"runs": len(runs), "stacks": len(stacks), "wall_s": time.perf_counter() - t0,
                          "loop_s": loop_s, "full_min": loop_s / min(workers, len(stacks)) * fraction / 60}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def full_protocol(device="cpu", workers=2, measure=False, stacked=None, fraction=20):
    """The 40-run protocol's wall time: measured by running it, or extrapolated (which is said)."""
    from soo.rl.config import scale_config

    scfg = scale_config("full")
    if measure:
        t0 = time.perf_counter()
        from soo.rl.experiment import main as rl_main

        args = ["--scale", "full"] + (["--device", device] if torch.device(device).type == "cuda" else
                                      ["--workers", str(workers)])
        rl_main(args)
        return {"full_protocol_minutes": (time.perf_counter() - t0) / 60, "full_protocol_how": "measured"}
    if torch.device(device).type == "cuda" and stacked is not None:
        # fine-tuning episodes cost ~1.3x a baseline episode (the extra SOO step)
        n_base, n_ft = 2 * len(scfg.seeds), len(FINETUNE_KINDS) * len(scfg.seeds)
        episode_units = n_base * scfg.baseline_episodes + 1.3 * n_ft * scfg.soo_episodes
        per_stack_episode = stacked["stacked_s"] / stacked["stack_episodes"]  # K runs per stack episode
        minutes = episode_units / stacked["stack_k"] * per_stack_episode / 60
        return {"full_protocol_minutes": minutes,
                "full_protocol_how": f"extrapolated from a {stacked['stack_k']}-run stack of {stacked['stack_episodes']} episodes"}
    parts = scaled_protocol(fraction, workers)
    return {"full_protocol_minutes": sum(p["full_min"] for p in parts.values()), "full_protocol_parts": parts,
            "full_protocol_how": f"extrapolated from the 40 runs at 1/{fraction} of the episodes "
                                 f"(same stacks of {scfg.cpu_stack}, {workers} workers)"}


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
    ap.add_argument("--stacked", action="store_true", help="update / stacking speed-ups and the protocol's time")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (with --stacked)")
    ap.add_argument("--stack-k", type=int, default=16)
    ap.add_argument("--stack-episodes", type=int, default=200)
    ap.add_argument("--full-protocol", action="store_true", help="with --stacked: run the whole protocol (long)")
    ap.add_argument("--protocol-fraction", type=int, default=20,
                    help="with --stacked on a CPU: extrapolate from the protocol at 1/this of the episodes")
    args = ap.parse_args(argv)
    if args.stacked:
        return stacked_main(args)
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


def stacked_main(args) -> int:
    torch.set_num_threads(1)
    dev = args.device
    res = {"device": dev, "gpu": torch.cuda.get_device_name(0) if torch.device(dev).type == "cuda" else None}
    res.update(update_speedup(dev))
    lo, hi = res["update_speedup_range"]
    print(f"update round: reference {res['update_round_ref_ms']:.2f} ms, fast {res['update_round_fast_ms']:.2f} ms "
          f"(medians) -> {res['update_speedup']:.2f}x, median of {res['update_pairs']} interleaved pairs (range "
          f"{lo:.2f}-{hi:.2f}; target >= 2 on 2 CPU cores)", flush=True)
    res.update(stacked_speedup(dev, args.stack_k, args.stack_episodes))
    print(f"{args.stack_k} runs x {args.stack_episodes} episodes: stacked {res['stacked_s']:.1f} s, one at a time "
          f"{res['one_at_a_time_s']:.1f} s -> {res['stacked_speedup']:.2f}x", flush=True)
    res.update(full_protocol(dev, 2, args.full_protocol, res, args.protocol_fraction))
    print(f"full protocol (40 runs): {res['full_protocol_minutes']:.1f} min ({res['full_protocol_how']})", flush=True)
    atomic_write_json(project_root() / "results" / "bench" / f"rl_stacked_{torch.device(dev).type}.json",
                      {**res, "manifest": manifest()})
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
