"""The full-protocol RL runs kept with the book (``book/data/rl_full/{setting}``) cannot go stale silently.

``make book`` restores these runs instead of training 64 runs per setting (about an hour on 2 CPU cores), so the book's RL
chapter is only as current as they are. Each kept run's manifest holds the settings key of the run that made it
(its settings, the training code's ``TRAINING_VERSION`` and, for a fine-tuning, its baseline's key) and the sha256
of its weights. If the protocol changes, or ``TRAINING_VERSION`` is bumped, these tests fail until ``make rl-full``
is run again (for each setting the book shows: ``RL_SETTING=... make rl-full``). A change of what training computes
(the environment's constants, the rewards, the update, an auxiliary term) with the version left as it was fails
the fingerprint test here: the code's fingerprint (``soo.rl.runs.training_fingerprint``) no longer equals the
one recorded for the version (``soo.rl.training.TRAINING_FINGERPRINT``).
"""
import hashlib
import json

import numpy as np
import pytest
import torch

from soo.rl import evaluation
from soo.rl import runs
from soo.notebooks import BOOK_RL_SETTINGS
from soo.rl.config import FINETUNE_KINDS, PAPER_SEEDS, scale_config
from soo.rl.training import TRAINING_FINGERPRINT, TRAINING_VERSION, is_finished
from soo.utils import project_root

FULL = scale_config("full")


@pytest.mark.parametrize("setting", BOOK_RL_SETTINGS)
def test_every_run_of_the_full_protocol_is_kept_and_current(setting):
    scfg = scale_config("full", setting=setting)
    status = runs.kept_status(scfg)
    assert len(status) == 8 * (2 + len(FINETUNE_KINDS)) == 64 and scfg.seeds == PAPER_SEEDS
    bad = {k: v for k, v in status.items() if v != "ok"}
    assert not bad, f"kept RL runs missing or stale (run `RL_SETTING={setting} make rl-full`): {bad}"
    protocol = json.loads((runs.kept_dir_of(setting) / "protocol.json").read_text())
    assert protocol["setting"] == setting and protocol["runs"] == 64 and protocol["wall_time_s"] > 0


@pytest.mark.parametrize("setting", BOOK_RL_SETTINGS)
def test_kept_runs_have_manifests_and_finished_training(setting):
    scfg = scale_config("full", setting=setting)
    for r in runs.protocol_runs(scfg):
        d = runs.kept_dir_of(setting) / ("baselines" if r.init is None else "soo") / r.name
        man = json.loads((d / "manifest.json").read_text())
        met = json.loads((d / "metrics.json").read_text())
        assert man["run"] == r.name and man["wall_time_s"] > 0 and man["trained_on"]["machine"]["cpu"]
        assert met["episodes"] == r.cfg.n_episodes and met["history"][-1]["episode"] == r.cfg.n_episodes
        assert (d / "model.safetensors").stat().st_size > 10_000
        assert hashlib.sha256((d / "model.safetensors").read_bytes()).hexdigest() == man["weights_sha256"], \
            f"{d}: the weights are not those the manifest records"


def test_the_training_code_computes_what_its_version_recorded():
    """The fingerprint of the training code (a 16-run protocol, about 2 s) equals the one recorded with
    ``TRAINING_VERSION``. Checked once with the environment's trap bonus planted as 12 (a reward), its damping as 0.3
    (an environment constant) and the SOO term's synthetic adversaries twice as far (training code), each with the
    version left as it was: the fingerprint differed and this test failed (the kept runs still read as current);
    the three plants are kept as the test below."""
    rec = runs.recorded_fingerprint()
    assert rec["training_version"] == TRAINING_VERSION, (
        f"TRAINING_VERSION is {TRAINING_VERSION} but {TRAINING_FINGERPRINT.name} was recorded for version "
        f"{rec['training_version']}: record it for this version (python -m soo.rl.experiment --record-fingerprint)")
    diff = runs.fingerprint_differences(runs.training_fingerprint(), rec["values"])
    assert not diff, (
        f"the training code no longer computes what TRAINING_VERSION {TRAINING_VERSION} recorded ({len(diff)} numbers "
        f"differ, e.g. {diff[:3]}). If the change alters what training computes, bump TRAINING_VERSION in "
        "soo/rl/runs.py (the kept runs then read as stale: `make rl-full`) and re-record the fingerprint "
        "(python -m soo.rl.experiment --record-fingerprint); if it is only numerical noise (another torch, another "
        "CPU), re-record it.")


