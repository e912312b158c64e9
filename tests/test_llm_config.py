"""soo.llm.config and the dry run: the paper's models get the paper's settings, checked on their real architectures
(built on the meta device, no weights); bad values fail before any compute with the parameter's name."""
import shutil

import pytest

from soo.llm import experiment as X
from soo.llm import models
from soo.llm import plan as P
from soo.llm.architecture import n_layers_of
from soo.llm.config import MODEL_PRESETS, preset_name
from soo.llm.scales import PRESETS, SWEEP_LR_MULTIPLES, llm_config, sweep_layers_for
from soo.llm.config import CONDITIONS
from soo.files import read_value
from soo.utils import as_choices, as_ints, as_positive_floats

PAPER = {  # PAPER_SPEC §3.1 and §4.1
    "mistral-7b-instruct-v0.2": dict(layer=19, lora_r=8, lora_alpha=32, lora_dropout=0.2, lr=1e-4, epochs=15,
                                     quantization="4bit", suffix="i_would", n_layers=32),
    "gemma-2-27b-it": dict(layer=20, lora_r=4, lora_alpha=8, lora_dropout=0.1, lr=9e-4, epochs=8, quantization=None,
                           suffix="room_only", n_layers=46),
    "calmerys-78b-orpo-v0.1": dict(layer=57, lora_r=8, lora_alpha=32, lora_dropout=0.2, lr=1e-4, epochs=15,
                                   quantization="4bit", suffix="room_only", n_layers=86),
}


@pytest.mark.parametrize("name", list(PAPER))
def test_paper_models_get_the_papers_settings_by_short_name_and_hub_id(name):
    for model in (name, models.PAPER_MODELS[name]):
        sc = llm_config("full", model)
        want = PAPER[name]
        c = sc.soo
        got = dict(layer=c.layer, lora_r=c.lora_r, lora_alpha=c.lora_alpha, lora_dropout=c.lora_dropout, lr=c.lr,
                   epochs=c.epochs, quantization=c.quantization, suffix=sc.suffix)
        assert got == {k: v for k, v in want.items() if k != "n_layers"}
        assert c.target_modules == ("q_proj", "v_proj") and c.module == "self_attn.o_proj" and c.batch_size == 4
        assert sc.start_from is None and sc.gen_tokens == 75 and sc.n_soo_eval == 250 and len(sc.seeds) == 5


@pytest.mark.parametrize("name", list(PAPER))
def test_plan_on_the_meta_device_matches_the_model_card(name):
    sc = llm_config("full", name)
    p = P.plan(sc, "llm_soo", n_eval=sc.n_soo_eval, runs=["a", "b"])
    assert list(p)[:len(P.PLAN_KEYS)] == list(P.PLAN_KEYS)
    assert p["n_layers"] == PAPER[name]["n_layers"] and p["layer"] == PAPER[name]["layer"]
    assert p["n_params"] == MODEL_PRESETS[name].n_params  # the card's count, exactly
    assert p["checks"]["n_lora_modules"] == 2 * p["n_layers"]
    assert p["n_runs"] == 2 and p["max_new_tokens"] == 75 and p["n_eval"] == 250
    assert 0 < p["mem_weights_gib"] < p["mem_total_gib"]


@pytest.mark.parametrize("name", [*PAPER, models.EMBEDDED])
def test_full_scale_sweeps_follow_the_model(name):
    """Layers over the whole depth with the SOO layer among them; learning rates at the declared multiples of the
    model's preset lr."""
    sc, preset = llm_config("full", name), MODEL_PRESETS[name].soo
    n, layers = n_layers_of(name), sc.sweep_layers
    assert n == PAPER.get(name, {"n_layers": 30})["n_layers"]
    assert all(0 <= L < n for L in layers) and list(layers) == sorted(set(layers)) and len(layers) == 6
    assert preset.layer in layers and sc.soo.layer == preset.layer
    assert layers[0] < n / 4 and layers[-1] > 3 * n / 4
    assert max(b - a for a, b in zip(layers, layers[1:])) <= n / 3  # no large gap
    assert sc.sweep_lrs == pytest.approx([preset.lr * m for m in SWEEP_LR_MULTIPLES], rel=1e-9)
    assert min(sc.sweep_lrs) < preset.lr < max(sc.sweep_lrs) and preset.lr not in sc.sweep_lrs


