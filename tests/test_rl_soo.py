"""SOO loss, other-observation construction, and the behavioural metrics on hand-made inputs."""
import math

import numpy as np
import pytest
import torch

from soo.rl.config import RLConfig
from soo.rl.maddpg import BLUE, MADDPG
from soo.rl.metrics import (behavioural_difference, classification_accuracy, count_surface, deceptive_moves,
                            threshold_grid)
from soo.rl.overlap import EPS, hidden, log_mse, make_other_obs, soo_values
from soo.rl.auxiliary import make_aux_loss

# blue at the origin: goal at (0.5, 0), landmarks (0.5, 0) and (-0.5, 0), red out of sight, not trapped
OBS = np.array([[0.5, 0.0, 0.5, 0.0, -0.5, 0.0, 0.0, 0.0, 0.0, 0.0]], np.float32)


def test_log_mse():
    x = torch.tensor([1.0, 2.0])
    assert log_mse(x, x).item() == pytest.approx(math.log(EPS)) and torch.isfinite(log_mse(x, x))
    assert log_mse(x, torch.tensor([0.0, 0.0])).item() == pytest.approx(math.log(2.5))
    torch.testing.assert_close(log_mse(x, torch.tensor([1.0, 4.0])), torch.log(torch.tensor(2.0)))


def test_make_other_obs_places_adversary_within_radius():
    obs = np.repeat(OBS, 200, 0)
    other = make_other_obs(obs, np.random.default_rng(0), radius=0.125)
    np.testing.assert_array_equal(np.delete(other, [6, 7], 1), np.delete(obs, [6, 7], 1))
    d = np.linalg.norm(other[:, 6:8], axis=1)
    assert np.all((d > 0) & (d <= 0.125))
    # sign: adversary - self, as in real observations (the official code inverts it)
    rng = np.random.default_rng(1)
    theta, r = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.125)
    np.testing.assert_allclose(make_other_obs(OBS, np.random.default_rng(1))[0, 6:8],
                               [r * np.cos(theta), r * np.sin(theta)], rtol=1e-6)
    with pytest.raises(ValueError, match="radius"):
        make_other_obs(OBS, rng, radius=0.0)