@pytest.mark.parametrize("plant", ["trap bonus", "damping", "soo term"])
def test_a_change_of_what_training_computes_moves_the_fingerprint(monkeypatch, plant):
    """The planted changes of the test above, each alone: the fingerprint moves (well beyond its tolerance)."""
    import soo.rl.env as env
    import soo.rl.auxiliary as soo_term  # the stacked SOO term draws its synthetic adversaries here

    if plant == "trap bonus":
        monkeypatch.setattr(env, "R_TRAP", 12.0)
    elif plant == "damping":
        monkeypatch.setattr(env, "DAMPING", 0.3)
    else:
        offsets = soo_term.synthetic_offsets
        monkeypatch.setattr(soo_term, "synthetic_offsets", lambda rng, n, radius: 2 * offsets(rng, n, radius))
    diff = runs.fingerprint_differences(runs.training_fingerprint(), runs.recorded_fingerprint()["values"])
    assert diff
    if plant == "soo term":  # only the runs with the SOO term move
        assert {d.split()[0].split("_seed")[0] for d in diff} == {"soo", "soo_held"}


def test_weight_digests_are_recorded_and_checked(tmp_path):
    """``record_weight_digests`` adds the weights' sha256 to manifests kept without it (the settings key and the
    rest as they were); a kept run whose weights are not those its manifest records is refused at restore and by a
    second recording. Checked once with the digest check left out of ``_kept_source``: the changed weights were
    restored and the test failed."""
    import shutil

    from safetensors.torch import load_file, save_file

    run = runs.baseline_runs(FULL)[0]
    kept = tmp_path / "kept"
    src = kept / "baselines" / run.name
    shutil.copytree(runs.KEPT_DIR / "baselines" / run.name, src)
    man = json.loads((src / "manifest.json").read_text())
    (src / "manifest.json").write_text(json.dumps({k: v for k, v in man.items() if k != "weights_sha256"}))
    assert runs.record_weight_digests(kept) == 1 and runs.record_weight_digests(kept) == 0
    assert json.loads((src / "manifest.json").read_text()) == man
    weights = load_file(src / "model.safetensors")
    weights["policies.1.fc3.bias"] = weights["policies.1.fc3.bias"] + 0.5
    save_file(weights, src / "model.safetensors")
    with pytest.raises(ValueError, match="not the file its manifest.json records"):
        runs.run_all([run], tmp_path / "out", "full", kept_dir=kept)
    with pytest.raises(ValueError, match="does not match"):
        runs.record_weight_digests(kept)
    assert not (tmp_path / "out" / "full" / "rl" / "baselines" / run.name / "model.pt").exists()


def test_a_stale_run_is_flagged(tmp_path, monkeypatch):
    """Change the training code's version: every kept run must read as stale."""
    import soo.rl.training as training

    monkeypatch.setattr(training, "TRAINING_VERSION", training.TRAINING_VERSION + 1)
    for setting in BOOK_RL_SETTINGS:
        assert set(runs.kept_status(scale_config("full", setting=setting)).values()) == {"stale"}


def recorded_trap_rate(run) -> float:
    """The evaluated trap rate the settings screen recorded for this kept baseline (its round-2 ``official`` row:
    the kept baselines, 500 episodes on evaluation seed 10 000 + seed, as :func:`soo.rl.evaluation.evaluate_agent`)."""
    rows = json.loads((project_root() / "book" / "data" / "rl_screen" / "results_round2.json").read_text())["rows"]
    row = next(r for r in rows if r["setting"] == "official" and r["episodes"] == run.cfg.n_episodes)
    return row["trap_rate"][run.kind][row["seeds"].index(run.seed)]


def test_kept_runs_restore_and_evaluate(tmp_path):
    """A kept run is restored into a fresh out_dir (not trained) with the kept weights, policies and critics, and
    its evaluation gives the trap rate recorded for it when it was evaluated before (0.494 for the deceptive
    baseline of seed 155; to within one of the 500 episodes, where another CPU's float32 rounding may tip one).
    Checked once each with the restored blue critic's last bias moved by 0.01 and with the evaluation on seed
    10 001 + seed: this test failed, the one it replaced (policies only, a trap rate in [0, 1]) passed."""
    from safetensors.torch import load_file

    run = runs.baseline_runs(FULL)[0]
    got = runs.run_all([run], tmp_path, "full")[(run.kind, run.seed)]
    d = runs.agent_dir(tmp_path, "full", run.kind, run.seed)
    assert is_finished(d, run.cfg) and got["episodes"] == run.cfg.n_episodes
    kept = load_file(runs.KEPT_DIR / "baselines" / run.name / "model.safetensors")
    agent = evaluation.load_agent(tmp_path, "full", run.kind, run.seed)
    restored = {f"{part}.{k}": v for part in ("policies", "critics") for k, v in getattr(agent, part).state_dict().items()}
    assert restored.keys() == kept.keys()
    for k, v in restored.items():
        assert torch.equal(v, kept[k]), k
    ev = evaluation.evaluate_agent(FULL, tmp_path, run.kind, run.seed)
    assert ev["eval_episodes"] == 500 and np.isfinite(ev["summary"]["return_blue"])
    assert abs(ev["summary"]["trap_rate"] - recorded_trap_rate(run)) <= 1 / 500 + 1e-12


