"""MADDPG: networks, determinism, checkpoints, resume, bad input."""
import json

import numpy as np
import pytest
import torch

from soo.rl.config import RLConfig, scale_config
from soo.rl.maddpg import MADDPG, MLP, ReplayBuffer
from soo.rl.training import load_policies
from soo.rl.stacked import StackedMLP
from soo.rl.training import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


TINY = dict(n_episodes=40, episode_length=10, num_envs=10, batch_size=64, hidden_dim=16, save_interval=20,
            buffer_length=10_000,
            steps_per_update=20)


def test_policy_exposes_hidden_activations():
    pol = MLP(10, 2, 64, policy=True).eval()
    h1, h2, a = pol(torch.randn(5, 10), return_hidden=True)
    assert h1.shape == (5, 64) and h2.shape == (5, 64) and a.shape == (5, 2)
    assert a.abs().max() <= 1
    assert isinstance(pol.in_fn, torch.nn.BatchNorm1d)


def test_one_run_stacked_mlp_equals_the_module():
    """One run (K = 1) answers as the module, on (B, in) and on (1, B, in), with and without autograd; its
    written-out forward takes the plain 2-D shape only."""
    torch.manual_seed(0)
    mlp = MLP(10, 2, 16, policy=True)
    net, x = StackedMLP([mlp]), torch.randn(32, 10)
    want = mlp.eval()(x)
    with torch.no_grad():
        assert torch.equal(net(x, False), want) and torch.equal(net(x[None], False)[0], want)
    h1, h2, out = net(x[None], False, return_hidden=True)  # autograd records the module's operations
    assert out.requires_grad and out.shape == (1, 32, 2) and h1.shape == h2.shape == (1, 32, 16)
    assert torch.equal(out[0].detach(), want)
    with pytest.raises(ValueError, match=r"\(B, in\)"):
        net.forward_train(x[None])


def test_critic_sees_all_observations_and_actions():
    m = MADDPG(RLConfig())
    assert m.critics[0].fc1.in_features == 6 + 10 + 2 + 2


def test_replay_buffer_reward_normalisation():
    buf = ReplayBuffer(8)
    obs = [np.zeros((4, 6), np.float32), np.zeros((4, 10), np.float32)]
    acs = [np.zeros((4, 2), np.float32)] * 2
    for r in (0.0, 1.0, 2.0, 3.0):  # 16 pushes into 8 slots: sums track the overwritten rewards
        buf.push(obs, acs, np.full((4, 2), r), obs)
    assert len(buf) == 8
    np.testing.assert_allclose(buf.rsum, [20.0, 20.0])
    _, _, rews, _, _ = buf.sample(8, np.random.default_rng(0))
    assert torch.allclose(rews[0].mean(), torch.tensor(0.0), atol=1e-6)


def test_same_seed_same_returns(tmp_path):
    cfg = RLConfig(seed=3, **TINY)
    a = train(cfg, tmp_path / "a")
    b = train(cfg, tmp_path / "b")
    ra = [(h["return_red"], h["return_blue"]) for h in a["history"]]
    assert ra == [(h["return_red"], h["return_blue"]) for h in b["history"]]
    assert "losses/vf_1" in a["history"][-1]  # updates happened
    c = train(RLConfig(seed=4, **TINY), tmp_path / "c")
    assert ra != [(h["return_red"], h["return_blue"]) for h in c["history"]]


