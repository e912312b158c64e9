"""Training runs: the loop that trains K runs as one stack with the engine of ``soo.rl.stacked`` (:func:`train`,
:func:`train_stacked`), and a run's folder, key and checkpoints, what makes a run "finished" and how its weights
are written and read back.

A run's folder holds ``model.pt`` (policies' and critics' state dicts) and ``config.json`` (:func:`save_policies`,
:func:`load_policies`), ``metrics.json`` (the training log, with the run's config and :func:`settings_key`), and
``resume.pt`` while it trains (:func:`save_resume`, :func:`resume_state`). A run counts as finished only with the
settings it is asked for and by this training code (:func:`is_finished`); anything else found there is discarded
before training (:func:`discard_other_settings`): a finished run is read back, an interrupted one resumed. The key
hashes the run's settings and :data:`TRAINING_VERSION` only (no path, no module name), so the runs kept with the
book stay valid when the code moves.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..files import atomic_file, atomic_write_json, read_json
from ..provenance import git_commit, machine_info
from .config import RLConfig
from .env import StackedDeceptionEnv
from .maddpg import BLUE, MADDPG, N_AGENTS, RED, OUNoise, noise_scale, updates_due
from .stacked import StackedMADDPG, StackedReplayBuffer

TRAINING_VERSION = 3
"""Bump when a change alters what training computes (not only how fast): it is part of every run's
settings key, so runs kept with the book (``book/data/rl_full``) made by older code are flagged stale. A change
left unbumped is caught by :data:`TRAINING_FINGERPRINT`."""
TRAINING_FINGERPRINT = Path(__file__).resolve().parents[1] / "data" / "rl_training_fingerprint.json"
"""What this training code computes, recorded with the :data:`TRAINING_VERSION` it belongs to: a small training
protocol's numbers (:func:`soo.rl.runs.training_fingerprint`; environment, rewards, MADDPG, the stacked update
and every auxiliary term take part). ``tests/test_rl_kept.py`` trains it again and fails when the numbers differ
while the version is the recorded one: bump the version (the kept runs then read as stale) and re-record it
(``python -m soo.rl.experiment --record-fingerprint``), or only re-record it where the change is numerical noise."""


def save_policies(model: MADDPG, run_dir: Path) -> None:
    """``model.pt`` (policies' and critics' state dicts) + ``config.json``; atomic."""
    _write_weights(run_dir, {"policies": model.policies.state_dict(), "critics": model.critics.state_dict()}, model.cfg)


def _write_weights(run_dir: Path, weights: dict, cfg: RLConfig) -> None:
    """``model.pt`` (``weights``: ``{"policies": state dict, "critics": state dict}``) + ``config.json``; atomic."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_file(run_dir / "model.pt") as tmp:
        torch.save(weights, tmp)
    atomic_write_json(run_dir / "config.json", cfg.to_dict())


def load_policies(run_dir: Path, cfg: RLConfig | None = None) -> MADDPG:
    """Rebuild a trained :class:`MADDPG` from ``run_dir``; a shape mismatch raises ``ValueError``."""
    run_dir = Path(run_dir)
    if cfg is None:
        cfg = RLConfig(**read_json(run_dir / "config.json"))
    model = MADDPG(cfg)
    state = torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True)
    _check_shapes(model, state, run_dir / "model.pt")
    model.policies.load_state_dict(state["policies"])
    model.critics.load_state_dict(state["critics"])
    model.target_policies.load_state_dict(state["policies"])
    model.target_critics.load_state_dict(state["critics"])
    return model


def _check_shapes(model: MADDPG, state: dict, path) -> None:
    for part in ("policies", "critics"):
        want = getattr(model, part).state_dict()
        got = state.get(part, {})
        bad = [k for k in want if k not in got or tuple(got[k].shape) != tuple(want[k].shape)]
        if bad:
            k = bad[0]
            raise ValueError(f"checkpoint {path}: {part}.{k} has shape "
                             f"{tuple(got[k].shape) if k in got else 'missing'}, expected {tuple(want[k].shape)} "
                             f"(hidden_dim={model.cfg.hidden_dim}); check the checkpoint matches the config.")


