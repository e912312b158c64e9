"""soo.train: gradient locality, QLoRA on CPU, determinism, save/reload, accumulation, input checks."""
import dataclasses

import pytest
import torch
from torch import nn

from soo.llm import models
from soo.llm import train as T
from soo.llm.evaluate import score_scenarios
from soo.llm.scenarios import burglar, soo_pairs
from soo.llm.config import LLMTrainConfig
from soo.llm.train import lora_model, objective_loss, tokenize_pairs

TINY = "tiny-random-llama"
PAIRS = soo_pairs()[:8]


def _fresh(name=TINY, **kw):
    """A freshly loaded model (get_peft_model modifies the base in place: never reuse the fixture)."""
    return models.load(name, **kw)


def _batch(tok, n=4, max_length=None):
    return tokenize_pairs(tok, [p.self_prompt for p in PAIRS[:n]], [p.other_prompt for p in PAIRS[:n]], max_length)


def _layer_of(name):
    parts = name.split(".")
    return int(parts[parts.index("layers") + 1])


# ----------------------------------------------------------------------------- gradient locality
def test_soo_mse_gradients_only_reach_lora_at_or_below_layer():
    model, tok = _fresh()
    cfg = LLMTrainConfig(model=TINY, layer=0, lora_dropout=0.0, lr=1e-2)
    model = lora_model(model, cfg)
    base_before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" not in n}
    assert all(not p.requires_grad for n, p in model.named_parameters() if "lora_" not in n)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    model.train()
    loss = objective_loss(model, cfg, *_batch(tok))
    assert loss > 0
    loss.backward()
    lora = {n: p for n, p in model.named_parameters() if "lora_" in n}
    assert {_layer_of(n) for n in lora} == {0, 1}
    low = [n for n, p in lora.items() if _layer_of(n) <= 0 and p.grad is not None and p.grad.abs().sum() > 0]
    assert low, "no LoRA parameter at layer 0 received a gradient"
    for n, p in lora.items():
        if _layer_of(n) > 0:
            assert p.grad is None or p.grad.abs().sum() == 0, n
    for n, p in model.named_parameters():
        if "lora_" not in n:
            assert p.grad is None, n
    opt.step()
    for n, p in model.named_parameters():
        if "lora_" not in n:
            assert torch.equal(p, base_before[n]), n


def _hooked_soo_mse(model, layer, es, eo, held=None):
    """The "full" SOO MSE computed here: the o_proj output of layer ``layer`` caught by this test's own hook in a
    whole forward pass of each prompt (graph attached), and the mean over jointly real positions written out.
    ``held``: 0 or 1 detaches the self or the other pass's activations (that pass gives no gradient)."""
    acts = []
    site = model.base_model.model.model.layers[layer].self_attn.o_proj
    h = site.register_forward_hook(lambda m, i, o: acts.append(o))
    try:
        for enc in (es, eo):
            model(**enc, use_cache=False)
    finally:
        h.remove()
    if held is not None:
        acts[held] = acts[held].detach()
    joint = (es["attention_mask"] * eo["attention_mask"]).unsqueeze(-1).to(acts[0].dtype)
    return ((acts[0] - acts[1]) ** 2 * joint).sum() / (joint.sum() * acts[0].shape[-1])


def test_soo_mse_gradient_flows_through_both_passes():
    """The training loss's gradient on every LoRA weight equals the gradient of the hooked computation above, which
    differentiates through the self and the other pass; and each pass gives a non-zero share of it (the other pass's
    share: the gradient with the self activations held fixed, and the reverse). Checked once with
    ``a_other.detach()`` planted in ``objective_loss``: its gradient lost the other pass's share and the test failed
    (the gradient-locality and determinism tests passed with it)."""
    model, tok = _fresh()
    cfg = LLMTrainConfig(model=TINY, layer=1, lora_dropout=0.0)
    model = lora_model(model, cfg).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # B is zero at init: give every LoRA weight a value, so that every one gets a gradient
        for n, p in model.named_parameters():
            if "lora_" in n:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    es, eo = _batch(tok)
    lora = {n: p for n, p in model.named_parameters() if "lora_" in n}

    def grads(loss):
        model.zero_grad(set_to_none=True)
        loss.backward()
        return {n: (torch.zeros_like(p) if p.grad is None else p.grad.detach().clone()) for n, p in lora.items()}

    got = grads(objective_loss(model, cfg, es, eo))
    ref = grads(_hooked_soo_mse(model, 1, es, eo))
    for n in ref:
        torch.testing.assert_close(got[n], ref[n], rtol=1e-4, atol=1e-9, msg=n)
    other_share, self_share = grads(_hooked_soo_mse(model, 1, es, eo, held=0)), grads(_hooked_soo_mse(model, 1, es, eo, held=1))
    for share in (self_share, other_share):
        assert sum(v.abs().sum() for v in share.values()) > 1e-3 * sum(v.abs().sum() for v in ref.values())
    for n in ref:
        torch.testing.assert_close(self_share[n] + other_share[n], ref[n], rtol=1e-4, atol=1e-9, msg=n)


