"""The fast update equals the reference update, and K runs trained stacked equal the same K runs trained one
at a time.

* One run (K = 1) does the reference's arithmetic operation for operation (its backward is written out, but
  with the kernels autograd calls, in the same order), so parameters after updates from identical inputs are
  **bit-identical** in float32 (exact equality is asserted, not a tolerance), and ``train`` reproduces
  ``train_reference``'s training log exactly. (Two shortcuts were tried and dropped for this: a BatchNorm
  backward over only the two action columns, and ``add_(alpha=)`` for the regulariser's gradient; each moved
  parameters by ~1e-5 after one update, Adam amplifying a last-bit difference where a gradient is near eps.)
* K > 1 runs use batched matrix products (``baddbmm``) whose float32 rounding differs from ``F.linear``'s in
  the last bit; Adam turns a last-bit difference in a gradient near its eps (1e-8) into a ~1e-5 parameter
  difference, and RL training amplifies it like any change of hardware would (after 200 episodes returns
  differ by up to ~14 in float32). So stacked == separate is tested where rounding cannot hide a semantic
  difference: in **float64**, every logged return and loss of every run and every final policy parameter
  agree within ``TOL = 1e-6`` (measured: at most ~3e-9).
"""
import copy
import tempfile

import numpy as np
import pytest
import torch

from soo.rl.config import RLConfig
from soo.rl.env import BatchedDeceptionEnv, EnvConfig, StackedDeceptionEnv
from soo.rl.maddpg import MADDPG, ReplayBuffer, train_reference
from soo.rl.training import load_policies
from soo.rl.stacked import StackedMADDPG, StackedReplayBuffer
from soo.rl.training import train, train_stacked
from soo.rl.auxiliary import make_aux_loss

SMALL = dict(n_episodes=200, episode_length=25, num_envs=50, batch_size=128, hidden_dim=32, save_interval=100,
             buffer_length=20_000, steps_per_update=50)
TOL = 1e-6


