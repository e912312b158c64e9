"""The runs of the RL protocol and the runs kept with the book, in one place: the run registry of a scale
(:class:`Run`, :func:`protocol_runs`), finishing runs (:func:`run_all`: read back, restore a kept copy, or train in
stacks), writing and checking the kept runs (:func:`keep_runs`, :func:`record_weight_digests`), and the training
fingerprint (:func:`training_fingerprint`). Training itself is ``soo.rl.training``; evaluation ``soo.rl.evaluation``.

Layout under ``{out_dir}/{tag}/rl/`` (``tag``: the scale, plus ``_{setting}`` for a training setting other than the
official one, :attr:`soo.rl.config.ScaleConfig.tag`)::

    baselines/{mode}_seed{seed}/   model.pt, config.json, metrics.json (resume.pt while running)
    soo/{condition}_seed{seed}/    the same, for the fine-tuned blue policies
    eval/                          the evaluations (``soo.rl.evaluation``)

A run is found, in this order: finished in ``out_dir`` with the same settings (and, where a kept copy with the
same settings key exists, with that copy's weights); **kept with the book** (``book/data/rl_full/{setting}/``, the
paper's full protocol computed once by ``make rl-full``, restored into ``out_dir`` when its settings key matches);
else trained. On a CPU, the runs of a stage train in stacks of at most ``cpu_stack`` (4) runs, in ``workers``
processes with one torch thread each; on a GPU, all runs of a stage train as one stack. A kept run is
``model.safetensors``, ``metrics.json`` and ``manifest.json`` (with the weights' sha256, checked before a kept run
is restored).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..files import atomic_directory, atomic_write_json, read_json, written_with
from ..provenance import machine_info, manifest
from ..utils import check_choice, project_root, run_parallel, torch_threads
from .auxiliary import make_aux_loss
from .config import AGENT_KINDS, FINETUNE_KINDS, SETTINGS, RLConfig, ScaleConfig
from .env import MODES
from .maddpg import MADDPG
from .training import (TRAINING_FINGERPRINT, TRAINING_VERSION, hold_weights, is_finished, load_policies,
                       settings_key, train_stacked)

TRAIN_THREADS = 1
"""Torch threads of a training stack on a CPU: the networks are tiny, so threads do not pay; the process pool
(:func:`soo.utils.run_parallel`) runs stacks side by side instead."""
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


def _finished(run: Run, run_dir: Path, kept_dir: Path | None) -> bool:
    """Does ``run_dir`` hold ``run`` finished? Where a kept copy with the run's settings key exists, it does, with
    that copy's weights (:func:`soo.rl.training.hold_weights` restores them where they are not there): a new
    ``make rl-full`` with the same settings replaces the weights, not the key, and the kept runs are what the book
    shows at ``scale="full"``. Otherwise it does when the run finished there with its settings."""
    src = _kept_source(run, kept_dir)
    if src is None:
        return is_finished(run_dir, run.cfg)
    hold_weights(run.cfg, run_dir, src / "model.safetensors", src / "metrics.json")
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
    todo = [r for r in runs if not _finished(r, dirs[r], kept_dir)]

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
    those of its setting): the staleness check of ``tests/test_rl_kept.py``, which is its only caller (a reader asks
    it the same question about a setting of their own)."""
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
                model = load_policies(agent_dir(d, scfg.tag, r.kind, r.seed))
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
    """The recorded fingerprint: ``{"training_version", "values", ...}`` (``soo.rl.training.TRAINING_FINGERPRINT``)."""
    return read_json(path)


def record_training_fingerprint(path: Path = TRAINING_FINGERPRINT) -> dict:
    """Train :func:`training_fingerprint` and record it with the current ``TRAINING_VERSION`` in ``path``."""
    values = {run: {k: float(f"{v:.12g}") for k, v in vals.items()} for run, vals in training_fingerprint().items()}
    rec = {"training_version": TRAINING_VERSION,
           "how": "soo.rl.runs.training_fingerprint(): FINGERPRINT_SCALE's protocol trained in float64 with one "
                  "torch thread; per run its last training-log row and each network's sum of squared parameters",
           "versions": {k: v for k, v in manifest()["versions"].items() if k in ("python", "torch", "numpy")},
           "values": values}
    atomic_write_json(path, rec)
    return rec