def test_full_scale_sweeps_of_the_paper_models():
    """The numbers the plans show (one layer per sixth of the depth, the SOO layer in its own sixth)."""
    got = {m: (llm_config("full", m).sweep_layers, llm_config("full", m).sweep_lrs) for m in PAPER}
    assert got == {"mistral-7b-instruct-v0.2": ((2, 8, 13, 19, 24, 29), (1e-5, 3e-5, 3e-4, 1e-3)),
                   "gemma-2-27b-it": ((3, 11, 20, 26, 34, 42), (9e-5, 2.7e-4, 2.7e-3, 9e-3)),
                   "calmerys-78b-orpo-v0.1": ((7, 21, 35, 57, 64, 78), (1e-5, 3e-5, 3e-4, 1e-3))}
    assert llm_config("full", "mistral-7b-instruct-v0.2", layer=10, lr=2e-4).sweep_layers == (2, 10, 13, 18, 24, 29)
    assert llm_config("full", "mistral-7b-instruct-v0.2", lr=2e-4).sweep_lrs == (2e-5, 6e-5, 6e-4, 2e-3)
    assert sweep_layers_for(2, 1) == (0, 1) and sweep_layers_for(None, 5) == (5,) and sweep_layers_for(30, -1)[-1] == 29
    assert PRESETS["full"].sweep_layers == llm_config("full").sweep_layers  # the embedded model's, as documented


@pytest.mark.parametrize("name", [*PAPER, models.EMBEDDED, "tiny-random-llama"])
def test_default_and_smoke_sweeps_are_unchanged(name):
    """The book's numbers were computed with these: the smoke and default scales keep their fixed sweeps."""
    default, smoke = llm_config("default", name), llm_config("smoke", name)
    assert (default.sweep_layers, default.sweep_lrs) == ((6, 12, 18, 24), (1e-3,))
    assert (smoke.sweep_layers, smoke.sweep_lrs) == ((0, 1), (1e-2,))


def test_memory_estimate_orders_of_magnitude():
    mistral = P.plan(llm_config("full", "mistral-7b-instruct-v0.2"), "llm_soo", n_eval=250)
    gemma = P.plan(llm_config("full", "gemma-2-27b-it"), "llm_soo", n_eval=250)
    assert 3 < mistral["mem_weights_gib"] < 5  # 7.24B in nf4, embeddings and lm_head in bf16
    assert 48 < gemma["mem_weights_gib"] < 53  # 27.2B in bf16


def test_embedded_model_default_scale_settings():
    sc = llm_config("default")
    assert sc.model == models.EMBEDDED and sc.start_from == "organism" and sc.suffix == "i_would"
    assert (sc.soo.layer, sc.soo.lr, sc.soo.epochs) == (18, 3e-4, 5)
    assert (sc.organism.lr, sc.organism.epochs, sc.organism.lora_r) == (1e-3, 1, 16)
    assert sc.gen_tokens == 75 and PRESETS["full"].gen_tokens == 75
    assert llm_config("full").soo.epochs == 15


@pytest.mark.parametrize("native", [True, False])
def test_precision_auto_follows_the_machine_and_can_be_forced(monkeypatch, native):
    monkeypatch.setattr(models, "native_bf16", lambda: native)
    for scale in ("default", "full"):
        sc = llm_config(scale)
        assert (sc.bf16, sc.soo.bf16, sc.organism.bf16) == (native, native, native)
        assert sc.precision == ("bf16" if native else "fp32")
        assert (sc.dtype is None) != native
    assert not llm_config("smoke").bf16  # smoke computes in fp32 everywhere
    assert llm_config("full", "gemma-2-27b-it").bf16  # the paper's models need a GPU: always bf16 under auto
    for precision, bf16 in (("bf16", True), ("fp32", False)):
        for scale in ("smoke", "default"):
            sc = llm_config(scale, precision=precision)
            assert sc.bf16 == sc.soo.bf16 == sc.organism.bf16 == bf16
    assert llm_config("full", "gemma-2-27b-it", precision="fp32").precision == "fp32"
    assert X.eval_key(llm_config("default", precision="bf16")) != X.eval_key(llm_config("default", precision="fp32"))
    plan = P.plan(llm_config("default", precision="fp32"), "llm_baseline", n_eval=4)
    assert plan["precision"] == "fp32" and plan["bf16"] is False
    with pytest.raises(ValueError, match="precision='fp16'.*'auto', 'bf16', 'fp32'"):
        llm_config("default", precision="fp16")


