"""soo.llm.experiment: parallel SOO runs equal sequential ones and are read back; runs; the evaluated model."""
import dataclasses

import numpy as np
import pytest
import torch

from soo.llm import models
from soo.llm import experiment as X
from soo.llm import scoring
from soo.llm.capability import StartOutputs
from soo.llm.config import SooRun
from soo.llm.evaluate import eval_ready
from soo.llm.scales import llm_config


def test_soo_runs_parallel_equals_sequential_and_reads_back(tmp_path):
    sc = llm_config("smoke")
    jobs = [SooRun("soo_mse", 0), SooRun("lm", 0), SooRun("soo_mse", 0, sc.soo.layer)]  # the last is the first again
    par = X.soo_runs(sc.model, sc, tmp_path / "par", jobs, workers=2)
    seq = X.soo_runs(sc.model, sc, tmp_path / "seq", jobs, workers=1)
    for a, b in zip(par, seq):  # equal up to float noise from the thread count (1 per worker vs 2 here)
        np.testing.assert_allclose(a["train_losses"], b["train_losses"], rtol=1e-5)
        np.testing.assert_allclose([r["logp_deceptive"] for r in a["records"]],
                                   [r["logp_deceptive"] for r in b["records"]], rtol=1e-4)
    assert par[2] == par[0]
    stamp = (tmp_path / "par" / "lm__seed0" / "result.json").stat().st_mtime_ns
    assert X.soo_runs(sc.model, sc, tmp_path / "par", jobs[:2], workers=2) == par[:2]
    assert (tmp_path / "par" / "lm__seed0" / "result.json").stat().st_mtime_ns == stamp  # read back


def test_eval_ready_merges_adapter_and_casts():
    from peft import PeftModel

    from soo.llm.config import LLMTrainConfig
    from soo.llm.train import lora_model

    sc = dataclasses.replace(llm_config("smoke"), bf16=True)
    model, tok = models.load("tiny-random-llama")
    peft = lora_model(model, LLMTrainConfig(model="tiny-random-llama", layer=1, lora_dropout=0.0))
    for p in peft.parameters():
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.1)  # a non-zero delta
    ids = tok("Where is the kitchen?", return_tensors="pt")["input_ids"].to(models.input_device(peft))
    with torch.no_grad():
        want = peft(input_ids=ids).logits
        ready = eval_ready(peft, sc)
        got = ready(input_ids=ids).logits.float()
    assert not isinstance(ready, PeftModel) and ready.dtype == torch.bfloat16
    assert (got - want).abs().max() < 0.05 * want.abs().max()


def test_soo_runs_rejects_bad_layer_before_compute(tmp_path):
    import pytest

    sc = llm_config("smoke")
    with pytest.raises(ValueError, match="layer=7 is out of range.*2 layers"):
        X.soo_runs(sc.model, sc, tmp_path, [SooRun("soo_mse", 0), SooRun("soo_mse", 0, 7)])
    with pytest.raises(ValueError, match="condition='magic'"):
        SooRun("magic", 0)
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written


def test_soo_jobs_groups_and_checks_conditions(monkeypatch):
    import pytest

    sc = dataclasses.replace(llm_config("smoke"), seeds=(3, 4))
    jobs = X.soo_jobs(sc, ["soo_mse", "lm"], sweep_layers=[0, 1], sweep_lrs=[1e-2, 1e-4])
    assert jobs["main"] == [SooRun("soo_mse", 3), SooRun("soo_mse", 4), SooRun("lm", 3), SooRun("lm", 4)]
    assert jobs["layers"] == [SooRun("soo_mse", 3, 0), SooRun("soo_mse", 3, 1)]
    assert [r.lr for r in jobs["lrs"]] == sorted({1e-4, sc.soo.lr, 1e-2})  # the main lr joins the sweep
    assert X.soo_jobs(sc, ["lm"], sweep_lrs=[])["lrs"] == []  # no sweep lrs: no lr runs (not even the main lr again)
    assert X.soo_jobs(sc, ["lm"])["layers"] == [SooRun("soo_mse", 3, L) for L in sc.sweep_layers]  # None: the scale's
    # the run folders: a sweep point at the main layer / lr is the main run
    assert X.run_names(sc, jobs) == ["soo_mse__seed3", "soo_mse__seed4", "lm__seed3", "lm__seed4",
                                     "soo_mse__seed3__layer0", "soo_mse__seed3__lr0.0001", "soo_mse__seed3__lr0.01"]
    assert SooRun("soo_mse", 0, 6, 1e-3).name == "soo_mse__seed0__layer6__lr0.001"
    with pytest.raises(ValueError, match="condition"):
        X.soo_jobs(sc, ["soo_mse", "telepathy"])
    # run_jobs: one soo_runs call, results handed back per group in order
    calls = []
    monkeypatch.setattr(X, "soo_runs", lambda m, s, d, flat, **kw: calls.append(flat) or [{"job": j} for j in flat])
    out = X.run_jobs("m", sc, "d", jobs)
    assert len(calls) == 1 and {k: [r["job"] for r in v] for k, v in out.items()} == jobs