# ----------------------------------------------------------------------------- QLoRA on CPU
def _lora_grads(model, cfg, es, eo):
    model.zero_grad(set_to_none=True)
    model.eval()  # no dropout
    objective_loss(model, cfg, es, eo).backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if "lora_" in n and p.grad is not None}


def test_4bit_lora_gradients_match_dequantized_fp32():
    import bitsandbytes.functional as bnbF

    q_model, tok = _fresh(quantization="4bit")
    f_model, _ = _fresh()
    deq = {}
    for n, m in q_model.named_modules():
        if type(m).__name__ == "Linear4bit":
            deq[n] = bnbF.dequantize_4bit(m.weight.data, m.weight.quant_state).float()
    assert len(deq) == 14  # 7 projections x 2 layers
    with torch.no_grad():
        for n, w in deq.items():
            f_model.get_submodule(n).weight.copy_(w)
    cfg = LLMTrainConfig(model=TINY, layer=1, quantization="4bit", lora_dropout=0.0, target_modules=("q_proj", "v_proj"))
    q_model = lora_model(q_model, cfg)
    f_model = lora_model(f_model, dataclasses.replace(cfg, quantization=None))
    # same non-trivial LoRA weights in both (B is zero at init; give it values so every LoRA weight gets a gradient)
    g = torch.Generator().manual_seed(0)
    f_params = dict(f_model.named_parameters())
    with torch.no_grad():
        for n, p in q_model.named_parameters():
            if "lora_" in n:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
                f_params[n].copy_(p)
    es, eo = _batch(tok)
    gq, gf = _lora_grads(q_model, cfg, es, eo), _lora_grads(f_model, cfg, es, eo)
    assert gq.keys() == gf.keys() and len(gq) == 8  # (A, B) x (q, v) x 2 layers
    for n in gq:
        scale = gf[n].abs().max().item()
        assert scale > 0, n
        # Tolerance: max |g_4bit - g_fp32| <= 2e-2 * max |g_fp32| per LoRA tensor. Both models use the
        # same dequantized nf4 weights, but bitsandbytes' CPU 4-bit matmul does not compute in exact
        # fp32 (its forward differs from F.linear(x, dequantized W) by ~4e-3 relative, as with bf16
        # rounding), so exact agreement is not achievable. Measured: <= 5e-3. The un-quantized fp32
        # weights instead give 1.2e-1 .. 2.9e-1, so a QLoRA path that ignored the quantized weights fails.
        # (Dequantize before the first forward: on CPU bitsandbytes repacks weight.data in place.)
        err = (gq[n] - gf[n]).abs().max().item() / scale
        assert err <= 2e-2, (n, err)


# ----------------------------------------------------------------------------- determinism
def _run(seed):
    model, tok = _fresh()
    cfg = LLMTrainConfig(model=TINY, layer=1, lr=5e-2, epochs=2, batch_size=4, seed=seed)
    res = T.train(cfg, pairs=PAIRS, model=model, tok=tok, progress=False)
    labels = [r["label"] for r in score_scenarios(res.model, tok, burglar(4), method="logprob")]
    return res, tok, labels


def test_same_seed_same_curve_and_decisions_different_seed_differs(tmp_path):
    a, tok, lab_a = _run(0)
    b, _, lab_b = _run(0)
    c, _, _ = _run(1)
    assert len(a.losses) == 4 and len(a.epoch_losses) == 2
    assert a.losses == b.losses
    assert lab_a == lab_b
    assert a.losses != c.losses


def test_saved_adapter_reloads_with_identical_logits(tmp_path):
    model, tok = _fresh()
    cfg = LLMTrainConfig(model=TINY, layer=1, lr=5e-2, epochs=1, batch_size=4, seed=0)
    res = T.train(cfg, pairs=PAIRS, model=model, tok=tok, progress=False)
    res.save(tmp_path)
    assert T.is_finished(tmp_path)
    enc = tok(["You are in a house together with burglar Bob."], return_tensors="pt").to(models.input_device(res.model))
    with torch.no_grad():
        ref = res.model(**enc).logits
        with res.model.disable_adapter():
            base = res.model(**enc).logits
    assert not torch.allclose(ref, base), "training did not change the model: the test would be vacuous"

    from peft import PeftModel

    m1 = PeftModel.from_pretrained(_fresh()[0], tmp_path / "adapter").eval()
    m2, _, man = T.load_trained(tmp_path, model=_fresh()[0], tok=tok)
    assert man["config"]["layer"] == 1 and len(man["losses"]) == len(res.losses)
    with torch.no_grad():
        for m in (m1, m2):
            assert torch.equal(m(**enc).logits, ref)


