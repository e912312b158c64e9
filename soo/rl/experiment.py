"""The steps of the RL experiment, cached on disk: the run registry of a scale (:class:`Run`), the runs kept with the
book, training (or reading back, or restoring) the runs, and evaluating them. The tables, claims and glued values
the pages show are computed from these steps in ``soo.rl.book``; no figures (``soo.rl.figures``), no metric
formulas (``soo.rl.metrics``, ``soo.rl.diagnostics``) and no training code (``soo.rl.stacked``) here.

Layout under ``{out_dir}/{tag}/rl/`` (``tag``: the scale, plus ``_{setting}`` for a training setting other than the
official one, :attr:`soo.rl.config.ScaleConfig.tag`)::

    baselines/{mode}_seed{seed}/   model.pt, config.json, metrics.json (resume.pt while running)
    soo/{condition}_seed{seed}/    the same, for the fine-tuned blue policies
    eval/{kind}_seed{seed}.json    returns, distances, trap rate, deceptive-movement records, one trajectory
    eval/classification.json       mean-SOO curves and accuracies
    eval/reference_blues.json      every baseline red against the learned and the scripted reference blues

The ``eval`` files are :func:`soo.utils.cached` results (``{"_key": settings, "value": result}``): the key holds
the evaluation settings and the trained settings of every agent evaluated, so retraining an agent (or changing
the evaluation) recomputes them.

A run is found, in this order: finished in ``out_dir`` with the same settings (and, where a kept copy with the
same settings key exists, with that copy's weights); **kept with the book** (``book/data/rl_full/{setting}/``, the
paper's full protocol computed once by ``make rl-full``, restored into ``out_dir`` when its settings key matches);
else trained. Evaluations are cached under the trained settings and a digest of the weights. On a CPU, the
runs of a stage train in stacks of at most ``cpu_stack`` (4) runs, in ``workers`` processes with one torch
thread each; on a GPU, all runs of a stage train as one stack.

``python -m soo.rl.experiment --scale full [--setting NAME] --keep`` (``make rl-full``) trains the whole protocol
from nothing and writes the kept runs: ``model.safetensors``, ``metrics.json`` and ``manifest.json`` (with the
weights' sha256, checked before a kept run is restored) per run, plus ``protocol.json`` (machine, wall time).
``python -m soo.rl.experiment --record-fingerprint`` records what the training code computes
(:func:`training_fingerprint`, ``soo.rl.runs.TRAINING_FINGERPRINT``).
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..utils import (atomic_directory, atomic_write_json, cached, check_choice, machine_info, manifest, project_root,
                     read_json, run_parallel, torch_threads, written_with)
from .config import AGENT_KINDS, FINETUNE_KINDS, SETTINGS, RLConfig, ScaleConfig, scale_config
from .diagnostics import REFERENCE_BLUES, reference_table
from .env import MODES
from .maddpg import BLUE, MADDPG
from .metrics import (behavioural_difference, classification_accuracy, deceptive_moves, mean_soo_curve, per_episode,
                      rollout, summary, threshold_grid, truncated_surfaces)
from .runs import TRAINING_FINGERPRINT, TRAINING_VERSION, is_finished, load_policies, save_policies, settings_key
from .soo import make_aux_loss
from .stacked import train_stacked

TRAIN_THREADS = 1
"""Torch threads of a training stack on a CPU: the networks are tiny, so threads do not pay; the process pool
(:func:`soo.utils.run_parallel`) runs stacks side by side instead."""
EVAL_THREADS = 1
"""Torch threads of the evaluation rollouts: the policies are tiny, and on a 2-core machine two threads made the
rollouts about 6x slower than one (the thread count does not change the digits: checked on the book's glued values)."""
KEPT_ROOT = project_root() / "book" / "data" / "rl_full"
"""The full-protocol runs kept with the book, one folder per training setting (``make rl-full`` writes them;
``tests/test_rl_kept.py`` checks them)."""


def kept_dir_of(setting: str = "official") -> Path:
    """Where the kept full-protocol runs of ``setting`` (:data:`soo.rl.config.SETTINGS`) live."""
    check_choice("setting", setting, tuple(SETTINGS))
    return KEPT_ROOT / setting


KEPT_DIR = kept_dir_of("official")


def rl_dir(out_dir, scale) -> Path:
    return Path(out_dir) / scale / "rl"


def _sub(kind: str) -> str:
    return "baselines" if kind in MODES else "soo"


def agent_dir(out_dir, scale, kind: str, seed: int) -> Path:
    return rl_dir(out_dir, scale) / _sub(kind) / f"{kind}_seed{seed}"


@dataclass(frozen=True)
class Run:
    """One training run of the protocol: a baseline (``kind`` = mode) or a fine-tuning (``kind`` = condition)."""
    kind: str
    seed: int
    cfg: RLConfig
    init: "Run | None" = None
    """the deceptive baseline a fine-tuning starts from"""

    @property
    def name(self) -> str:
        return f"{self.kind}_seed{self.seed}"

    @property
    def key(self) -> str:
        """Settings key of the run and, for a fine-tuning, of the baseline it starts from."""
        own = settings_key(self.cfg)
        return own if self.init is None else hashlib.sha256(f"{own}/{self.init.key}".encode()).hexdigest()[:16]


def baseline_runs(scfg: ScaleConfig, modes=MODES) -> list[Run]:
    return [Run(m, s, scfg.rl_config(m, s)) for s in scfg.seeds for m in modes]


def finetune_runs(scfg: ScaleConfig, conditions=FINETUNE_KINDS) -> list[Run]:
    return [Run(c, s, scfg.finetune_config(c, s), init=Run("deceptive", s, scfg.rl_config("deceptive", s)))
            for s in scfg.seeds for c in conditions]


def protocol_runs(scfg: ScaleConfig) -> list[Run]:
    """Every training run of a scale: the baselines, then the fine-tunings."""
    return baseline_runs(scfg) + finetune_runs(scfg)


def _aux(run: Run, init: MADDPG):
    cfg = run.cfg
    return make_aux_loss(cfg.soo_condition, init, cfg.radius, np.random.default_rng([cfg.seed, 2]), cfg.soo_batch)


def _train_stack(job: list[tuple[dict, str, str | None]], device=None) -> None:
    """Runs of one stage trained as one stack in this process (on a CPU :func:`soo.utils.run_parallel` gives it
    :data:`TRAIN_THREADS` torch threads). ``job``: per run, its config as a dict, its folder, and the folder of the
    baseline it starts from (or None)."""
    cfgs = [RLConfig(**c) for c, _, _ in job]
    inits = [None if d is None else load_policies(Path(d)) for _, _, d in job]
    aux = [None if m is None else _aux(Run(c.soo_condition, c.seed, c), m) for c, m in zip(cfgs, inits)]
    if any(a is None for a in aux) and any(a is not None for a in aux):
        raise ValueError("_train_stack: a stack holds runs with an auxiliary term or runs without, not both.")
    train_stacked(cfgs, [d for _, d, _ in job], inits, aux, device=device or "cpu")


def stage_stacks(runs: list[Run], size: int) -> list[list[Run]]:
    """A stage's runs in CPU stacks of one kind each (:func:`cpu_stacks` per kind, kinds in the order of
    ``AGENT_KINDS``): only the SOO stacks carry the SOO term's extra batch of "other" observations through the
    policy, and a capability-only run and its random twin (the same training: the random term has no gradient)
    sit at the same place of equally shaped stacks, so they get the same float rounding too."""
    kinds = [k for k in AGENT_KINDS if any(r.kind == k for r in runs)]
    return [st for k in kinds for st in cpu_stacks([r for r in runs if r.kind == k], size)]


def cpu_stacks(runs: list, size: int) -> list[list]:
    """``runs`` in ``ceil(n / size)`` stacks of near-equal size, in order (the split depends on the runs only)."""
    n = -(-len(runs) // size)
    return [runs[i * len(runs) // n:(i + 1) * len(runs) // n] for i in range(n)]


def _digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def weights_sha256(path: Path) -> str:
    """The sha256 (hex) of a kept run's ``model.safetensors``: its manifest's ``weights_sha256``."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _kept_source(run: Run, kept_dir: Path | None) -> Path | None:
    """The kept copy of ``run`` with its settings key, or None; a ``ValueError`` where its weights are not those its
    manifest records (``weights_sha256``; a manifest written before the digest was kept has none)."""
    if kept_dir is None:
        return None
    src = kept_dir / _sub(run.kind) / run.name
    if not written_with(src / "manifest.json", run.key, field="settings_key"):
        return None
    want = read_json(src / "manifest.json").get("weights_sha256")
    if want is not None and weights_sha256(src / "model.safetensors") != want:
        raise ValueError(f"kept run {src}: model.safetensors is not the file its manifest.json records "
                         f"(weights_sha256 {want[:16]}...); restore the folder from git, or run `make rl-full` again.")
    return src


def _kept_weights(src: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(src / "model.safetensors")


def _up_to_date(run: Run, run_dir: Path, kept_dir: Path | None) -> bool:
    """Finished in ``run_dir`` with the run's settings and, where a kept copy with the same settings key exists,
    holding that copy's weights: a new ``make rl-full`` with the same settings replaces the weights, not the key,
    and the kept runs are what the book shows at ``scale="full"``."""
    if not is_finished(run_dir, run.cfg):
        return False
    src = _kept_source(run, kept_dir)
    if src is None or read_json(run_dir / "metrics.json").get("kept_digest") == _digest(src / "model.safetensors"):
        return True
    kept, local = _kept_weights(src), load_policies(run_dir)
    if all(torch.equal(v, kept[f"{part}.{k}"]) for part in ("policies", "critics")
           for k, v in getattr(local, part).state_dict().items()):
        return True
    print(f"{run_dir}: not the kept run {src} (made since by `make rl-full`): restoring the kept run", flush=True)
    return False


def _restore_kept(run: Run, run_dir: Path, kept_dir: Path | None) -> bool:
    """Copy a kept run with this run's settings key into ``run_dir``; False if there is none."""
    src = _kept_source(run, kept_dir)
    if src is None:
        return False
    model = MADDPG(run.cfg)
    flat = _kept_weights(src)
    for part in ("policies", "critics"):
        getattr(model, part).load_state_dict({k[len(part) + 1:]: v for k, v in flat.items() if k.startswith(part + ".")})
    save_policies(model, run_dir)
    atomic_write_json(run_dir / "metrics.json", {**read_json(src / "metrics.json"),
                                                 "kept_digest": _digest(src / "model.safetensors")})
    return True


def run_all(runs: list[Run], out_dir, scale: str, workers: int = 2, device: str | None = None,
            kept_dir: Path | None = KEPT_DIR, cpu_stack: int = 4) -> dict:
    """Finish every run (read back, restore a kept copy, or train); ``{(kind, seed): metrics}``.

    Fine-tunings need their baseline: it is finished first (as a run of its own). ``device``: ``"cuda"``
    trains the runs still to do as one stack per stage; ``None`` or ``"cpu"``: stacks of at most ``cpu_stack``
    runs of one kind (:func:`stage_stacks`) in ``workers`` processes."""
    dirs = {r: agent_dir(out_dir, scale, r.kind, r.seed) for r in runs}
    inits = {r.init for r in runs if r.init is not None} - set(runs)
    if inits:
        run_all(sorted(inits, key=lambda r: r.seed), out_dir, scale, workers, device, kept_dir, cpu_stack)
    todo = [r for r in runs if not _up_to_date(r, dirs[r], kept_dir) and not _restore_kept(r, dirs[r], kept_dir)]

    def job(r: Run):  # what a worker needs: the config, the run's folder, its baseline's folder
        init_dir = None if r.init is None else str(agent_dir(out_dir, scale, "deceptive", r.seed))
        return r.cfg.to_dict(), str(dirs[r]), init_dir

    for stage in ([r for r in todo if r.init is None], [r for r in todo if r.init is not None]):
        if not stage:
            continue
        if device is not None and torch.device(device).type == "cuda":
            _train_stack([job(r) for r in stage], device)
            continue
        run_parallel(_train_stack, [[job(r) for r in st] for st in stage_stacks(stage, cpu_stack)], workers,
                     threads=TRAIN_THREADS, label=lambda stack: ", ".join(Path(j[1]).name for j in stack))
    return {(r.kind, r.seed): read_json(dirs[r] / "metrics.json") for r in runs}


def train_baselines(scfg: ScaleConfig, out_dir, modes=MODES, workers: int | None = None, device=None) -> dict:
    """Deceptive and honest baselines for every seed of ``scfg``; returns ``{(mode, seed): metrics}``."""
    return run_all(baseline_runs(scfg, modes), out_dir, scfg.tag, workers or scfg.workers, device,
                   kept_dir=kept_dir_of(scfg.setting), cpu_stack=scfg.cpu_stack)


def finetune(scfg: ScaleConfig, out_dir, conditions=FINETUNE_KINDS, workers: int | None = None, device=None) -> dict:
    """SOO fine-tuning (and controls) of each seed's deceptive blue policy, in the environment whose
    reward is ``scfg.finetune_reward`` (the paper: deceptive); ``{(condition, seed): metrics}``."""
    return run_all(finetune_runs(scfg, conditions), out_dir, scfg.tag, workers or scfg.workers, device,
                   kept_dir=kept_dir_of(scfg.setting), cpu_stack=scfg.cpu_stack)


def keep_runs(scfg: ScaleConfig, out_dir, kept_dir: Path | None = None, extra: dict | None = None) -> None:
    """Write every finished run of ``scfg`` into ``kept_dir``: policies and critics as safetensors, the
    metrics, and a manifest (settings key, code version, machine, wall time); each run folder replaced whole.
    ``kept_dir``: default :func:`kept_dir_of` the protocol's setting."""
    from safetensors.torch import save_file

    kept_dir = kept_dir_of(scfg.setting) if kept_dir is None else Path(kept_dir)
    for r in protocol_runs(scfg):
        src = agent_dir(out_dir, scfg.tag, r.kind, r.seed)
        m = read_json(src / "metrics.json")
        model = load_policies(src)
        weights = {f"{part}.{k}": v.contiguous() for part in ("policies", "critics")
                   for k, v in getattr(model, part).state_dict().items()}
        with atomic_directory(kept_dir / _sub(r.kind) / r.name) as tmp:
            save_file(weights, tmp / "model.safetensors")
            atomic_write_json(tmp / "metrics.json", m)
            atomic_write_json(tmp / "manifest.json", {
                "run": r.name, "settings_key": r.key, "weights_sha256": weights_sha256(tmp / "model.safetensors"),
                "wall_time_s": m["wall_time_s"], "device": m.get("device"), "stacked_runs": m.get("stacked_runs"),
                "trained_on": m.get("trained_on"), "kept_on": machine_info(), **manifest(), **(extra or {})})


def record_weight_digests(kept_dir: Path) -> int:
    """Write ``weights_sha256`` into the manifest of every kept run under ``kept_dir`` (one setting's folder) that
    was kept without it; its settings key and everything else stay as they are. A manifest that has a digest must
    match its weights (else ``ValueError``). Returns the number of manifests written."""
    written = 0
    for man in sorted(Path(kept_dir).glob("*/*/manifest.json")):
        m, got = read_json(man), weights_sha256(man.parent / "model.safetensors")
        if m.get("weights_sha256") is None:
            atomic_write_json(man, {**m, "weights_sha256": got})
            written += 1
        elif m["weights_sha256"] != got:
            raise ValueError(f"{man.parent}: model.safetensors does not match its manifest's weights_sha256")
    return written


def kept_status(scfg: ScaleConfig, kept_dir: Path | None = None) -> dict:
    """``{run name: "ok" | "missing" | "stale"}`` for every run of ``scfg`` against the kept runs (default:
    those of its setting)."""
    kept_dir = kept_dir_of(scfg.setting) if kept_dir is None else Path(kept_dir)
    out = {}
    for r in protocol_runs(scfg):
        f = kept_dir / _sub(r.kind) / r.name / "manifest.json"
        out[r.name] = "missing" if not f.exists() else ("ok" if written_with(f, r.key, field="settings_key") else "stale")
    return out


FINGERPRINT_SCALE = ScaleConfig("smoke", seeds=(155, 714), baseline_episodes=40, soo_episodes=20, num_envs=20,
                                eval_episodes=1, workers=1, cpu_stack=4,
                                overrides=dict(episode_length=25, hidden_dim=16, batch_size=64, buffer_length=10_000,
                                               steps_per_update=50, n_exploration_eps=40, save_interval=1000,
                                               soo_batch=64))
"""The protocol :func:`training_fingerprint` trains: every agent kind for two seeds, so that each stage trains in
stacks of two runs of one kind (the stacked update the kept runs were trained with), with a few updates each."""
FINGERPRINT_REL = 1e-4
"""Relative tolerance of :func:`fingerprint_differences`: far above float64 noise (with torch held to AVX-512, to
AVX2 or to no vector kernels, ``ATEN_CPU_CAPABILITY``, the numbers agreed to 3e-11), far below any change of what
training computes."""


def training_fingerprint() -> dict:
    """What the training code computes, in a few numbers: :data:`FINGERPRINT_SCALE`'s protocol (16 runs, about 2 s)
    trained from nothing through :func:`run_all`, in float64 with one torch thread, and per run (``{run name: {...}}``)
    its last training-log row (returns, trap rate, losses) and the sum of squares of each policy's and critic's
    parameters. The environment, the rewards, the MADDPG update (stacked), the fine-tuning's start from the
    baseline and each auxiliary term all take part, so a change to any of them moves the numbers; float64 keeps them
    the same on another CPU. Compared with the record by :func:`fingerprint_differences`."""
    scfg = FINGERPRINT_SCALE
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with tempfile.TemporaryDirectory(prefix="rl_fingerprint_") as d, torch_threads(1), \
                contextlib.redirect_stdout(io.StringIO()):  # not the stacks' timing lines
            metrics = run_all(protocol_runs(scfg), d, scfg.tag, workers=1, kept_dir=None, cpu_stack=scfg.cpu_stack)
            out = {}
            for r in protocol_runs(scfg):
                last = metrics[(r.kind, r.seed)]["history"][-1]
                model = load_agent(d, scfg.tag, r.kind, r.seed)
                nets = {f"{part}{a}": getattr(model, part)[a] for part in ("policies", "critics")
                        for a in range(len(model.policies))}
                sq = {f"{n}_sq": sum(float((p.detach().double() ** 2).sum()) for p in net.parameters())
                      for n, net in nets.items()}
                out[r.name] = {**{k: float(v) for k, v in last.items() if k not in ("episode", "noise")}, **sq}
    finally:
        torch.set_default_dtype(old)
    return out


def fingerprint_differences(got: dict, recorded: dict, rel: float = FINGERPRINT_REL) -> list[str]:
    """The numbers of two :func:`training_fingerprint` results that differ (relative ``rel``, absolute 1e-9 near
    zero), or that one has and the other has not."""
    import math

    bad = []
    for run in sorted(set(got) | set(recorded)):
        a, b = got.get(run, {}), recorded.get(run, {})
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b or not math.isclose(a[k], b[k], rel_tol=rel, abs_tol=1e-9):
                bad.append(f"{run} {k}: {a.get(k)} (recorded {b.get(k)})")
    return bad


def recorded_fingerprint(path: Path = TRAINING_FINGERPRINT) -> dict:
    """The recorded fingerprint: ``{"training_version", "values", ...}`` (``soo.rl.runs.TRAINING_FINGERPRINT``)."""
    return read_json(path)


def record_training_fingerprint(path: Path = TRAINING_FINGERPRINT) -> dict:
    """Train :func:`training_fingerprint` and record it with the current ``TRAINING_VERSION`` in ``path``."""
    values = {run: {k: float(f"{v:.12g}") for k, v in vals.items()} for run, vals in training_fingerprint().items()}
    rec = {"training_version": TRAINING_VERSION,
           "how": "soo.rl.experiment.training_fingerprint(): FINGERPRINT_SCALE's protocol trained in float64 with one "
                  "torch thread; per run its last training-log row and each network's sum of squared parameters",
           "versions": {k: v for k, v in manifest()["versions"].items() if k in ("python", "torch", "numpy")},
           "values": values}
    atomic_write_json(path, rec)
    return rec


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
    return {"config": m["config"], "settings_key": m.get("settings_key"), "weights": _digest(d / "model.pt")}


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


def deceptive_moves_per_episode(scfg: ScaleConfig, out_dir, kinds=MODES) -> dict:
    """``{kind: per-seed list}`` of the official deceptive-movement count with red in sight, per episode."""
    return {k: [float((np.asarray(evaluate_agent(scfg, out_dir, k, s)["records"]).reshape(-1, 3)[:, 2] > 0).sum())
                / scfg.eval_episodes for s in scfg.seeds] for k in kinds}


def main(argv=None) -> int:
    """``make rl-full``: the whole protocol of a scale from nothing, timed, optionally kept with the book."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--scale", default="full", choices=("smoke", "default", "full"))
    ap.add_argument("--setting", default="official", choices=tuple(SETTINGS),
                    help="training settings of every run (default: %(default)s; see soo.rl.config.SETTINGS)")
    ap.add_argument("--out-dir", default=None, help="where to train (default: a fresh temporary folder)")
    ap.add_argument("--device", default=None, help="cuda: each stage as one stack on the GPU (default: CPU workers)")
    ap.add_argument("--workers", type=int, default=None, help="CPU processes (default: the scale's, 2)")
    ap.add_argument("--cpu-stack", type=int, default=None, help="CPU: runs per stack (default: the scale's, 4)")
    ap.add_argument("--keep", action="store_true", help="write the runs into --kept-dir")
    ap.add_argument("--kept-dir", default=None, help="where --keep writes (default: book/data/rl_full/SETTING)")
    ap.add_argument("--record-fingerprint", action="store_true",
                    help="only record what the training code computes (soo.rl.runs.TRAINING_FINGERPRINT) and exit")
    args = ap.parse_args(argv)
    if args.record_fingerprint:
        rec = record_training_fingerprint()
        print(f"recorded the fingerprint of TRAINING_VERSION {rec['training_version']} in {TRAINING_FINGERPRINT}")
        return 0
    scfg = scale_config(args.scale, setting=args.setting,
                        **({} if args.cpu_stack is None else {"cpu_stack": args.cpu_stack}))
    out = Path(args.out_dir or tempfile.mkdtemp(prefix="rl_full_"))
    t0 = time.perf_counter()
    stages = {}
    for name, runs in (("baselines", baseline_runs(scfg)), ("finetune", finetune_runs(scfg))):
        t = time.perf_counter()
        run_all(runs, out, scfg.tag, args.workers or scfg.workers, args.device, kept_dir=None, cpu_stack=scfg.cpu_stack)
        stages[name] = time.perf_counter() - t
        print(f"{name}: {len(runs)} runs in {stages[name] / 60:.1f} min", flush=True)
    total = time.perf_counter() - t0
    summary_ = {"scale": scfg.scale, "setting": scfg.setting, "settings": SETTINGS[scfg.setting],
                "runs": len(protocol_runs(scfg)), "wall_time_s": total, "stages_s": stages,
                "device": args.device or "cpu", "workers": args.workers or scfg.workers, "cpu_stack": scfg.cpu_stack,
                "machine": machine_info(),
                "command": "python -m soo.rl.experiment " + " ".join(argv if argv is not None else sys.argv[1:]),
                **manifest()}
    print(json.dumps({k: summary_[k] for k in ("runs", "wall_time_s", "device", "workers")}))
    if args.keep:
        kept = Path(args.kept_dir) if args.kept_dir else kept_dir_of(scfg.setting)
        keep_runs(scfg, out, kept)
        atomic_write_json(kept / "protocol.json", summary_)
        print(f"kept in {kept}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