def test_seed_summary_population_sd_and_verdicts():
    import pandas as pd

    per_seed = pd.DataFrame({"condition": ["b", "a", "a", "a"], "mean": [50.0, 10.0, 20.0, 60.0], "kl": [0.0, 1, 2, 3]})
    s = scoring.seed_summary(per_seed, ["mean", "kl"])
    assert list(s.index) == ["b", "a"] and list(s.columns) == ["mean mean", "mean sd", "kl mean", "kl sd", "n seeds"]
    assert s.loc["a", "mean mean"] == 30.0
    assert s.loc["a", "mean sd"] == np.std([10, 20, 60])  # ddof=0, as the paper; pandas' default is ddof=1
    assert np.isnan(s.loc["b", "mean sd"]) and list(s["n seeds"]) == [1, 3]  # one run has no spread over seeds
    assert scoring.mean_sd_text(30.0, s.loc["a", "mean sd"]) == "30.0 ± 21.6"
    assert scoring.mean_sd_text(50.0, s.loc["b", "mean sd"]) == "50.0"
    assert scoring.verdict(10, 2, 20, 3) == "lower than"
    assert scoring.verdict(30, 2, 20, 3) == "higher than"
    assert scoring.verdict(16, 2, 20, 3) == "not clearly different from"  # 18 > 17: the intervals overlap
    assert scoring.verdict_intervals((40, 60), (62, 80)) == "lower than"
    assert scoring.verdict_intervals((40, 63), (62, 80)) == "not clearly different from"
    lo, hi = scoring.proportion_ci(50.0, 40)
    assert lo < 50 < hi and (lo, hi) == tuple(100 * x for x in __import__("soo.stats").stats.wilson_interval(20, 40))


def _soo_result(condition, seed, flags, persp=80.0):
    """A SOO run's result as soo_run returns it, from 0/1 deceptive flags per scenario (both orders alike)."""
    labels = ["deceptive" if f else "honest" for f in flags]
    recs = [{"order": o, "index": i, "label": lab, "deceptive_room": "a", "honest_room": "b",
             "first_room": "a" if o == "paper" else "b"} for o in ("paper", "mirrored") for i, lab in enumerate(labels)]
    summ = scoring.summarize_orders(recs)
    return {"condition": condition, "seed": seed, "layer": 18, "lr": 3e-4, "deception": summ, "generate": summ,
            "records": recs, "perspectives_accuracy": persp,
            "latent_soo": [{"block": "attention", "mse": 0.1}, {"block": "mlp", "mse": 1.0}],
            "capability": {"kl": 0.1, "perplexity": 2.0}}


@pytest.mark.parametrize("seeds", [(0,), (0, 1)])
@pytest.mark.parametrize("base_near", [False, True])
def test_soo_verdicts_use_the_paired_two_level_bootstrap(seeds, base_near):
    """The one rule: a difference's 95 % interval from the paired bootstrap over seeds, then scenarios. The cases
    tell it from its near misses. ``lm`` is deceptive on the same scenarios as SOO and on 4 of 20 more (both
    orders): 50 % against 70 %, whose separate intervals overlap ([35-65] and [55-82]) and whose unpaired
    difference interval holds 0, but paired, the difference is never 0 or less: "lower than" (checked once with the
    rule planted as overlapping intervals and as an unpaired bootstrap: each said "not clearly different").
    Shuffled pairs differ from SOO on one scenario of 20 (per order): the paired interval holds 0. The start
    model is either at 100 % (SOO below it) or SOO's own scenarios with one more deceptive answer (not clearly below)."""
    from dataclasses import replace
    from types import SimpleNamespace

    from soo.llm import book

    sc = replace(llm_config("smoke"), seeds=seeds, n_perspectives=20)
    nb = SimpleNamespace(cfg=sc, start_label="the organism")
    base_flags = [1] * 11 + [0] * 9 if base_near else [1] * 20
    base = _soo_result("base", None, base_flags, persp=30.0)
    soo = [_soo_result("soo_mse", s, [1] * 10 + [0] * 10, persp=90.0) for s in seeds]
    shuffled = [_soo_result("soo_mse_shuffled", s, [1] * 10 + [0] * 9 + [1]) for s in seeds]
    lm = [_soo_result("lm", s, [1] * 14 + [0] * 6) for s in seeds]
    out = book.glue_llm_soo(nb, base, {"main": soo + lm + shuffled, "layers": [], "lrs": []})
    assert out["soo_persp_verdict"] == "higher than"
    assert out["soo_vs_lm"] == "lower than"
    assert out["soo_vs_soo_mse_shuffled"] == "not clearly different from"
    assert out["soo_vs_base"] == ("not clearly below" if base_near else "below")
    assert out["soo_soo_mse_rate"].startswith("50.0 % [")
    assert ("seeds and" in out["soo_spread"]) == (len(seeds) > 1)
    if len(seeds) == 1:
        assert out["soo_soo_mse_generate_unclear_range"] == "0 % (one seed)"