def test_overrides_take_one_path_and_are_checked():
    sc = llm_config("full", "mistral-7b-instruct-v0.2", layer=16, lr="2e-5", seeds="[0, 1]")
    assert (sc.soo.layer, sc.soo.lr, sc.seeds) == (16, 2e-5, (0, 1))
    with pytest.raises(ValueError, match="layer=40 .*'mistral-7b-instruct-v0.2'.* 32 layers"):
        llm_config("full", "mistral-7b-instruct-v0.2", layer=40)
    with pytest.raises(ValueError, match="scale='huge'"):
        llm_config("huge")
    with pytest.raises(ValueError, match="start_from='/nope'"):
        llm_config("smoke", start_from="/nope")
    with pytest.raises(ValueError, match="model='/no/such/folder'"):
        llm_config("smoke", "/no/such/folder")


def test_tiny_model_named_like_a_paper_model_gets_no_layer_it_lacks(tmp_path):
    dst = tmp_path / "Mistral-7B-Instruct-v0.2-tiny"
    shutil.copytree(models.tiny_path("tiny-random-mistral"), dst)
    assert preset_name(str(dst)) == "mistral-7b-instruct-v0.2"
    with pytest.raises(ValueError, match=r"layer=19 \(the 'mistral-7b-instruct-v0.2' preset\) .* has 2 layers"):
        llm_config("smoke", str(dst))
    assert llm_config("smoke", str(dst), layer=1).soo.layer == 1


def test_other_models_get_the_papers_relative_depth(tmp_path):
    dst = tmp_path / "some-model"
    shutil.copytree(models.tiny_path("tiny-random-qwen2"), dst)
    sc = llm_config("smoke", str(dst))
    assert sc.preset == "other" and sc.soo.layer == 1 and sc.start_from is None  # round(19/32 * 2)


def test_list_parameters_from_papermills_strings():
    assert as_ints("seeds", "[0]") == (0,) and as_ints("seeds", "[155, 714]") == (155, 714)
    assert as_positive_floats("sweep_lrs", "[1e-3, 3e-4]") == (1e-3, 3e-4) and as_positive_floats("sweep_lrs", "[]") == ()
    assert as_choices("conditions", '["soo_kl_logits"]', tuple(CONDITIONS)) == ("soo_kl_logits",)
    for bad, match in (("3", "seeds='3': give a list"), ("{a: 1}", "give a list"), ("[x]", "'x' is not an integer")):
        with pytest.raises(ValueError, match=match):
            as_ints("seeds", bad)
    with pytest.raises(ValueError, match="conditions='telepathy' is not valid"):
        as_choices("conditions", '["telepathy"]', tuple(CONDITIONS))
    jobs = X.soo_jobs(llm_config("smoke"), '["lm"]', "[]", "[]")
    assert jobs == {"main": [X.SooRun("lm", 0)], "layers": [], "lrs": []}
    with pytest.raises(ValueError, match="sweep_layers=5 .* 2 layers"):
        X.soo_jobs(llm_config("smoke"), ["lm"], [5], [])


def test_dry_run_checks_modules_on_the_meta_model():
    from dataclasses import replace

    sc = llm_config("full", "gemma-2-27b-it")
    with pytest.raises(ValueError, match="target_modules=.*'c_attn' is not a module"):
        P.meta_checks(replace(sc, soo=replace(sc.soo, target_modules=("q_proj", "c_attn"))))
    with pytest.raises(ValueError, match="module='self_attn.out_proj'"):
        P.meta_checks(replace(sc, soo=replace(sc.soo, module="self_attn.out_proj")))