_NOT_RESULT = ("save_interval",)
"""Settings that do not change what a run computes (checkpoint frequency): left out of keys and comparisons."""


def _result_settings(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in _NOT_RESULT}


def settings_key(cfg: RLConfig) -> str:
    """What a run's result depends on: its settings and :data:`TRAINING_VERSION` (hex digest)."""
    blob = json.dumps({"config": _result_settings(cfg.to_dict()), "training_version": TRAINING_VERSION},
                      sort_keys=True, default=float)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def is_finished(run_dir: str | Path, cfg: RLConfig) -> bool:
    """True if ``run_dir`` holds a finished run trained with exactly ``cfg`` by this training code: its training log
    records ``cfg``'s settings key and settings."""
    run_dir = Path(run_dir)
    key, settings = settings_key(cfg), _result_settings(json.loads(json.dumps(cfg.to_dict(), default=float)))
    if not ((run_dir / "metrics.json").exists() and (run_dir / "model.pt").exists()):
        return False
    stored = read_json(run_dir / "metrics.json")
    return stored.get("settings_key") == key and _result_settings(stored.get("config") or {}) == settings


def resume_state(run_dir: Path, cfg: RLConfig) -> dict | None:
    """The run's resume checkpoint if it was made with ``cfg`` by this training code in the middle of training (a run
    at its last episode is written finished, never as a resume checkpoint), else ``None``."""
    resume = run_dir / "resume.pt"
    if not resume.exists():
        return None
    ck = torch.load(resume, map_location="cpu", weights_only=True)
    st = json.loads(ck["state"])
    return ck if st.get("settings_key") == settings_key(cfg) and st["ep"] < cfg.n_episodes else None


def discard_other_settings(run_dir: Path, cfg: RLConfig) -> None:
    """A finished run or a resume checkpoint made with other settings (or older training code) is never
    reused: remove it (with a note), so that the run is trained from the start with ``cfg``."""
    stale = []
    if (run_dir / "metrics.json").exists() and not is_finished(run_dir, cfg):
        stale += [run_dir / n for n in ("metrics.json", "model.pt")]
    if (run_dir / "resume.pt").exists() and resume_state(run_dir, cfg) is None:
        stale.append(run_dir / "resume.pt")
    stale = [f for f in stale if f.exists()]
    if stale:
        print(f"{run_dir}: found a run with other settings; training again with the current ones")
        for f in stale:
            f.unlink()