def test_interrupted_training_resumes_exactly(tmp_path):
    cfg = RLConfig(seed=5, **TINY)
    full = train(cfg, tmp_path / "full")
    part = train(cfg, tmp_path / "part", stop_after=20)
    assert part == {"interrupted": True, "episode": 20}
    assert (tmp_path / "part" / "resume.pt").exists() and not (tmp_path / "part" / "model.pt").exists()
    resumed = train(cfg, tmp_path / "part")
    assert [h["return_blue"] for h in resumed["history"]] == [h["return_blue"] for h in full["history"]]
    sa = torch.load(tmp_path / "full" / "model.pt")["policies"]
    sb = torch.load(tmp_path / "part" / "model.pt")["policies"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_run_is_written_finished_at_its_last_episode_and_a_resume_checkpoint_there_is_not_reused(tmp_path):
    """The last save point writes the finished run (weights, training log) and leaves no resume checkpoint; a resume
    checkpoint that claims the last episode (never written so) is discarded and the run trained from the start, with
    the same result as a fresh run. Checked once with the episode test left out of ``resume_state``: the run was
    "resumed" at its end and ``train`` failed reading a training log that was never written."""
    import json as _json

    cfg = RLConfig(seed=5, **TINY)
    full = train(cfg, tmp_path / "full")
    assert not (tmp_path / "full" / "resume.pt").exists() and (tmp_path / "full" / "model.pt").exists()
    train(cfg, tmp_path / "part", stop_after=20)
    ck = torch.load(tmp_path / "part" / "resume.pt", weights_only=True)
    ck["state"] = _json.dumps({**_json.loads(ck["state"]), "ep": cfg.n_episodes})
    torch.save(ck, tmp_path / "part" / "resume.pt")
    again = train(cfg, tmp_path / "part")
    assert again["history"] == full["history"] and not (tmp_path / "part" / "resume.pt").exists()


def test_checkpoint_reload_and_read_back(tmp_path):
    cfg = RLConfig(seed=1, **TINY)
    m1 = train(cfg, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["hidden_dim"] == 16
    mtime = (tmp_path / "model.pt").stat().st_mtime_ns
    assert train(cfg, tmp_path) == json.loads((tmp_path / "metrics.json").read_text()) == json.loads(json.dumps(m1))
    assert (tmp_path / "model.pt").stat().st_mtime_ns == mtime  # read back, not retrained
    model = load_policies(tmp_path)
    obs = [np.zeros((3, 6), np.float32), np.zeros((3, 10), np.float32)]
    assert model.act(obs)[1].shape == (3, 2)
    with pytest.raises(ValueError, match="checkpoint"):
        load_policies(tmp_path, RLConfig(**{**TINY, "hidden_dim": 32}))


@pytest.mark.parametrize("kwargs,name", [({"n_episodes": 0}, "n_episodes"), ({"n_episodes": -5}, "n_episodes"),
                                         ({"mode": "nice"}, "mode"), ({"radius": 0}, "radius"),
                                         ({"soo_condition": "magic"}, "soo_condition")])
def test_bad_rl_config(kwargs, name):
    with pytest.raises(ValueError, match=name):
        RLConfig(**kwargs)


def test_scale_presets():
    with pytest.raises(ValueError, match="scale"):
        scale_config("huge")
    full = scale_config("full")
    assert full.baseline_episodes == 40_000 and full.soo_episodes == 10_000 and len(full.seeds) == 8
    assert scale_config("smoke", seeds=[1, 2]).seeds == (1, 2)
    with pytest.raises(ValueError, match="baseline_episodes"):
        scale_config("smoke", baseline_episodes=0)
    with pytest.raises(ValueError, match="finetune_reward.*deceptive"):
        scale_config("smoke", finetune_reward="kind")


def test_run_with_other_settings_is_retrained(tmp_path, capsys):
    a = train(RLConfig(seed=3, **TINY), tmp_path)
    b = train(RLConfig(seed=3, **{**TINY, "mode": "honest"}), tmp_path)  # same folder, other reward
    assert "other settings" in capsys.readouterr().out
    assert b["config"]["mode"] == "honest" and a["config"]["mode"] == "deceptive"
    assert json.loads((tmp_path / "metrics.json").read_text())["config"]["mode"] == "honest"
    # an interrupted run with other settings is not resumed either
    train(RLConfig(seed=3, **TINY), tmp_path / "r", stop_after=20)
    c = train(RLConfig(seed=4, **TINY), tmp_path / "r")
    fresh = train(RLConfig(seed=4, **TINY), tmp_path / "c")
    assert c["config"]["seed"] == 4 and c["history"] == fresh["history"]


def test_interrupted_soo_finetuning_resumes_exactly(tmp_path):
    """The SOO term's random generator (synthetic adversaries) is checkpointed with the run."""
    from soo.rl.auxiliary import make_aux_loss

    train(RLConfig(seed=2, **TINY), tmp_path / "base")
    init = load_policies(tmp_path / "base")
    cfg = RLConfig(seed=2, soo_condition="soo", **TINY)

    def aux():  # a fresh loss object per call, as in a new process after an interruption
        return make_aux_loss("soo", init, cfg.radius, np.random.default_rng([cfg.seed, 2]), cfg.soo_batch)

    full = train(cfg, tmp_path / "full", init=init, aux_loss=aux())
    assert train(cfg, tmp_path / "part", init=init, aux_loss=aux(), stop_after=20)["interrupted"]
    resumed = train(cfg, tmp_path / "part", init=init, aux_loss=aux())
    soo_full = [h["losses/soo"] for h in full["history"] if "losses/soo" in h]
    assert len(soo_full) == len(full["history"])  # the SOO term was active in every logged episode
    assert [h.get("losses/soo") for h in resumed["history"]] == soo_full
    sa = torch.load(tmp_path / "full" / "model.pt")["policies"]
    sb = torch.load(tmp_path / "part" / "model.pt")["policies"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_keep_freed_memory_takes_on_linux():
    """The allocator setting of the training loop (no result depends on it) is accepted wherever glibc is."""
    import platform

    from soo.rl.training import keep_freed_memory

    assert keep_freed_memory() is (platform.libc_ver()[0] == "glibc")


@pytest.mark.parametrize("term", [None, "soo"])
def test_red_held_keeps_reds_policy_and_critic_bit_for_bit(tmp_path, term):
    """``hold_red``: red's policy (weights and BatchNorm statistics) and critic end as they started, while blue
    learns; without it (continued training) red changes too. ``term=None``: plain continued training."""
    from soo.rl.auxiliary import make_aux_loss

    train(RLConfig(seed=5, **TINY), tmp_path / "base")
    init = load_policies(tmp_path / "base")
    ends = {}
    for held in (True, False):
        cfg = RLConfig(seed=5, soo_condition=term, hold_red=held, **TINY)
        aux = make_aux_loss(term, init, cfg.radius, np.random.default_rng([5, 2]), cfg.soo_batch)
        assert (aux is None) is (term is None)
        train(cfg, tmp_path / f"held{held}", init=init, aux_loss=aux)
        ends[held] = torch.load(tmp_path / f"held{held}" / "model.pt")
    start = torch.load(tmp_path / "base" / "model.pt")
    for part in ("policies", "critics"):
        red = [k for k in start[part] if k.startswith("0.")]
        blue = [k for k in start[part] if k.startswith("1.")]
        assert all(torch.equal(ends[True][part][k], start[part][k]) for k in red)
        assert not all(torch.equal(ends[False][part][k], start[part][k]) for k in red)
        assert not all(torch.equal(ends[True][part][k], start[part][k]) for k in blue)


def test_finetune_kinds_map_to_term_and_red_held():
    from soo.rl.config import FINETUNE_KINDS, FINETUNES

    scfg = scale_config("smoke")
    for kind in FINETUNE_KINDS:
        cfg = scfg.finetune_config(kind, 155)
        assert (cfg.soo_condition, cfg.hold_red) == FINETUNES[kind] and cfg.n_episodes == scfg.soo_episodes
    with pytest.raises(ValueError, match="kind"):
        scfg.finetune_config("telepathy", 155)
    with pytest.raises(ValueError, match="setting"):
        scale_config("smoke", setting="gamma0")
    assert scale_config("full", setting="gamma099").rl_config("deceptive", 1).gamma == 0.99
    assert scale_config("full", setting="single_env").rl_config("honest", 1).num_envs == 1