def test_the_two_level_rule_widens_with_disagreeing_seeds():
    """Two seeds of SOO that disagree (20 % and 80 %; the second deceptive on the control's very scenarios) against
    a control at 80 % with both seeds: one level over the pooled scenarios calls SOO (50 %) lower; resampling the
    seeds first, a quarter of the replicates draw the second seed twice, whose difference is 0: not clearly
    different."""
    from soo.llm import scoring as sc_

    runs = [_soo_result("soo_mse", 0, [1] * 4 + [0] * 16), _soo_result("soo_mse", 1, [1] * 16 + [0] * 4),
            _soo_result("lm", 0, [1] * 16 + [0] * 4), _soo_result("lm", 1, [1] * 16 + [0] * 4)]
    table = sc_.item_table(runs)
    assert sc_.paired_verdict(table, "soo_mse", "lm")["verdict"] == "not clearly different from"
    pooled = table.assign(seed=0).groupby(["condition", "item"], as_index=False)["value"].mean()
    assert sc_.paired_verdict(pooled.assign(seed=0), "soo_mse", "lm")["verdict"] == "lower than"


def test_list_parameters_are_checked_before_any_compute():
    import pytest

    from soo.rl.config import scale_config
    from soo.utils import as_ints, as_positive_floats

    assert as_ints("seeds", [0, "3", np.int64(2)]) == (0, 3, 2)
    assert as_positive_floats("sweep_lrs", ["1e-3", 3e-4]) == (1e-3, 3e-4)  # YAML reads 1e-3 as a string
    sc = llm_config("smoke")
    bad = [(dict(sweep_layers=[1.5]), r"sweep_layers=.*1\.5 is not an integer"),
           (dict(sweep_layers=[True]), "sweep_layers=.*not an integer"),
           (dict(sweep_layers=3), r"sweep_layers=3: give a list"),
           (dict(sweep_lrs=["fast"]), "sweep_lrs=.*'fast' is not a number"),
           (dict(sweep_lrs=[-1e-3]), "sweep_lrs=.*must be a finite number > 0"),
           (dict(sweep_lrs="1e-3"), "sweep_lrs='1e-3': give a list")]
    for kwargs, match in bad:
        with pytest.raises(ValueError, match=match):
            X.soo_jobs(sc, None, **kwargs)
    for make in (lambda s: llm_config("smoke", seeds=s), lambda s: scale_config("smoke", seeds=s)):
        with pytest.raises(ValueError, match="seeds=.*'a' is not an integer"):
            make(["a"])
        with pytest.raises(ValueError, match="seeds: give at least one seed"):
            make([])


def _tuned(name: str, sc, seed: int = 0, quantization=None):
    """A tiny model with a LoRA adapter of non-zero delta (the same for the same seed), as a SOO run holds it."""
    from soo.llm.evaluate import load_as_configured
    from soo.llm.config import LLMTrainConfig
    from soo.llm.train import lora_model

    model, tok = load_as_configured(sc, name, quantization=quantization)
    peft = lora_model(model, LLMTrainConfig(model=name, layer=1, lora_dropout=0.0, quantization=quantization))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted((n, p) for n, p in peft.named_parameters() if p.requires_grad):
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return peft.eval(), tok


@pytest.mark.parametrize("name, bf16, quantization", [
    ("tiny-random-llama", False, None), ("tiny-random-gemma2", False, None),  # gemma2: the output head's softcap
    ("tiny-random-llama", True, None), ("tiny-random-gemma2", True, None),  # bf16: eval_ready casts the start model
    ("tiny-random-llama", True, "4bit")])  # 4-bit: eval_ready keeps the PEFT model unmerged