def test_embedded_architecture_is_the_packaged_one(embedded):
    """The packaged config.json of the embedded model describes the converted GGUF exactly."""
    lm, _ = embedded
    meta = P.meta_model(models.EMBEDDED)
    assert sum(p.numel() for p in meta.parameters()) == sum(p.numel() for p in lm.parameters())
    assert MODEL_PRESETS[models.EMBEDDED].n_params == sum(p.numel() for p in lm.parameters())
    for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
              "vocab_size", "rope_parameters", "tie_word_embeddings"):
        assert getattr(meta.config, k) == getattr(lm.config, k), k


@pytest.mark.slow
def test_paper_path_end_to_end_on_a_tiny_mistral(tmp_path):
    """start_from=None (SOO on the model itself), greedy generation scored by first mention in the paper's order,
    the honesty-prompt baseline: llm_baseline and llm_soo at the smoke scale on a tiny random Mistral."""
    import json as _json

    from soo import notebooks
    from soo.files import read_json
    from soo.utils import project_root

    root = project_root()
    (tmp_path / "notebooks").mkdir()
    for n in ("llm_baseline", "llm_soo"):
        shutil.copy(root / "notebooks" / f"{n}.md", tmp_path / "notebooks" / f"{n}.md")
    common = {"model": "tiny-random-mistral", "out_dir": str(tmp_path / "results"), "fig_dir": str(tmp_path / "fig")}
    notebooks.execute("llm_baseline", scale="smoke", root=tmp_path, parameters=common, executed_dir="executed")
    notebooks.execute("llm_soo", scale="smoke", root=tmp_path, executed_dir="executed",
                      parameters={**common, "start_from": None, "conditions": '["soo_mse"]', "sweep_layers": "[]",
                                  "sweep_lrs": "[]"})
    base_dir = tmp_path / "results" / "smoke" / "llm_baseline"
    honesty = read_value(base_dir / "generate_honesty.json")
    assert read_json(base_dir / "generate_honesty.json")["_key"]["honesty"] is True
    assert {r["order"] for r in honesty} == {"paper", "mirrored"} and all("response" in r for r in honesty)
    soo_dir = tmp_path / "results" / "smoke" / "llm_soo"
    assert not (tmp_path / "results" / "smoke" / "llm_organism").exists()  # no organism on the paper path
    res = read_value(soo_dir / "soo_mse__seed0" / "result.json")
    assert res["config"]["model"] == "tiny-random-mistral" and res["config"]["layer"] == 1
    assert {r["order"] for r in res["generate_records"]} == {"paper", "mirrored"}
    assert all(r["label"] in ("deceptive", "honest", "unclear") for r in res["generate_records"])
    nb = _json.loads((tmp_path / "executed" / "llm_soo.ipynb").read_text())
    assert "paper order, greedy generation" in _json.dumps(nb)  # the comparison's paper-way row
    assert read_json(soo_dir / "soo_mse__seed0" / "manifest.json")["config"]["objective"] == "soo_mse"


def test_the_reproduce_pages_default_table_is_the_configuration():
    """The reproduce page's table of the default scale's change states the values before (DEFAULT_BEFORE) and now
    (PRESETS["default"]), and names every changed setting."""
    import re
    from pathlib import Path

    from soo.llm.scales import DEFAULT_BEFORE

    page = (Path(__file__).resolve().parents[1] / "book" / "reproduce.md").read_text()
    rows = {m[1]: (m[2].strip(), m[3].strip()) for m in re.finditer(r"^\| `([\w.]+)` \| ([^|]+) \| ([^|]+) \|", page, re.M)}
    now = PRESETS["default"]

    def value(name):
        obj = now
        for part in name.split("."):
            obj = getattr(obj, part)
        return obj

    def text(v):
        return ", ".join(map(str, v)) if isinstance(v, tuple) else str(v)

    assert set(rows) == set(DEFAULT_BEFORE)
    for name, before in DEFAULT_BEFORE.items():
        assert rows[name] == (text(before), text(value(name))), name
        assert value(name) != before, f"{name} did not change"
