"""``soo.losses`` beyond ``tests/test_losses.py``: the device and dtype a loss is computed on, the last real token
wherever the padding is, one mask given without the other, and the parameter named in each refusal."""
import pytest
import torch

from soo.losses import soo_kl_logits, soo_mse


def _pair(*shape, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g).to(dtype), torch.randn(*shape, generator=g).to(dtype)


@pytest.mark.parametrize("pooling", ["full", "last", "mean"])
@pytest.mark.parametrize("masks", [False, True], ids=["no masks", "masks"])
def test_the_losses_stay_on_the_activations_device(pooling, masks):
    """On the meta device (shapes only, as a GPU would be for this purpose) a tensor made on the CPU inside a loss
    fails: each loss must make its helpers on the activations' device."""
    a, b = torch.empty(2, 5, 4, device="meta"), torch.empty(2, 5, 4, device="meta")
    m = torch.ones(2, 5, dtype=torch.long, device="meta") if masks else None
    assert soo_mse(a, b, m, m, pooling=pooling).device.type == "meta"
    assert soo_kl_logits(a, b, m, m).device.type == "meta"


@pytest.mark.parametrize("pooling", ["full", "last", "mean"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
def test_soo_mse_is_computed_in_the_activations_dtype(pooling, dtype):
    """bf16 activations (the paper's models) give a bf16 loss; float64 ones a float64 loss, equal to the float32
    computation to float32 precision."""
    a, b = _pair(3, 4, 6, dtype=dtype)
    loss = soo_mse(a, b, pooling=pooling)
    assert loss.dtype == dtype
    torch.testing.assert_close(loss.float(), soo_mse(a.float(), b.float(), pooling=pooling),
                               **({} if dtype == torch.float64 else {"rtol": 2e-2, "atol": 1e-3}))


def test_last_pooling_takes_the_last_real_token_wherever_the_padding_is():
    """Right padding too: a one-token prompt padded on the right compares its token at position 0."""
    a, b = _pair(2, 4, 3, dtype=torch.float64, seed=4)
    m_s = torch.tensor([[1, 0, 0, 0], [0, 1, 1, 0]])
    m_o = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 1]])
    want = ((torch.stack([a[0, 0], a[1, 2]]) - torch.stack([b[0, 1], b[1, 3]])) ** 2).mean()
    torch.testing.assert_close(soo_mse(a, b, m_s, m_o, pooling="last"), want)


@pytest.mark.parametrize("side", ["self", "other"])
def test_kl_with_one_mask_counts_the_positions_real_in_that_prompt(side):
    """One mask given, the other prompt all real: the positions masked in the one prompt do not count, as with an
    all-ones mask for the other."""
    ls, lo = _pair(2, 4, 7, seed=2)
    m = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 1]])
    ones = torch.ones_like(m)
    one = soo_kl_logits(ls, lo, m, None) if side == "self" else soo_kl_logits(ls, lo, None, m)
    torch.testing.assert_close(one, soo_kl_logits(ls, lo, m, ones))
    logp_s, logp_o = ls.log_softmax(-1), lo.log_softmax(-1)
    per_pos = (logp_o.exp() * (logp_o - logp_s)).sum(-1)
    torch.testing.assert_close(one, (per_pos * m).sum() / 2)
    assert not torch.allclose(one, soo_kl_logits(ls, lo))


def test_each_refusal_names_its_parameter():
    a = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError, match=r"^pooling='max' is not valid"):
        soo_mse(a, a, pooling="max")
    for loss in (soo_mse, lambda *x: soo_kl_logits(*x)):
        with pytest.raises(ValueError, match=r"^mask_self \(2, 4\) must be \(batch, seq\) = \(2, 3\)$"):
            loss(a, a, torch.ones(2, 4), None)
        with pytest.raises(ValueError, match=r"^mask_other \(3, 3\) must be \(batch, seq\) = \(2, 3\)$"):
            loss(a, a, None, torch.ones(3, 3))
        with pytest.raises(ValueError, match=r"^a_self \(2, 3, 4\) and a_other \(2, 4, 4\) must have the same shape"):
            loss(a, torch.zeros(2, 4, 4))


def test_a_prompt_with_one_real_token_counts_that_token_once():
    """``"mean"`` pooling of a one-token prompt is that token's activation; ``"full"`` pooling over a single jointly
    real position of one feature is that position's squared difference (the counts are not rounded up)."""
    a, b = _pair(1, 3, 2, dtype=torch.float64, seed=5)
    one, all_real = torch.tensor([[0, 0, 1]]), torch.ones(1, 3, dtype=torch.long)
    torch.testing.assert_close(soo_mse(a, b, one, all_real, pooling="mean"),
                               ((a[0, 2] - b[0].mean(0)) ** 2).mean())
    torch.testing.assert_close(soo_mse(b, a, all_real, one, pooling="mean"),
                               ((b[0].mean(0) - a[0, 2]) ** 2).mean())
    a1, b1 = a[..., :1], b[..., :1]
    torch.testing.assert_close(soo_mse(a1, b1, one, all_real, pooling="full"), (a1[0, 2, 0] - b1[0, 2, 0]) ** 2)


@pytest.mark.parametrize("side", ["mask_self", "mask_other"])
def test_a_prompt_with_no_real_token_is_refused_before_any_loss(side):
    """An all-padding row has no last token and no mean; it used to be read as position -1 (``"last"``) or left out
    silently (``"full"``). Refusing it makes ``_last_index``'s fill value unreachable (mutant ``_last_index`` 21)."""
    a, b = _pair(3, 4, 2)
    empty = torch.ones(3, 4, dtype=torch.long)
    empty[1] = 0
    masks = {"mask_self": None, "mask_other": None, side: empty}
    for pooling in ("full", "last", "mean"):
        with pytest.raises(ValueError, match=rf"^{side} has no real token in rows \[1\]"):
            soo_mse(a, b, masks["mask_self"], masks["mask_other"], pooling=pooling)
    with pytest.raises(ValueError, match=rf"^{side} has no real token in rows \[1\]"):
        soo_kl_logits(a, b, masks["mask_self"], masks["mask_other"])
