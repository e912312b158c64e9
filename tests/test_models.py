"""soo.llm.models: loading by name (offline), tiny architectures, 4-bit on CPU, module addressing."""
import pytest
import torch
from peft import LoraConfig, get_peft_model

from soo.llm import models
from soo.llm.models import ActivationSite, capture, module_at


def _chat_ids(tok, text):
    return tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                   return_tensors="pt", return_dict=True)


@pytest.mark.slow
def test_embedded_model_answers_offline(embedded, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, tok = embedded
    assert models.num_layers(model) == 30
    enc = _chat_ids(tok, "What is the capital of France? Answer in one word.")
    out = model.generate(**enc, max_new_tokens=8, do_sample=False)
    answer = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True).strip()
    assert answer, "empty greedy answer"
    assert "paris" in answer.lower()


def test_tiny_forward_backward(tiny):
    name, model, tok = tiny
    assert models.num_layers(model) == 2
    enc = tok(["You are in a house together with burglar Bob."], return_tensors="pt").to(models.input_device(model))
    out = model(**enc, labels=enc["input_ids"])
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    model.zero_grad(set_to_none=True)


def test_tiny_models_are_deterministic():
    a, _ = models.load("tiny-random-qwen2")
    b, _ = models.load("tiny-random-qwen2")
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(p, q), n


def test_tiny_uses_real_chat_template(tiny):
    _, _, tok = tiny
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)
    assert "<|im_start|>assistant" in text


def test_4bit_cpu_loads_and_trains_one_lora_step():
    model, tok = models.load("tiny-random-llama", quantization="4bit")
    assert type(module_at(model, 0, "self_attn.q_proj")).__name__ == "Linear4bit"
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    lora = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    enc = tok(["Bob wants to steal the diamond ring."], return_tensors="pt").to(models.input_device(model))
    loss = model(**enc, labels=enc["input_ids"]).loss
    loss.backward()
    opt.step()
    changed = [n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, lora[n])]
    assert changed and all("lora_" in n for n in changed)


@pytest.mark.parametrize("layer", [0, 1, -1, -2])
def test_module_at_bare_and_peft(tiny, layer):
    name, model, _ = tiny
    bare = module_at(model, layer)
    assert isinstance(bare, torch.nn.Linear)
    assert bare is model.model.layers[layer].self_attn.o_proj
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    try:
        assert module_at(peft_model, layer) is bare
        q = module_at(peft_model, layer, "self_attn.q_proj")
        assert hasattr(q, "lora_A")  # the PEFT layer, whose output includes the LoRA delta
    finally:
        peft_model.unload()


def test_capture_reads_site_and_removes_hooks():
    model, tok = models.load("tiny-random-mistral")
    site = ActivationSite(1)
    enc = tok(["hello there"], return_tensors="pt").to(models.input_device(model))
    seen = {}
    h = module_at(model, 1).register_forward_hook(lambda m, i, o: seen.setdefault("o", o.detach()))
    with capture(model, [site]) as acts:
        model(**enc)
    h.remove()
    assert torch.equal(acts[site].detach(), seen["o"])
    assert acts[site].shape == (1, enc["input_ids"].shape[1], 64)
    assert not module_at(model, 1)._forward_hooks
    assert str(site) == "layers.1.self_attn.o_proj.output"


def test_bad_layer_and_module_errors():
    model, _ = models.load("tiny-random-llama")
    with pytest.raises(ValueError, match=r"layer=2 .*valid: -2\.\.1"):
        module_at(model, 2)
    with pytest.raises(ValueError, match=r"layer=-3"):
        module_at(model, -3)
    with pytest.raises(ValueError, match=r"module='self_attn\.out_proj'.*self_attn\.o_proj"):
        module_at(model, 0, "self_attn.out_proj")


def test_bad_names_raise_clear_errors(tmp_path):
    with pytest.raises(models.ModelNotAvailableError, match="not a known name.*smollm2-135m-instruct"):
        models.load("smollm3")
    with pytest.raises(models.ModelNotAvailableError, match="no such folder"):
        models.load(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(models.ModelNotAvailableError, match="no config.json"):
        models.load(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="quantization='8bit'.*'4bit'"):
        models.load("tiny-random-llama", quantization="8bit")


def test_converted_model_cache_is_written_whole(tmp_path):
    """The converted-model cache (:func:`soo.llm.models._atomic_save_dir`, through ``utils.atomic_directory``): a
    conversion that fails leaves nothing (no folder a later load would take for a cache); one that succeeds leaves
    the folder with its ``READY`` mark; a folder without the mark (left by an older writer) is rebuilt whole; a ready
    one is not rebuilt. Checked once against a cache built in place: the failed conversion left a half folder."""
    dst = tmp_path / "cache" / "model"

    def failing(tmp):
        (tmp / "config.json").write_text("{}")
        raise RuntimeError("conversion failed")

    with pytest.raises(RuntimeError, match="conversion failed"):
        models._atomic_save_dir(dst, failing)
    assert not dst.exists() and list(dst.parent.iterdir()) == []
    dst.mkdir()
    (dst / "stale.bin").write_text("half")
    calls = []

    def build(tmp):
        calls.append(tmp)
        (tmp / "config.json").write_text("{}")

    assert models._atomic_save_dir(dst, build) == dst
    assert sorted(p.name for p in dst.iterdir()) == ["READY", "config.json"] and list(dst.parent.iterdir()) == [dst]
    models._atomic_save_dir(dst, build)
    assert len(calls) == 1


def test_hub_id_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(models.ModelNotAvailableError, match="mistralai/Mistral-7B-Instruct-v0.2.*HF_HOME"):
        models.load("mistral-7b-instruct-v0.2")


def test_one_layer_check_names_the_parameter_the_model_and_a_layer_it_has():
    assert models.check_layer(-1, 30) == 29 and models.check_layer(5, None) == 5
    with pytest.raises(ValueError, match=r"sweep_layers=40 \(a sweep layer\) is out of range for model 'm', which has "
                                         r"30 layers \(valid: -30\.\.29.*`-p layer 18`"):
        models.check_layer(40, 30, name="sweep_layers", model="m", source="a sweep layer")
    with pytest.raises(ValueError, match=r"layer=1\.5 must be an integer"):
        models.check_layer(1.5, None)


def test_native_bf16_follows_the_kernels_torch_was_held_to(monkeypatch):
    """A CPU whose torch kernels are held below AVX-512 (ATEN_CPU_CAPABILITY=avx2) computes as an AVX2-only machine:
    no native bf16, so precision="auto" picks fp32 there, whatever the chip could do."""
    import torch

    from soo.llm import models

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert models.native_bf16()
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert not models.native_bf16()
