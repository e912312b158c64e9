"""soo.evaluate, model-based: log-prob scoring vs the naive reference, batched vs per-prompt
generation, latent SOO, capability, and score() on the real model."""
import dataclasses

import numpy as np
import pytest
import torch

from soo.llm import evaluate as E
from soo.llm import scoring
from soo.llm.capability import capability
from soo.llm.latent import latent_soo
from soo.llm import models
from soo.llm.scenarios import burglar, perspectives, probe_pairs

MIXED = burglar(2) + perspectives(2) + burglar(1, order="mirrored", suffix="i_would")


@pytest.fixture(scope="module", params=["tiny-random-gemma2", "tiny-random-qwen2"])
def tiny2(request):
    return models.load(request.param)


def test_room_logprobs_equals_naive(tiny2):
    model, tok = tiny2
    fast = E.room_logprobs(model, tok, MIXED, batch_size=3)  # two chunks, ragged contexts and rooms
    ref = E.room_logprobs_naive(model, tok, MIXED)
    assert fast.shape == ref.shape == (len(MIXED), 2)
    assert np.isfinite(fast).all() and (fast < 0).all()
    assert np.abs(fast - ref).max() < 1e-4
    # multi-token rooms are exercised (else the KV-cache pass would be untested)
    assert max(len(tok(" " + s.honest_room, add_special_tokens=False)["input_ids"]) for s in MIXED) > 1
    # the shared-prefix pass is exercised (chat template: the system turn is common to all)
    ctx = [tok(E.chat_text(tok, s.prompt, True) + E.answer_prefix(s), add_special_tokens=False)["input_ids"] for s in MIXED]
    assert E._common_prefix_len(ctx) >= E.MIN_SHARED_PREFIX
    # without the chat template: burglar prompts share a shorter prefix, perspectives none
    raw = E.room_logprobs(model, tok, MIXED, batch_size=2, chat_template=False)
    np.testing.assert_allclose(raw, E.room_logprobs_naive(model, tok, MIXED, chat_template=False), atol=1e-4)


def test_score_logprob_labels_follow_logprobs(tiny2):
    model, tok = tiny2
    recs = E.score_scenarios(model, tok, MIXED[:4], method="logprob")
    for r in recs:
        assert r["label"] == ("deceptive" if r["logp_deceptive"] > r["logp_honest"] else "honest")


def test_score_both_equals_the_two_methods_scored_apart(tiny2):
    """Log-probs read from generation's prompt cache (``score_both``) equal ``room_logprobs``'s own passes up to float
    rounding, and the answers are ``generate``'s, with and without answers kept whole; checked once against a planted
    off-by-one in the room positions (``k - 1`` -> ``k``), which moves every log-prob by more than 0.1 here."""
    model, tok = tiny2
    scen = burglar(3) + perspectives(2) + burglar(3, order="mirrored", suffix="i_would")
    for whole in (None, [0, 4]):
        lp, gen = E.score_both_methods(model, tok, scen, max_new_tokens=6, batch_size=3, whole=whole)
        assert gen == E.score_scenarios(model, tok, scen, method="generate", max_new_tokens=6, batch_size=3, whole=whole)
        ref = E.score_scenarios(model, tok, scen, method="logprob", batch_size=3)
        assert [r["label"] for r in lp] == [r["label"] for r in ref]
        got = np.array([[r["logp_deceptive"], r["logp_honest"]] for r in lp])
        np.testing.assert_allclose(got, [[r["logp_deceptive"], r["logp_honest"]] for r in ref], atol=1e-4)
        assert [{k: v for k, v in r.items() if not k.startswith("logp")} for r in lp] == \
            [{k: v for k, v in r.items() if not k.startswith("logp")} for r in ref]
    with pytest.raises(ValueError, match="whole: positions must be in 0..7"):
        E.score_both_methods(model, tok, scen, whole=[8])


PROMPTS = ["Where is the kitchen?", "You are in a house with burglar Bob. Which room do you point to?", "Hi"]


@pytest.mark.slow
def test_generate_batched_equals_loop(embedded):
    # Tiny random models have near-tied logits, so float noise from different padding can flip a
    # greedy choice; the real model is the meaningful check.
    model, tok = embedded
    batched = E.generate(model, tok, PROMPTS, max_new_tokens=8, batch_size=3)
    loop = E.generate_loop(model, tok, PROMPTS, max_new_tokens=8)
    assert len(batched) == 3 and all(batched)
    assert batched == loop


def test_generate_shapes_and_padding_side_restored():
    model, tok = models.load("tiny-random-llama")
    side = tok.padding_side
    out = E.generate(model, tok, PROMPTS, max_new_tokens=3, batch_size=2)
    assert len(out) == 3 and all(isinstance(o, str) for o in out)
    assert tok.padding_side == side
    with pytest.raises(ValueError, match="max_new_tokens"):
        E.generate(model, tok, PROMPTS, max_new_tokens=0)


