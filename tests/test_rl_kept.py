"""The full-protocol RL runs kept with the book (``book/data/rl_full/{setting}``) cannot go stale silently.

``make book`` restores these runs instead of training 64 runs per setting (about an hour on 2 CPU cores), so the book's RL
chapter is only as current as they are. Each kept run's manifest holds the settings key of the run that made it
(its settings, the training code's ``TRAINING_VERSION`` and, for a fine-tuning, its baseline's key). If the
training code or the protocol changes, these tests fail until ``make rl-full`` is run again (for each setting
the book shows: ``RL_SETTING=... make rl-full``).
"""
import json

import numpy as np
import pytest
import torch

from soo.rl import experiment as ex
from soo.notebooks import BOOK_RL_SETTINGS
from soo.rl.config import FINETUNE_KINDS, PAPER_SEEDS, scale_config
from soo.rl.runs import is_finished

FULL = scale_config("full")


@pytest.mark.parametrize("setting", BOOK_RL_SETTINGS)
def test_every_run_of_the_full_protocol_is_kept_and_current(setting):
    scfg = scale_config("full", setting=setting)
    status = ex.kept_status(scfg)
    assert len(status) == 8 * (2 + len(FINETUNE_KINDS)) == 64 and scfg.seeds == PAPER_SEEDS
    bad = {k: v for k, v in status.items() if v != "ok"}
    assert not bad, f"kept RL runs missing or stale (run `RL_SETTING={setting} make rl-full`): {bad}"
    protocol = json.loads((ex.kept_dir_of(setting) / "protocol.json").read_text())
    assert protocol["setting"] == setting and protocol["runs"] == 64 and protocol["wall_time_s"] > 0


@pytest.mark.parametrize("setting", BOOK_RL_SETTINGS)
def test_kept_runs_have_manifests_and_finished_training(setting):
    scfg = scale_config("full", setting=setting)
    for r in ex.protocol_runs(scfg):
        d = ex.kept_dir_of(setting) / ("baselines" if r.init is None else "soo") / r.name
        man = json.loads((d / "manifest.json").read_text())
        met = json.loads((d / "metrics.json").read_text())
        assert man["run"] == r.name and man["wall_time_s"] > 0 and man["trained_on"]["machine"]["cpu"]
        assert met["episodes"] == r.cfg.n_episodes and met["history"][-1]["episode"] == r.cfg.n_episodes
        assert (d / "model.safetensors").stat().st_size > 10_000


def test_a_stale_run_is_flagged(tmp_path, monkeypatch):
    """Change the training code's version: every kept run must read as stale."""
    import soo.rl.runs as runs

    monkeypatch.setattr(runs, "TRAINING_VERSION", runs.TRAINING_VERSION + 1)
    for setting in BOOK_RL_SETTINGS:
        assert set(ex.kept_status(scale_config("full", setting=setting)).values()) == {"stale"}


def test_kept_runs_restore_and_evaluate(tmp_path):
    """A kept run is restored into a fresh out_dir (not trained) and gives the same policy."""
    from safetensors.torch import load_file

    run = ex.baseline_runs(FULL)[0]
    got = ex.run_all([run], tmp_path, "full")[(run.kind, run.seed)]
    d = ex.agent_dir(tmp_path, "full", run.kind, run.seed)
    assert is_finished(d, run.cfg) and got["episodes"] == run.cfg.n_episodes
    kept = load_file(ex.KEPT_DIR / "baselines" / run.name / "model.safetensors")
    agent = ex.load_agent(tmp_path, "full", run.kind, run.seed)
    for k, v in agent.policies.state_dict().items():
        assert torch.equal(v, kept[f"policies.{k}"])
    from soo.rl.metrics import rollout, summary

    s = summary(rollout(agent, run.cfg.env, 20, seed=1))
    assert 0 <= s["trap_rate"] <= 1 and np.isfinite(s["return_blue"])


def test_a_restored_run_follows_a_new_kept_copy(tmp_path):
    """``make rl-full`` again (same settings, new weights): a run restored earlier into an out_dir is restored
    again, and its evaluations are recomputed (the weights are part of their cache key)."""
    import shutil

    from safetensors.torch import load_file, save_file

    run = ex.baseline_runs(FULL)[0]
    kept = tmp_path / "kept"
    shutil.copytree(ex.KEPT_DIR / "baselines" / run.name, kept / "baselines" / run.name)
    out = tmp_path / "out"
    ex.run_all([run], out, "full", kept_dir=kept)
    before = ex.trained_settings(out, "full", run.kind, run.seed)
    assert ex.run_all([run], out, "full", kept_dir=kept) and ex.trained_settings(out, "full", run.kind, run.seed) == before
    weights = load_file(kept / "baselines" / run.name / "model.safetensors")
    weights["policies.1.fc3.bias"] = weights["policies.1.fc3.bias"] + 0.5  # "retrained": same key, new weights
    save_file(weights, kept / "baselines" / run.name / "model.safetensors")
    ex.run_all([run], out, "full", kept_dir=kept)
    agent = ex.load_agent(out, "full", run.kind, run.seed)
    assert torch.equal(agent.policies[1].fc3.bias, weights["policies.1.fc3.bias"])
    after = ex.trained_settings(out, "full", run.kind, run.seed)
    assert after["settings_key"] == before["settings_key"] and after["weights"] != before["weights"]
    # a copy restored by older code (no digest recorded) is compared by its weights
    met = ex.agent_dir(out, "full", run.kind, run.seed) / "metrics.json"
    met.write_text(json.dumps({k: v for k, v in json.loads(met.read_text()).items() if k != "kept_digest"}))
    ex.run_all([run], out, "full", kept_dir=kept)
    assert "kept_digest" not in json.loads(met.read_text())  # same weights: kept as it is
    weights["policies.1.fc3.bias"] = weights["policies.1.fc3.bias"] - 0.25
    save_file(weights, kept / "baselines" / run.name / "model.safetensors")
    ex.run_all([run], out, "full", kept_dir=kept)
    assert torch.equal(ex.load_agent(out, "full", run.kind, run.seed).policies[1].fc3.bias, weights["policies.1.fc3.bias"])
