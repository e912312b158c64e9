"""A training run's folder, its key and its checkpoints: what makes a run "finished", and how its weights are
written and read back. No training here (``soo.rl.maddpg``, ``soo.rl.stacked``).

A run's folder holds ``model.pt`` (policies' and critics' state dicts) and ``config.json`` (:func:`save_policies`,
:func:`load_policies`), ``metrics.json`` (the training log, with the run's config and :func:`settings_key`), and
``resume.pt`` while it trains (:func:`save_resume`, :func:`resume_state`). A run counts as finished only with the
settings it is asked for and by this training code (:func:`is_finished`); anything else found there is discarded
before training (:func:`discard_other_settings`). The key hashes the run's settings and :data:`TRAINING_VERSION`
only (no path, no module name), so the runs kept with the book stay valid when the code moves.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from ..utils import atomic_file, atomic_write_json, read_json, written_with
from .config import RLConfig
from .maddpg import MADDPG

TRAINING_VERSION = 3
"""Bump when a change alters what training computes (not only how fast): it is part of every run's
settings key, so runs kept with the book (``book/data/rl_full``) made by older code are flagged stale. A change
left unbumped is caught by :data:`TRAINING_FINGERPRINT`."""
TRAINING_FINGERPRINT = Path(__file__).resolve().parents[1] / "data" / "rl_training_fingerprint.json"
"""What this training code computes, recorded with the :data:`TRAINING_VERSION` it belongs to: a small training
protocol's numbers (:func:`soo.rl.experiment.training_fingerprint`; environment, rewards, MADDPG, the stacked update
and every auxiliary term take part). ``tests/test_rl_kept.py`` trains it again and fails when the numbers differ
while the version is the recorded one: bump the version (the kept runs then read as stale) and re-record it
(``python -m soo.rl.experiment --record-fingerprint``), or only re-record it where the change is numerical noise."""


def save_policies(model: MADDPG, run_dir: Path) -> None:
    """``model.pt`` (policies' and critics' state dicts) + ``config.json``; atomic."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_file(run_dir / "model.pt") as tmp:
        torch.save({"policies": model.policies.state_dict(), "critics": model.critics.state_dict()}, tmp)
    atomic_write_json(run_dir / "config.json", model.cfg.to_dict())


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


def _same_config(stored: dict | None, cfg: RLConfig) -> bool:
    return stored is not None and _result_settings(stored) == _result_settings(
        json.loads(json.dumps(cfg.to_dict(), default=float)))


def is_finished(run_dir: str | Path, cfg: RLConfig) -> bool:
    """True if ``run_dir`` holds a finished run trained with exactly ``cfg`` by this training code."""
    run_dir = Path(run_dir)
    if not ((run_dir / "metrics.json").exists() and (run_dir / "model.pt").exists()):
        return False
    return (written_with(run_dir / "metrics.json", settings_key(cfg), field="settings_key")
            and _same_config(read_json(run_dir / "metrics.json").get("config"), cfg))


def resume_state(run_dir: Path, cfg: RLConfig) -> dict | None:
    """The run's resume checkpoint if it was made with ``cfg`` by this training code, else ``None``."""
    resume = run_dir / "resume.pt"
    if not resume.exists():
        return None
    ck = torch.load(resume, map_location="cpu", weights_only=True)
    st = json.loads(ck["state"])
    return ck if st.get("settings_key") == settings_key(cfg) else None


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


def save_resume(run_dir: Path, model: dict, opt: dict, buffer: dict, state: dict) -> None:
    """``resume.pt``: one run's state in the middle of training (weights, Adam states, replay rows, and the loop's
    ``state``: random generators, episode, log, settings key); atomic."""
    path = run_dir / "resume.pt"
    with atomic_file(path) as tmp:
        torch.save({"model": model, "opt": opt, "buffer": buffer, "state": json.dumps(state, default=float)}, tmp)
