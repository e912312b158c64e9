"""soo.losses: each loss against an independent computation (own forward hooks), and its identities."""
import pytest
import torch
import torch.nn.functional as F

from soo.llm import models
from soo.losses import soo_kl_logits, soo_mse
from soo.llm.scenarios import soo_pairs
from soo.llm.config import LLMTrainConfig
from soo.llm.train import objective_loss, tokenize_pairs

PAIRS = soo_pairs()[:3]


def _encode(tok, max_length=None):
    return tokenize_pairs(tok, [p.self_prompt for p in PAIRS], [p.other_prompt for p in PAIRS], max_length)


def _on(model, enc):
    """The encoding on the model's device (the tests also run on CUDA: scripts/cuda_check.py)."""
    return {k: v.to(models.input_device(model)) for k, v in enc.items()}


def _hooked_acts(model, enc, layer):
    """Output of model.model.layers[layer].self_attn.o_proj via a hook registered here."""
    box = {}
    h = model.model.layers[layer].self_attn.o_proj.register_forward_hook(lambda m, i, o: box.__setitem__("a", o))
    try:
        with torch.no_grad():
            model(**_on(model, enc), use_cache=False)
    finally:
        h.remove()
    return box["a"].double().cpu()


def _manual(a_s, a_o, m_s, m_o, pooling):
    m_s, m_o = m_s.double(), m_o.double()
    if pooling == "full":
        joint = m_s * m_o
        num = sum(((a_s[b, t] - a_o[b, t]) ** 2).sum() for b in range(a_s.shape[0]) for t in range(a_s.shape[1])
                  if joint[b, t] > 0)
        return num / (joint.sum() * a_s.shape[2])
    if pooling == "last":
        idx_s = [int(torch.nonzero(r).max()) for r in m_s]
        idx_o = [int(torch.nonzero(r).max()) for r in m_o]
        v_s = torch.stack([a_s[b, i] for b, i in enumerate(idx_s)])
        v_o = torch.stack([a_o[b, i] for b, i in enumerate(idx_o)])
        return ((v_s - v_o) ** 2).mean()
    v_s = torch.stack([a_s[b][m_s[b] > 0].mean(0) for b in range(a_s.shape[0])])
    v_o = torch.stack([a_o[b][m_o[b] > 0].mean(0) for b in range(a_o.shape[0])])
    return ((v_s - v_o) ** 2).mean()


def test_soo_mse_matches_hooked_computation(tiny):
    name, model, tok = tiny
    es, eo = _encode(tok)
    assert (es["attention_mask"] == 0).any() or (eo["attention_mask"] == 0).any(), "test needs some padding"
    assert es["input_ids"].shape == eo["input_ids"].shape
    for layer in (0, 1):
        a_s, a_o = _hooked_acts(model, es, layer), _hooked_acts(model, eo, layer)
        for pooling in ("full", "last", "mean"):
            expected = _manual(a_s, a_o, es["attention_mask"], eo["attention_mask"], pooling)
            cfg = LLMTrainConfig(model=name, layer=layer, pooling=pooling)
            with torch.no_grad():
                got = objective_loss(model, cfg, es, eo)
            assert expected > 0
            torch.testing.assert_close(got.double().cpu(), expected, rtol=1e-5, atol=1e-9, msg=f"{layer} {pooling}")


def _manual_kl(ls, lo, mask=None):
    p_o = torch.softmax(lo.double(), -1)
    kl = (p_o * (torch.log_softmax(lo.double(), -1) - torch.log_softmax(ls.double(), -1))).sum(-1)  # (B, T)
    if mask is not None:
        kl = kl * mask
    return kl.sum() / ls.shape[0]


@pytest.mark.parametrize("max_length", [None, 32])
def test_soo_kl_logits_matches_manual_kl(tiny, max_length):
    """Every tiny architecture, with dynamic and with fixed padding (gemma2's logits are soft-capped)."""
    name, model, tok = tiny
    es, eo = _encode(tok, max_length)
    with torch.no_grad():
        ls = model(**_on(model, es), use_cache=False).logits.cpu()
        lo = model(**_on(model, eo), use_cache=False).logits.cpu()
        cfg = LLMTrainConfig(model=name, objective="soo_kl_logits", layer=0, max_length=max_length)
        got = objective_loss(model, cfg, es, eo).cpu()
    mask = None if max_length else (es["attention_mask"] * eo["attention_mask"]).double()
    expected = _manual_kl(ls, lo, mask)
    torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=1e-6)
    # the official formula: F.kl_div(log_softmax(self), softmax(other), reduction="batchmean")
    if max_length:
        ref = F.kl_div(F.log_softmax(ls, -1), F.softmax(lo, -1), reduction="batchmean")
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-6)
        assert es["input_ids"].shape[1] == max_length