def weights_digest(path: Path) -> str:
    """A short digest (16 hex digits of sha256) of a weights file: which weights a run or an evaluation was made with."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def hold_weights(cfg: RLConfig, run_dir: Path, weights_file: Path, metrics_file: Path) -> None:
    """Make ``run_dir`` hold a finished run of ``cfg`` with the weights of ``weights_file`` (policies and critics in one
    flat safetensors file, ``policies.*`` and ``critics.*``, as runs are kept with the book) and the training log of
    ``metrics_file``. Left as it is where it holds them already (finished with ``cfg`` and the file's digest recorded,
    or the same tensors); else written, the digest recorded as ``kept_digest``."""
    from safetensors.torch import load_file

    digest, flat = weights_digest(weights_file), load_file(weights_file)
    kept = {part: {k[len(part) + 1:]: v for k, v in flat.items() if k.startswith(part + ".")}
            for part in ("policies", "critics")}
    if is_finished(run_dir, cfg):
        if read_json(run_dir / "metrics.json").get("kept_digest") == digest:
            return
        local = torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True)
        if all(local[part].keys() == kept[part].keys() and all(torch.equal(v, kept[part][k])
                                                                 for k, v in local[part].items()) for part in kept):
            return
        print(f"{run_dir}: not the kept run {weights_file.parent} (made since by `make rl-full`): restoring the kept "
              "run", flush=True)
    _write_weights(run_dir, kept, cfg)
    atomic_write_json(run_dir / "metrics.json", {**read_json(metrics_file), "kept_digest": digest})


def save_point(run_dir: Path, run: MADDPG, state: dict, opt: dict | None = None, buffer: dict | None = None,
               metrics: dict | None = None) -> None:
    """One run at a save point of the training loop, atomic. Finished (``metrics``: its training log): its weights
    (:func:`save_policies`) and ``metrics.json``, and the resume checkpoint removed. Else ``resume.pt``: its state in
    the middle of training (weights, Adam states ``opt``, replay rows ``buffer``, and the loop's ``state``: random
    generators, episode, log, settings key)."""
    if metrics is not None:
        save_policies(run, run_dir)
        atomic_write_json(run_dir / "metrics.json", metrics)
        (run_dir / "resume.pt").unlink(missing_ok=True)
        return
    with atomic_file(run_dir / "resume.pt") as tmp:
        torch.save({"model": run.state_dict(), "opt": opt, "buffer": buffer, "state": json.dumps(state, default=float)},
                   tmp)


_SAME = ("n_episodes", "episode_length", "num_envs", "hidden_dim", "lr", "gamma", "tau", "batch_size",
         "buffer_length", "steps_per_update", "grad_clip", "policy_reg", "init_noise_scale", "final_noise_scale",
         "n_exploration_eps", "save_interval", "soo_batch", "radius", "hold_red")
"""Settings that runs trained as one stack must share (seed, mode and SOO condition may differ)."""


def train(cfg: RLConfig, run_dir: str | Path, init: MADDPG | None = None, aux_loss: Callable | None = None,
          stop_after: int | None = None, log: Callable | None = None, device="cpu") -> dict:
    """Train (or resume, or read back) one MADDPG run in ``run_dir``; return its ``metrics.json``.

    ``init``: start from these weights (SOO fine-tuning of a pretrained baseline).
    ``aux_loss``: the fine-tuning's auxiliary loss (:class:`soo.rl.auxiliary.AuxLoss`) on the blue policy before
    each of its updates; its random generator is checkpointed with the run.
    ``stop_after``: stop (after checkpointing) once this many episodes are done (tests: interrupted run).
    """
    return train_stacked([cfg], [run_dir], [init], [aux_loss], stop_after=stop_after,
                         log=None if log is None else (lambda k, row: log(row)), device=device)[0]


def train_stacked(cfgs: Sequence[RLConfig], run_dirs: Sequence[str | Path], inits=None, aux_losses=None,
                  stop_after: int | None = None, log: Callable | None = None, device="cpu") -> list[dict]:
    """Train K independent runs as one stacked computation; each run is keyed by its own settings, resumed
    from and written to its own folder, and gives the same result as :func:`train` on it alone (to float
    rounding: ``tests/test_rl_equivalence.py``). Finished runs are read back; the rest must share the
    settings in ``_SAME`` and the same progress (runs resumed at different episodes train in groups).

    ``inits``/``aux_losses``: per run, as in :func:`train` (``None`` entries for baselines).
    ``log(k, row)``: called with each run's training-log row. Returns the runs' ``metrics.json``.
    """
    K = len(cfgs)
    run_dirs = [Path(d) for d in run_dirs]
    inits = list(inits) if inits is not None else [None] * K
    aux_losses = list(aux_losses) if aux_losses is not None else [None] * K
    if not len(run_dirs) == len(inits) == len(aux_losses) == K:
        raise ValueError("train_stacked: cfgs, run_dirs, inits and aux_losses must have one entry per run.")
    out: list[dict | None] = [None] * K
    todo = []
    for k in range(K):
        if is_finished(run_dirs[k], cfgs[k]):
            out[k] = read_json(run_dirs[k] / "metrics.json")  # finished with these settings: read back
        else:
            discard_other_settings(run_dirs[k], cfgs[k])
            todo.append(k)
    for k in todo[1:]:
        bad = [f for f in _SAME if getattr(cfgs[k], f) != getattr(cfgs[todo[0]], f)]
        if bad:
            raise ValueError(f"train_stacked: runs of one stack must share {bad[0]} "
                             f"({getattr(cfgs[todo[0]], bad[0])!r} vs {getattr(cfgs[k], bad[0])!r}); train them apart.")
    if len({aux_losses[k] is None for k in todo}) > 1:
        raise ValueError("train_stacked: a stack holds runs with an auxiliary loss or runs without, not both.")
    resumes = {k: resume_state(run_dirs[k], cfgs[k]) for k in todo}
    groups: dict[int, list[int]] = {}
    for k in todo:
        groups.setdefault(json.loads(resumes[k]["state"])["ep"] if resumes[k] else 0, []).append(k)
    for ks in groups.values():
        res = _train_group([cfgs[k] for k in ks], [run_dirs[k] for k in ks], [inits[k] for k in ks],
                           [aux_losses[k] for k in ks], [resumes[k] for k in ks], stop_after,
                           None if log is None else (lambda j, row, ks=ks: log(ks[j], row)), device)
        for k, r in zip(ks, res):
            out[k] = r
    return out


def keep_freed_memory() -> bool:
    """Let glibc keep freed memory in the process (``mallopt``: blocks up to 32 MiB from the heap, trim the
    heap only above 1 GiB). By default it hands memory back to the OS eagerly, and a training loop that frees
    and allocates MB-sized activations hundreds of times a second pays a page fault per 4 KiB each time: in
    two concurrent stacks of 4 baselines, 620k minor faults and 2.3 s of system time per 600 episodes, against
    24k and 0.2 s with this (wall ~10% less). Changes no result. False where there is no glibc ``mallopt``."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    return all(mallopt(opt, value) == 1 for opt, value in
               ((m_mmap_threshold, 32 << 20), (m_trim_threshold, 1 << 30), (m_top_pad, 64 << 20)))