def test_a_restored_run_follows_a_new_kept_copy(tmp_path):
    """``make rl-full`` again (same settings, new weights): a run restored earlier into an out_dir is restored
    again, and its evaluations are recomputed (the weights are part of their cache key)."""
    import shutil

    from safetensors.torch import load_file, save_file

    run = runs.baseline_runs(FULL)[0]
    kept = tmp_path / "kept"
    shutil.copytree(runs.KEPT_DIR / "baselines" / run.name, kept / "baselines" / run.name)
    out = tmp_path / "out"

    def keep(weights):  # as `make rl-full` keeps a run: its weights and their digest in the manifest
        save_file(weights, kept / "baselines" / run.name / "model.safetensors")
        man = kept / "baselines" / run.name / "manifest.json"
        man.write_text(json.dumps({**json.loads(man.read_text()),
                                   "weights_sha256": runs.weights_sha256(man.parent / "model.safetensors")}))

    runs.run_all([run], out, "full", kept_dir=kept)
    before = evaluation.trained_settings(out, "full", run.kind, run.seed)
    assert runs.run_all([run], out, "full", kept_dir=kept) and evaluation.trained_settings(out, "full", run.kind, run.seed) == before
    weights = load_file(kept / "baselines" / run.name / "model.safetensors")
    weights["policies.1.fc3.bias"] = weights["policies.1.fc3.bias"] + 0.5  # "retrained": same key, new weights
    keep(weights)
    runs.run_all([run], out, "full", kept_dir=kept)
    agent = evaluation.load_agent(out, "full", run.kind, run.seed)
    assert torch.equal(agent.policies[1].fc3.bias, weights["policies.1.fc3.bias"])
    after = evaluation.trained_settings(out, "full", run.kind, run.seed)
    assert after["settings_key"] == before["settings_key"] and after["weights"] != before["weights"]
    # a copy restored by older code (no digest recorded) is compared by its weights
    met = runs.agent_dir(out, "full", run.kind, run.seed) / "metrics.json"
    met.write_text(json.dumps({k: v for k, v in json.loads(met.read_text()).items() if k != "kept_digest"}))
    runs.run_all([run], out, "full", kept_dir=kept)
    assert "kept_digest" not in json.loads(met.read_text())  # same weights: kept as it is
    weights["policies.1.fc3.bias"] = weights["policies.1.fc3.bias"] - 0.25
    keep(weights)
    runs.run_all([run], out, "full", kept_dir=kept)
    assert torch.equal(evaluation.load_agent(out, "full", run.kind, run.seed).policies[1].fc3.bias, weights["policies.1.fc3.bias"])


def test_keep_runs_replaces_each_run_folder_whole(tmp_path, monkeypatch):
    """``keep_runs`` (what ``make rl-full --keep`` ends with) writes each run's folder through
    ``utils.atomic_directory``: the runs of one seed restored from the kept ones and kept again elsewhere are current
    there, with their weights and digests; a second keep that fails while writing the third run's weights (after
    writing half of them) has replaced the first two runs whole and left the third one as it was, whole, with no
    hidden leftovers. Checked once with ``keep_runs`` writing into the run folders in place: the third folder was
    left with half its weights under the old manifest and the test failed."""
    from pathlib import Path

    import safetensors.torch
    from safetensors.torch import load_file

    scfg = scale_config("full", seeds=(155,))
    out, kept = tmp_path / "out", tmp_path / "kept"
    runs.run_all(runs.protocol_runs(scfg), out, "full")
    runs.keep_runs(scfg, out, kept)
    assert set(runs.kept_status(scfg, kept).values()) == {"ok"} and runs.record_weight_digests(kept) == 0
    protocol = runs.protocol_runs(scfg)
    for r in protocol:
        d = kept / ("baselines" if r.init is None else "soo") / r.name
        mine, theirs = load_file(d / "model.safetensors"), load_file(runs.KEPT_DIR / d.relative_to(kept) / "model.safetensors")
        assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine), r.name
    before = {r.name: (kept / ("baselines" if r.init is None else "soo") / r.name / "manifest.json").read_text()
              for r in protocol}
    save, calls = safetensors.torch.save_file, []

    def failing_save(weights, path, *a, **kw):
        calls.append(path)
        if len(calls) == 3:
            Path(path).write_bytes(b"half")
            raise OSError("disk full")
        return save(weights, path, *a, **kw)

    monkeypatch.setattr(safetensors.torch, "save_file", failing_save)
    with pytest.raises(OSError, match="disk full"):
        runs.keep_runs(scfg, out, kept, extra={"again": True})
    for i, r in enumerate(protocol):
        d = kept / ("baselines" if r.init is None else "soo") / r.name
        man = json.loads((d / "manifest.json").read_text())
        assert man.get("again") is (True if i < 2 else None), r.name
        if i >= 2:
            assert (d / "manifest.json").read_text() == before[r.name]
        assert runs.weights_sha256(d / "model.safetensors") == man["weights_sha256"], r.name
    assert not [p for p in kept.rglob("*") if p.name.startswith(".")]