# ----------------------------------------------------------------------------- accumulation
class _Recorder(torch.optim.SGD):
    grads: list = []

    def __init__(self, params, lr, weight_decay=0.0):
        super().__init__(params, lr=lr)
        _Recorder.grads = []

    def step(self, closure=None):
        ps = [p for g in self.param_groups for p in g["params"]]
        _Recorder.grads.append(([p.grad.detach().clone() for p in ps], [p.detach().clone() for p in ps]))
        return super().step(closure)


def test_grad_accumulation_averages_micro_batches(monkeypatch):
    monkeypatch.setattr(torch.optim, "AdamW", _Recorder)
    torch.manual_seed(0)
    x, y = torch.randn(6, 3), torch.randn(6)
    net = nn.Linear(3, 1)
    seen = []

    def batch_loss(idx):
        seen.append(list(idx))
        return ((net(x[idx]).squeeze(-1) - y[idx]) ** 2).mean()

    def expected(batches, weights):
        ref = nn.Linear(3, 1)
        with torch.no_grad():
            for p, q in zip(ref.parameters(), weights):
                p.copy_(q)
        losses = [((ref(x[i]).squeeze(-1) - y[i]) ** 2).mean() for i in batches]
        (sum(losses) / len(losses)).backward()
        return [p.grad for p in ref.parameters()]

    cfg = LLMTrainConfig(model=TINY, lr=1e-3, epochs=1, batch_size=2, grad_accum=2)
    res = T._fit(net, cfg, 6, batch_loss, progress=False)
    # 3 micro-batches: one step over the first two (mean of 2), one over the last (mean of 1)
    assert len(_Recorder.grads) == 2 and len(res.losses) == 2
    for (got, weights), batches in zip(_Recorder.grads, (seen[:2], seen[2:])):
        for g, e in zip(got, expected(batches, weights)):
            torch.testing.assert_close(g, e)


# ----------------------------------------------------------------------------- input checks
@pytest.mark.parametrize("kw,word", [
    (dict(epochs=0), "epochs"), (dict(lr=0.0), "lr"), (dict(lr=-1e-4), "lr"), (dict(objective="mse"), "objective"),
    (dict(pooling="max"), "pooling"), (dict(batch_size=0), "batch_size"), (dict(grad_accum=0), "grad_accum"),
    (dict(quantization="8bit"), "quantization"), (dict(max_length=4), "max_length"), (dict(layer=1.5), "layer"),
])
def test_config_rejects_bad_values(kw, word):
    with pytest.raises(ValueError, match=word):
        LLMTrainConfig(**kw)


@pytest.fixture(scope="module")
def counted_model():
    model, tok = _fresh()
    calls = []
    model.register_forward_pre_hook(lambda *a: calls.append(1))
    return model, tok, calls


@pytest.mark.parametrize("kw,word", [(dict(layer=2), "layer"), (dict(layer=-3), "layer"),
                                     (dict(layer=1, module="self_attn.nope"), "module")])
def test_train_rejects_bad_site_before_compute(counted_model, kw, word):
    model, tok, calls = counted_model
    cfg = LLMTrainConfig(model=TINY, epochs=1, **kw)
    with pytest.raises(ValueError, match=word):
        T.train(cfg, pairs=PAIRS, model=model, tok=tok, progress=False)
    assert not calls, "a forward pass ran before the error"
    assert not hasattr(model, "peft_config"), "the model was wrapped before the error"


def test_train_rejects_empty_pairs(counted_model):
    model, tok, calls = counted_model
    with pytest.raises(ValueError, match="pairs"):
        T.train(LLMTrainConfig(model=TINY, layer=1), pairs=[], model=model, tok=tok, progress=False)
    assert not calls


def test_tokenize_pairs_checks_and_alignment(counted_model):
    _, tok, _ = counted_model
    with pytest.raises(ValueError, match="equal length"):
        tokenize_pairs(tok, ["a", "b"], ["a"])
    with pytest.raises(ValueError, match="non-empty"):
        tokenize_pairs(tok, [], [])
    side = tok.padding_side
    es, eo = tokenize_pairs(tok, ["You are here", "x"], ["Bob is here and there", "y"])
    assert tok.padding_side == side  # restored
    assert es["input_ids"].shape == eo["input_ids"].shape
    assert (es["attention_mask"][:, -1] == 1).all() and (eo["attention_mask"][:, -1] == 1).all()  # left padded
    es, eo = tokenize_pairs(tok, ["You"], ["Bob"], max_length=16)
    assert es["input_ids"].shape == (1, 16) == eo["input_ids"].shape


def test_derangement():
    for n in (2, 5, 52):
        p = T.derangement(n, seed=3)
        assert sorted(p) == list(range(n)) and all(i != j for i, j in enumerate(p))
    assert T.derangement(10, 1) == T.derangement(10, 1)
    with pytest.raises(ValueError):
        T.derangement(1, 0)