def _train_group(cfgs, run_dirs, inits, aux_losses, resumes, stop_after, log, device) -> list[dict]:
    K, cfg = len(cfgs), cfgs[0]
    keep_freed_memory()
    models = []
    for c, d, init in zip(cfgs, run_dirs, inits):
        d.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(c.seed)
        m = MADDPG(c)
        if init is not None:
            for part in ("policies", "critics", "target_policies", "target_critics"):
                getattr(m, part).load_state_dict(getattr(init, part).state_dict())
        models.append(m)
    n_envs = min(cfg.num_envs, cfg.n_episodes)
    env = StackedDeceptionEnv(n_envs, [c.env for c in cfgs], [c.seed for c in cfgs])
    rngs = [np.random.default_rng([c.seed, 1]) for c in cfgs]
    buffer = StackedReplayBuffer(K, cfg.buffer_length)
    noise = [[OUNoise(n_envs) for _ in range(N_AGENTS)] for _ in range(K)]
    ep, t, histories, elapsed = 0, 0, [[] for _ in range(K)], [0.0] * K
    if resumes[0] is not None:
        for m, ck in zip(models, resumes):
            m.load_state_dict(ck["model"])
    model = StackedMADDPG(models, device)
    aux = None if aux_losses[0] is None else aux_losses[0].stacked(aux_losses, model.device)
    trained = [a for a in range(N_AGENTS) if not (a == RED and cfg.hold_red)]
    # red held: blue's update runs red's policy in training mode (batch statistics), which moves its BatchNorm
    # running statistics; they are put back after every round, so red acts exactly as it started
    held_bn = {n: v.clone() for n, v in model.policies[RED].buffers.items()} if cfg.hold_red else None
    if resumes[0] is not None:
        model.load_opt_states([ck["opt"] for ck in resumes])
        buffer.load_run_states([ck["buffer"] for ck in resumes])
        for k, ck in enumerate(resumes):
            st = json.loads(ck["state"])
            env.rngs[k].bit_generator.state, rngs[k].bit_generator.state = st["env_rng"], st["rng"]
            if st.get("aux") is not None:
                aux_losses[k].load_state_dict(st["aux"])
            ep, t, histories[k], elapsed[k] = st["ep"], st["t"], st["history"], st["elapsed"]
    next_save = (ep // cfg.save_interval + 1) * cfg.save_interval
    t0 = time.perf_counter()
    while ep < cfg.n_episodes:
        obs = env.reset()  # [(K, n, 6), (K, n, 10)]
        scale = noise_scale(cfg, ep)
        for nz in noise:
            for z in nz:
                z.reset()
        ret, done, infos = np.zeros((K, n_envs, N_AGENTS)), False, {}
        while not done:
            acts = model.act(obs)
            acts = [np.clip(acts[a] + np.stack([nz[a](rng, scale) for nz, rng in zip(noise, rngs)]), -1, 1)
                    for a in range(N_AGENTS)]
            next_obs, rew, done, info = env.step(acts)  # rew (K, n, 2)
            buffer.push(obs, acts, rew, next_obs)
            ret += rew
            obs = next_obs
            n_updates = updates_due(t, n_envs, cfg.steps_per_update)
            t += n_envs
            if len(buffer) >= cfg.batch_size:
                for _ in range(n_updates):
                    for a in trained:
                        infos.update(model.update(buffer.sample(cfg.batch_size, rngs, model.device, model.dtype), a,
                                                  aux if a == BLUE else None))
                    model.update_targets()
                    if held_bn is not None:
                        for n, v in model.policies[RED].buffers.items():
                            v.copy_(held_bn[n])
        ep += n_envs
        logged = {k: v.tolist() for k, v in infos.items()}  # one device sync per batch of episodes
        wall = time.perf_counter() - t0
        for k in range(K):
            row = {"episode": ep, "noise": scale, "return_red": float(ret[k, :, 0].mean()),
                   "return_blue": float(ret[k, :, 1].mean()), "trapped": float(info["trapped"][k].mean()),
                   **{name: v[k] for name, v in logged.items() if not np.isnan(v[k])}}
            histories[k].append(row)
            if log is not None:
                log(k, row)
        if ep >= next_save or ep >= cfg.n_episodes or (stop_after is not None and ep >= stop_after):
            next_save = (ep // cfg.save_interval + 1) * cfg.save_interval
            finished = ep >= cfg.n_episodes
            trained_on = {"machine": machine_info(), "git_commit": git_commit()} if finished else None
            for k in range(K):
                state = {"env_rng": env.rngs[k].bit_generator.state, "rng": rngs[k].bit_generator.state,
                         "ep": ep, "t": t, "history": histories[k], "elapsed": elapsed[k] + wall,
                         "config": cfgs[k].to_dict(), "settings_key": settings_key(cfgs[k]),
                         "aux": aux_losses[k].state_dict() if aux_losses[k] is not None else None}
                metrics = None if not finished else {
                    "config": cfgs[k].to_dict(), "settings_key": settings_key(cfgs[k]), "history": histories[k],
                    "wall_time_s": elapsed[k] + wall, "episodes": ep, "stacked_runs": K, "device": str(model.device),
                    "trained_on": trained_on}
                run = model.export(k, cfgs[k]) if finished else model.export(k)
                opt, rows = (None, None) if finished else (model.opt_state(k), buffer.run_state(k))
                save_point(run_dirs[k], run, state, opt, rows, metrics)
            if stop_after is not None and ep >= stop_after and ep < cfg.n_episodes:
                return [{"interrupted": True, "episode": ep}] * K
    return [read_json(d / "metrics.json") for d in run_dirs]