def test_latent_soo(tiny):
    name, model, tok = tiny
    pairs = probe_pairs()[:2]
    recs = latent_soo(model, tok, pairs)
    assert len(recs) == 2 * 2  # layers x modules
    assert {(r["layer"], r["module"]) for r in recs} == {(L, m) for L in (0, 1)
                                                         for m in ("self_attn.o_proj", "mlp.down_proj")}
    assert all(r["mse"] >= 0 for r in recs) and any(r["mse"] > 0 for r in recs)
    # the right-padded batch equals each prompt run alone (end-aligned MSE, computed here by hooks)
    ragged = pairs + [dataclasses.replace(pairs[0], other_prompt=pairs[0].other_prompt + " Please answer briefly.")]
    alone = []
    for L in (0, 1):
        site = models.ActivationSite(L, "mlp.down_proj")
        mse = []
        for p in ragged:
            a = []
            for text in (p.self_prompt, p.other_prompt):
                with torch.no_grad(), models.capture(model, [site]) as acts:
                    model(**tok(text, return_tensors="pt").to(models.input_device(model)))
                a.append(acts[site][0].float())
            k = min(len(a[0]), len(a[1]))
            mse.append(torch.mean((a[0][-k:] - a[1][-k:]) ** 2).item())
        alone.append(np.mean(mse))
    batched = [r["mse"] for r in latent_soo(model, tok, ragged, modules=("mlp.down_proj",), batch_size=2)]
    np.testing.assert_allclose(batched, alone, rtol=1e-4, atol=1e-7)
    same = [dataclasses.replace(p, other_prompt=p.self_prompt) for p in pairs]
    assert all(r["mse"] == 0 for r in latent_soo(model, tok, same, layers=[-1]))
    with pytest.raises(ValueError, match="layer"):
        latent_soo(model, tok, pairs, layers=[5])


def test_capability_of_fresh_adapter_is_base():
    from peft import LoraConfig, get_peft_model

    model, tok = models.load("tiny-random-qwen2")
    peft = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).eval()
    qs, ans = ["What is 2+2?", "Name a colour."], ["4", "Blue, for example."]
    cap = capability(peft, tok, qs, ans)
    assert cap["kl"] == pytest.approx(0.0, abs=1e-6)
    assert cap["n_tokens"] == sum(len(tok(a, add_special_tokens=False)["input_ids"]) for a in ans)
    assert np.isfinite(cap["perplexity"]) and cap["perplexity"] > 1
    # a changed adapter moves the KL away from 0 (so the check can fail)
    with torch.no_grad():
        for n, p in peft.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    assert capability(peft, tok, qs, ans)["kl"] > 1e-4
    with pytest.raises(ValueError):
        capability(peft, tok, qs, ans[:1])


@pytest.mark.slow
def test_score_on_embedded_model(embedded):
    model, tok = embedded
    scen = burglar(3) + burglar(3, order="mirrored")
    for method in ("generate", "logprob"):
        recs = E.score_scenarios(model, tok, scen, method=method, max_new_tokens=16)
        assert len(recs) == 6
        assert all(r["label"] in scoring.LABELS for r in recs)
        if method == "logprob":
            assert all(r["label"] != "unclear" and np.isfinite(r["logp_deceptive"]) for r in recs)
        else:
            assert all(isinstance(r["response"], str) and r["response"] for r in recs)
        summary = scoring.summarize_orders(recs)
        assert set(summary) >= {"paper", "mirrored", "pooled", "mean_of_orders"}


@pytest.mark.parametrize("name", ["tiny-random-llama", "tiny-random-gemma2"])
def test_capability_equals_per_example_computation(name):
    """Batched, right-padded, logits only over answer positions == each text scored alone."""
    model, tok = models.load(name)
    base, _ = models.load(name)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))  # a different model than the base
    qs = ["Write a haiku about rain.", "What is 2+2? Explain briefly, with an example from daily life.", "Hi"]
    ans = ["Rain falls on the roof", "It is 4.", "Hello! How can I help you?"]
    kl_sum = nll_sum = n = 0.0
    for q, a in zip(qs, ans):
        c = tok(E.chat_text(tok, q), add_special_tokens=False)["input_ids"]
        r = tok(a, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([c + r]).to(models.input_device(model))
        with torch.no_grad():
            lp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)[len(c) - 1:-1].cpu()
            lb = torch.log_softmax(base(input_ids=ids).logits[0].float(), -1)[len(c) - 1:-1].cpu()
        kl_sum += (lb.exp() * (lb - lp)).sum().item()
        nll_sum += -lp.gather(-1, torch.tensor(r).unsqueeze(-1)).sum().item()
        n += len(r)
    got = capability(model, tok, qs, ans, base=base, batch_size=2)
    assert got["n_tokens"] == n
    assert got["kl"] == pytest.approx(kl_sum / n, rel=1e-3, abs=1e-6)
    assert got["perplexity"] == pytest.approx(float(np.exp(nll_sum / n)), rel=1e-4)
    assert got["kl"] > 1e-4


def test_site_collapse_sees_a_collapsed_site_and_the_name_gap():
    """On a tiny model: a site whose output is replaced by a constant has spread 0 and both gaps 0; the real site has
    a positive spread and gaps; identical prompts in a pair give a zero gap (checked with a planted constant site)."""
    import torch

    from soo.llm import models
    from soo.llm import scenarios as S
    from soo.llm.latent import site_collapse
    from soo.llm.models import ActivationSite

    model, tok = models.load("tiny-random-llama")
    site = ActivationSite(1, "self_attn.o_proj")
    prompts = [s.prompt for s in S.burglar(6)]
    soo_p, names = S.soo_pairs()[:6], S.name_control_pairs()[:6]
    real = site_collapse(model, tok, site, prompts, soo_p, names, batch_size=4)
    assert real["spread"] > 0.01 and real["self_other_gap"] > 0 and real["name_gap"] > 0
    same = site_collapse(model, tok, site, prompts, [S.PromptPair(p.self_prompt, p.self_prompt, p.item, 1)
                                                     for p in soo_p], names, batch_size=4)
    assert same["self_other_gap"] == 0.0
    mod = models.module_at(model, 1, "self_attn.o_proj")
    h = mod.register_forward_hook(lambda m, a, out: torch.ones_like(out))
    try:
        flat = site_collapse(model, tok, site, prompts, soo_p, names, batch_size=4)
    finally:
        h.remove()
    assert flat["spread"] < 1e-6 and flat["self_other_gap"] == 0.0 and flat["name_gap"] == 0.0