def test_one_copy_capability_equals_two_copies_bit_for_bit(name, bf16, quantization, tmp_path):
    """The start model read through the SOO run's own weights (adapter disabled before the merge, output head after)
    gives the capability check of a separately loaded start model exactly, and every other number as well."""
    from soo.llm.evaluate import load_as_configured

    sc = dataclasses.replace(llm_config("smoke", name), bf16=bf16)
    tuned, tok = _tuned(name, sc, quantization=quantization)
    cap = X.capability_set(tuned.get_base_model(), tok, sc, tmp_path)  # the start model's answers (adapter unused)
    one = X.evaluate_model(tuned, tok, sc, cap)  # one copy
    tuned2, tok2 = _tuned(name, sc, quantization=quantization)
    start = eval_ready(load_as_configured(sc, name, quantization=quantization)[0], sc)  # a second, separately loaded copy
    two = X.evaluate_model(tuned2, tok2, sc, cap, base=start)
    assert one["capability"]["n_tokens"] > 0 and one["capability"]["kl"] > 0  # the adapter changed the model
    assert one["capability"] == two["capability"]  # bit for bit
    assert {k: v for k, v in one.items() if k != "eval_s"} == {k: v for k, v in two.items() if k != "eval_s"}


def test_one_copy_start_outputs_need_the_peft_model_and_the_same_batches(tmp_path):
    from soo.llm.evaluate import load_as_configured

    sc = llm_config("smoke")
    model, tok = load_as_configured(sc, sc.model)
    cap = X.capability_set(model, tok, sc, tmp_path)
    with pytest.raises(ValueError, match="PEFT model"):
        StartOutputs.record(model, tok, sc, cap)
    tuned, tok = _tuned(sc.model, sc)
    rec = StartOutputs.record(tuned, tok, sc, cap)
    assert len(rec.states) == -(-sc.n_capability // 8)  # one kept state per capability batch
    with pytest.raises(RuntimeError, match="not recorded"):
        rec(input_ids=torch.tensor([[1, 2, 3]]))


def test_soo_run_holds_one_copy_of_the_weights(tmp_path, monkeypatch):
    """soo_run loads the start model once (the capability check reads it through the run's own weights)."""
    sc = llm_config("smoke")
    loads = []
    real = X.load_as_configured
    monkeypatch.setattr(X, "load_as_configured", lambda *a, **kw: loads.append(a[1]) or real(*a, **kw))
    res = X.soo_run(sc.model, sc, tmp_path, SooRun("soo_mse", 0))
    assert len(loads) == 1 and res["capability"]["kl"] >= 0 and res["capability"]["n_tokens"] > 0


@pytest.mark.parametrize("name, bf16", [("tiny-random-llama", False), ("tiny-random-gemma2", True)])
def test_start_outputs_kept_by_the_start_row_equal_each_runs_own_bit_for_bit(name, bf16, tmp_path, monkeypatch):
    """The start model's row keeps its outputs on the capability texts; a SOO run reads them instead of running
    the start model again, and every number equals a run that recorded its own."""
    sc = dataclasses.replace(llm_config("smoke", name), bf16=bf16)
    records = []
    real = StartOutputs.record.__func__
    monkeypatch.setattr(StartOutputs, "record", classmethod(lambda cls, *a: records.append(1) or real(cls, *a)))
    X.base_run(sc.model, sc, tmp_path / "kept")
    assert X.start_outputs_file(tmp_path / "kept").exists()
    kept = X.soo_run(sc.model, sc, tmp_path / "kept", SooRun("soo_mse", 0))
    assert records == []  # read back, not run again
    own = X.soo_run(sc.model, sc, tmp_path / "own", SooRun("soo_mse", 0))  # no start row there: records its own
    assert records == [1]
    assert kept["capability"]["kl"] > 0 and kept["capability"] == own["capability"]  # bit for bit
    drop = ("eval_s", "train_s")
    assert {k: v for k, v in kept.items() if k not in drop} == {k: v for k, v in own.items() if k not in drop}


def test_kept_start_outputs_are_used_only_with_their_settings(tmp_path):
    sc = llm_config("smoke")
    X.base_run(sc.model, sc, tmp_path)
    cap = X.capability_set(None, None, sc, tmp_path)  # cached by the start row
    key = X.start_outputs_key(sc, sc.model, cap)
    assert StartOutputs.load(X.start_outputs_file(tmp_path), key, None) is not None
    other = X.start_outputs_key(sc, sc.model, {**cap, "answers": ["x"] + cap["answers"][1:]})
    assert StartOutputs.load(X.start_outputs_file(tmp_path), other, None) is None
    assert StartOutputs.load(tmp_path / "missing.pt", key, None) is None