@pytest.fixture()
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _filled_buffers(n=3000, seed=0):
    """The same random transitions in a reference buffer and a K = 1 stacked buffer (half with red out of sight)."""
    g = np.random.default_rng(seed)
    rb, sb = ReplayBuffer(2 * n), StackedReplayBuffer(1, 2 * n)
    obs = [g.standard_normal((n, 6)).astype(np.float32), g.standard_normal((n, 10)).astype(np.float32)]
    obs[1][: n // 2, 6:8] = 0
    nxt = [g.standard_normal((n, 6)).astype(np.float32), g.standard_normal((n, 10)).astype(np.float32)]
    acs = [g.uniform(-1, 1, (n, 2)).astype(np.float32) for _ in range(2)]
    rew = (g.standard_normal((n, 2)) * 3).astype(np.float32)
    rb.push(obs, acs, rew, nxt)
    sb.push([o[None] for o in obs], [a[None] for a in acs], rew[None], [o[None] for o in nxt])
    return rb, sb


@pytest.mark.parametrize("condition", [None, "soo", "capability", "random"])
def test_fast_update_bit_identical_to_reference(condition):
    cfg = RLConfig(seed=3)
    torch.manual_seed(3)
    ref = MADDPG(cfg)
    fast = StackedMADDPG([copy.deepcopy(ref)])
    base = MADDPG(cfg)  # a frozen "pretrained" policy for the fine-tuning loss
    aux = lambda: make_aux_loss(condition, base, 0.125, np.random.default_rng(5), 1024)  # noqa: E731
    ref_aux = aux() if condition else None
    fast_aux = aux().stacked([aux()], "cpu") if condition else None
    rb, sb = _filled_buffers()
    r1, r2 = np.random.default_rng(1), np.random.default_rng(1)
    for _ in range(3):  # three rounds, so Adam's moments and the targets are exercised too
        for a in range(2):
            s, rows = rb.sample(1024, r1), sb.sample(1024, [r2])
            torch.testing.assert_close(torch.cat([*s[0], *s[1]], 1), rows[0, :, :20], rtol=0, atol=0)
            ref.update_reference(s, a, ref_aux if a == 1 else None)
            fast.update(rows, a, fast_aux if a == 1 else None)
        ref.update_targets()
        fast.update_targets()
    got, want = fast.export(0).state_dict(), ref.state_dict()
    for k, v in want.items():
        assert torch.equal(got[k], v), f"{k}: max difference {(got[k].double() - v.double()).abs().max().item()}"


def test_stacked_env_equals_separate_envs():
    cfgs = [EnvConfig(mode="deceptive"), EnvConfig(mode="honest")]
    stacked = StackedDeceptionEnv(20, cfgs, seeds=[7, 8])
    alone = [BatchedDeceptionEnv(20, c, seed=s) for c, s in zip(cfgs, (7, 8))]
    obs = stacked.reset()
    obs1 = [e.reset() for e in alone]
    rng = np.random.default_rng(0)
    for _ in range(30):
        for k in range(2):
            for a in range(2):
                np.testing.assert_array_equal(obs[a][k], obs1[k][a])
        acts = [rng.uniform(-1, 1, (2, 20, 2)) for _ in range(2)]
        obs, rew, done, info = stacked.step(acts)
        outs = [e.step([acts[0][k], acts[1][k]]) for k, e in enumerate(alone)]
        obs1 = [o[0] for o in outs]
        for k in range(2):
            np.testing.assert_array_equal(rew[k], outs[k][1])
            np.testing.assert_array_equal(info["trapped"][k], outs[k][3]["trapped"])
    assert rew[0][:, 1].max() >= rew[1][:, 1].max()  # the honest run never gets the trap bonus


def _max_return_gap(a, b):
    keys = ("return_red", "return_blue", "losses/vf_0", "losses/pol_1", "losses/capability")
    return max(abs(x[key] - y[key]) for x, y in zip(a["history"], b["history"]) for key in keys if key in x)


def _max_param_gap(dir_a, dir_b):
    pa, pb = load_policies(dir_a).state_dict(), load_policies(dir_b).state_dict()
    return max((pa[k].double() - pb[k].double()).abs().max().item() for k in pa if k.startswith("policies."))


def test_stacked_baselines_equal_separate_runs(tmp_path, float64):
    """The seeds x modes of the baselines: 3 runs stacked == the same 3 runs one at a time."""
    cfgs = [RLConfig(seed=11, mode="deceptive", **SMALL), RLConfig(seed=12, mode="honest", **SMALL),
            RLConfig(seed=13, mode="deceptive", **SMALL)]
    stacked = train_stacked(cfgs, [tmp_path / f"stack{k}" for k in range(3)])
    for k, cfg in enumerate(cfgs):
        alone = train(cfg, tmp_path / f"alone{k}")
        assert len(alone["history"]) == len(stacked[k]["history"]) == 4
        assert "losses/vf_1" in stacked[k]["history"][-1]
        gap, pgap = _max_return_gap(stacked[k], alone), _max_param_gap(tmp_path / f"stack{k}", tmp_path / f"alone{k}")
        print(f"run {k}: max return gap {gap:.2e}, max policy parameter gap {pgap:.2e}")
        assert gap <= TOL and pgap <= TOL
        assert stacked[k]["settings_key"] == alone["settings_key"]
    assert stacked[0]["history"] != stacked[2]["history"]  # the runs are independent, not copies


def test_stacked_finetuning_equals_separate_runs(tmp_path, float64):
    """The seeds x conditions of the fine-tuning: SOO, capability and random stacked == one at a time, with
    the loss's own generator per run."""
    base_cfg = RLConfig(seed=21, **SMALL)
    train(base_cfg, tmp_path / "base")
    init = load_policies(tmp_path / "base")
    conds = ("soo", "capability", "random")
    cfgs = [RLConfig(seed=21, soo_condition=c, **{**SMALL, "n_episodes": 150}) for c in conds]
    aux = lambda c: make_aux_loss(c, init, 0.125, np.random.default_rng([21, 2]), 128)  # noqa: E731
    stacked = train_stacked(cfgs, [tmp_path / c for c in conds], [init] * 3, [aux(c) for c in conds])
    for c, cfg, st in zip(conds, cfgs, stacked):
        alone = train(cfg, tmp_path / f"alone_{c}", init=init, aux_loss=aux(c))
        gap, pgap = _max_return_gap(st, alone), _max_param_gap(tmp_path / c, tmp_path / f"alone_{c}")
        print(f"{c}: max return gap {gap:.2e}, max policy parameter gap {pgap:.2e}")
        assert gap <= TOL and pgap <= TOL
        soo_a = [h.get("losses/soo") for h in alone["history"]]
        soo_s = [h.get("losses/soo") for h in st["history"]]
        assert (soo_a[-1] is None) == (c == "capability") == (soo_s[-1] is None)
        if c != "capability":
            np.testing.assert_allclose(soo_s, soo_a, rtol=0, atol=TOL)


def test_interrupted_stack_resumes_exactly(tmp_path):
    """Each run of a stack checkpoints into its own folder; an interrupted stack resumes to the same result."""
    cfgs = [RLConfig(seed=31, **SMALL), RLConfig(seed=32, mode="honest", **SMALL)]
    full = train_stacked(cfgs, [tmp_path / "f0", tmp_path / "f1"])
    part = train_stacked(cfgs, [tmp_path / "p0", tmp_path / "p1"], stop_after=100)
    assert all(p["interrupted"] for p in part) and (tmp_path / "p1" / "resume.pt").exists()
    resumed = train_stacked(cfgs, [tmp_path / "p0", tmp_path / "p1"])
    for f, r in zip(full, resumed):
        assert f["history"] == r["history"]


def test_stack_rejects_mixed_settings(tmp_path):
    with pytest.raises(ValueError, match="batch_size"):
        train_stacked([RLConfig(seed=1, **SMALL), RLConfig(seed=2, **{**SMALL, "batch_size": 64})],
                      [tmp_path / "a", tmp_path / "b"])


def test_reference_loop_matches_fast_loop():
    """``train_reference`` (plain modules, reference buffer) and ``train`` give the same training log."""
    cfg = RLConfig(seed=5, **{**SMALL, "n_episodes": 100})
    ref = train_reference(cfg)
    with tempfile.TemporaryDirectory() as d:
        fast = train(cfg, d)
    for a, b in zip(ref["history"], fast["history"]):
        assert a["return_red"] == b["return_red"] and a["return_blue"] == b["return_blue"]
        assert a["losses/vf_0"] == pytest.approx(b["losses/vf_0"], rel=0, abs=0)


def test_random_control_trains_like_capability_control(tmp_path):
    """The random control adds a constant (no gradient) drawn from the loss's own generator: trained alone it is
    the capability-only run bit for bit (in a stack the two differ by rounding; the book says so)."""
    torch.manual_seed(0)
    init = MADDPG(RLConfig(**SMALL))
    runs = {c: train(RLConfig(seed=7, soo_condition=c, **{**SMALL, "n_episodes": 150}), tmp_path / c, init=init,
                     aux_loss=make_aux_loss(c, init, 0.125, np.random.default_rng([7, 2]), 128))
            for c in ("capability", "random")}
    cap, rnd = (runs[c]["history"] for c in ("capability", "random"))
    assert [h["return_blue"] for h in cap] == [h["return_blue"] for h in rnd]
    assert _max_param_gap(tmp_path / "capability", tmp_path / "random") == 0
    assert "losses/soo" in rnd[-1] and "losses/soo" not in cap[-1]