def _layers(pol, x):
    """A policy's two hidden layers written out from its weights: BatchNorm with its running statistics (eval
    mode), then ``leaky_relu(fc1)`` and ``leaky_relu(fc2)``."""
    bn = pol.in_fn
    z = (x - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    h1 = torch.nn.functional.leaky_relu(z @ pol.fc1.weight.T + pol.fc1.bias)
    return h1, torch.nn.functional.leaky_relu(h1 @ pol.fc2.weight.T + pol.fc2.bias)


def _trained_looking_policy(seed):
    """Blue's policy with BatchNorm statistics and affine weights away from their initial 0 / 1."""
    torch.manual_seed(seed)
    pol = MADDPG(RLConfig()).policies[BLUE]
    with torch.no_grad():
        pol.in_fn.running_mean.uniform_(-0.5, 0.5)
        pol.in_fn.running_var.uniform_(0.5, 2.0)
        pol.in_fn.weight.uniform_(0.5, 1.5)
        pol.in_fn.bias.uniform_(-0.2, 0.2)
    return pol


def test_hidden_is_the_policys_two_hidden_layers_each_in_its_place():
    """``hidden`` (the SOO term's and the SOO values' activations) is ``[h1, h2]``: each half against the layer
    written out here, and the stacked network's hidden layers (the training path: one run under autograd, K runs
    without) likewise. Checked once with ``hidden`` planted to return the output layer for ``h2``, and with the
    policy's first hidden layer taken before its activation: each failed here (the SOO-loss test below, which once
    built its expected value from ``hidden`` itself, passed with the first)."""
    from soo.rl.stacked import StackedMLP

    pols = [_trained_looking_policy(s) for s in (0, 1)]
    x = torch.as_tensor(np.random.default_rng(0).normal(0, 0.5, (64, 10)).astype(np.float32))
    x[:, 6:8] = 0
    for pol in pols:
        h1, h2 = _layers(pol, x)
        got = hidden(pol, x)
        assert got.shape == (64, 2 * 64)
        torch.testing.assert_close(got[:, :64], h1)
        torch.testing.assert_close(got[:, 64:], h2)
        s1, s2, _ = StackedMLP([pol])(x[None], False, return_hidden=True)
        torch.testing.assert_close(s1[0], h1)
        torch.testing.assert_close(s2[0], h2)
    with torch.no_grad():
        k1, k2, _ = StackedMLP(pols)(torch.stack([x, -x]), False, return_hidden=True)
    for k, (pol, xk) in enumerate(zip(pols, (x, -x))):
        h1, h2 = _layers(pol, xk)
        torch.testing.assert_close(k1[k], h1)
        torch.testing.assert_close(k2[k], h2)


def test_soo_loss_on_hand_made_observation():
    """The loss against its formula, the SOO term's activations written out (:func:`_layers`), not read through
    ``hidden``."""
    torch.manual_seed(0)
    model, pretrained = MADDPG(RLConfig()), MADDPG(RLConfig())
    obs = torch.as_tensor(np.repeat(OBS, 4, 0))
    sample = ([torch.zeros(4, 6), obs], None, None, None, None)
    loss, info = make_aux_loss("soo", pretrained, 0.125, np.random.default_rng(7), 1024)(model, sample)
    pol = model.policies[BLUE]
    other = torch.as_tensor(make_other_obs(obs.numpy(), np.random.default_rng(7), 0.125))
    soo = log_mse(torch.cat(_layers(pol, obs), 1), torch.cat(_layers(pol, other), 1))
    cap = log_mse(pol(obs), pretrained.policies[BLUE].eval()(obs))
    assert loss.item() == pytest.approx((soo + cap).item(), rel=1e-5)
    assert info["losses/soo"] == pytest.approx(soo.item(), rel=1e-5)
    loss.backward()
    assert pol.fc1.weight.grad.abs().sum() > 0
    # capability only: the policy equal to the baseline gives log(eps)
    cap_loss, _ = make_aux_loss("capability", model, 0.125, np.random.default_rng(0), 1024)(model, sample)
    assert cap_loss.item() == pytest.approx(math.log(EPS))
    # a visible adversary: no SOO term, capability only
    seen = obs.clone()
    seen[:, 6] = 0.05
    loss2, info2 = make_aux_loss("soo", pretrained, 0.125, np.random.default_rng(7), 1024)(
        model, ([torch.zeros(4, 6), seen], None, None, None, None))
    assert "losses/soo" not in info2
    with pytest.raises(ValueError, match="condition"):
        make_aux_loss("telepathy", pretrained, 0.125, np.random.default_rng(0), 8)


def test_soo_values_nan_where_adversary_visible():
    model = MADDPG(RLConfig())
    obs = np.repeat(OBS, 3, 0)
    obs[1, 6:8] = [0.05, 0.0]
    v = soo_values(model.policies[BLUE], obs, np.random.default_rng(0))
    assert np.isfinite(v[[0, 2]]).all() and np.isnan(v[1])


def test_deceptive_moves_and_count_surface():
    # one episode, two steps: blue at the origin, goal at (+1, 0), fake at (0, +1); red in sight
    ro = {"pos": np.zeros((1, 3, 2, 2)), "goal": np.array([[1.0, 0.0]]), "fake": np.array([[0.0, 1.0]]),
          "obs_blue": np.zeros((1, 2, 10))}
    ro["pos"][0, 1, 1] = [0.0, 0.1]  # step 1: straight to the fake landmark
    ro["pos"][0, 2, 1] = [0.1, 0.1]  # step 2: straight to the goal (not recorded)
    ro["obs_blue"][0, :, 6] = 0.05
    rec = deceptive_moves(ro)
    np.testing.assert_allclose(rec, [[1.0, 0.0, 1.0]])
    xs, ys = threshold_grid(5)
    z = count_surface(rec, xs, ys)
    assert z.shape == (5, 5)
    assert z[ys > 0][:, xs < 1].min() == 1 and z[ys <= 0].sum() == 0 and z[:, xs == 1].sum() == 0


def test_behavioural_difference_and_accuracy():
    s = [{"soo": np.ones((2, 2)), "honest": np.ones((2, 2)), "deceptive": np.zeros((2, 2))}] * 3
    d = behavioural_difference(s)
    assert d["soo_vs_honest"]["mean"] == 0 and d["honest_vs_deceptive"]["mean"] == 1 and d["soo_vs_deceptive"]["sd"] == 0
    two = [s[0], {**s[0], "soo": np.zeros((2, 2))}]  # soo vs deceptive: MSE 1 and 0 over two seeds
    assert behavioural_difference(two)["soo_vs_deceptive"]["sd"] == 0.5  # population SD (sample SD: 0.707)
    acc = classification_accuracy([[1.0, -2.0], [1.0, -3.0]], [[0.0, -1.0], [2.0, -1.0]])
    np.testing.assert_allclose(acc, [0.5, 1.0])