# ----------------------------------------------------------------------------- identities
@pytest.mark.parametrize("pooling", ["full", "last", "mean"])
def test_soo_mse_identities(pooling):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 5, 4, generator=g), torch.randn(3, 5, 4, generator=g)
    m_a = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 1, 1, 1, 1]])
    m_b = torch.tensor([[0, 1, 1, 1, 1], [0, 0, 0, 1, 1], [1, 1, 1, 1, 1]])
    assert soo_mse(a, a, m_a, m_a, pooling=pooling).item() == 0.0
    assert soo_mse(a, b, m_a, m_b, pooling=pooling) > 0
    torch.testing.assert_close(soo_mse(a, b, m_a, m_b, pooling=pooling), soo_mse(b, a, m_b, m_a, pooling=pooling))


@pytest.mark.parametrize("pooling", ["full", "last", "mean"])
def test_soo_mse_gradient_flows_into_both_activations(pooling):
    """The paper's loss has gradients through both forward passes: ``soo_mse``'s gradient with respect to the self
    and the other activations equals that of this file's own loop formula (:func:`_manual`, autograd in float64),
    and neither is zero. (The other loss tests run under ``no_grad``.) Checked once with ``a_other.detach()`` planted
    in ``soo_mse``: the other activations got no gradient and the test failed."""
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(3, 5, 4, generator=g, dtype=torch.float64), torch.randn(3, 5, 4, generator=g, dtype=torch.float64)
    m_a = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 1, 1, 1, 1]])
    m_b = torch.tensor([[0, 1, 1, 1, 1], [0, 0, 0, 1, 1], [1, 1, 1, 1, 1]])
    grads = []
    for loss_of in (lambda x, y: soo_mse(x, y, m_a, m_b, pooling=pooling), lambda x, y: _manual(x, y, m_a, m_b, pooling)):
        x, y = a.clone().requires_grad_(), b.clone().requires_grad_()
        loss_of(x, y).backward()
        assert x.grad is not None and y.grad is not None, "a pass got no gradient"
        grads.append((x.grad, y.grad))
    (gs, go), (ms, mo) = grads
    torch.testing.assert_close(gs, ms)
    torch.testing.assert_close(go, mo)
    assert gs.abs().sum() > 0 and go.abs().sum() > 0


@pytest.mark.parametrize("pooling", ["full", "last", "mean"])
def test_soo_mse_padding_invariance(pooling):
    """Extra left padding (masked) changes nothing, whatever the padded values are."""
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(2, 4, 8, generator=g), torch.randn(2, 4, 8, generator=g)
    m = torch.ones(2, 4, dtype=torch.long)
    base = soo_mse(a, b, m, m, pooling=pooling)
    pad = 3
    a2 = torch.cat([100 * torch.randn(2, pad, 8, generator=g), a], 1)
    b2 = torch.cat([-50 * torch.randn(2, pad, 8, generator=g), b], 1)
    m2 = torch.cat([torch.zeros(2, pad, dtype=torch.long), m], 1)
    torch.testing.assert_close(soo_mse(a2, b2, m2, m2, pooling=pooling), base)
    # without masks the padding would count (so the test can fail); "last" ignores left padding anyway
    if pooling != "last":
        assert not torch.allclose(soo_mse(a2, b2, pooling=pooling), base)


def test_soo_mse_padding_invariance_on_model(tiny):
    """Fixed padding (max_length) vs dynamic padding: same "full" loss on a real model."""
    name, model, tok = tiny
    cfg = LLMTrainConfig(model=name, layer=1)
    with torch.no_grad():
        dyn = objective_loss(model, cfg, *_encode(tok))
        fixed = objective_loss(model, cfg, *_encode(tok, 48))
    torch.testing.assert_close(fixed, dyn, rtol=1e-4, atol=1e-7)


def test_soo_mse_bad_input():
    a = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError, match="pooling"):
        soo_mse(a, a, pooling="max")
    with pytest.raises(ValueError, match="shape"):
        soo_mse(a, torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="mask_self"):
        soo_mse(a, a, torch.ones(2, 4))
    with pytest.raises(ValueError, match="shape"):
        soo_kl_logits(torch.zeros(2, 3, 5), torch.zeros(2, 3, 6))


def test_soo_kl_identities():
    g = torch.Generator().manual_seed(2)
    ls, lo = torch.randn(2, 4, 7, generator=g), torch.randn(2, 4, 7, generator=g)
    assert soo_kl_logits(ls, ls).abs().item() < 1e-6
    assert soo_kl_logits(ls, lo) > 0
    m = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])
    ls2 = ls.clone()
    ls2[0, 0] = 100.0  # a masked-out position: no effect with masks
    torch.testing.assert_close(soo_kl_logits(ls2, lo, m, m), soo_kl_logits(ls, lo, m, m))
