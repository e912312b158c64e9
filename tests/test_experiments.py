"""soo.experiments: parallel SOO runs equal sequential ones and are read back; the evaluated model."""
import dataclasses

import numpy as np
import torch

from soo import experiments as X
from soo import models


def test_soo_runs_parallel_equals_sequential_and_reads_back(tmp_path):
    sc = X.llm_scale("smoke")
    jobs = [("soo_mse", 0, None), ("lm", 0, None), ("soo_mse", 0, sc.soo.layer)]  # the last is the first again
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

    from soo.train import LLMTrainConfig, lora_model

    sc = dataclasses.replace(X.llm_scale("smoke"), bf16=True)
    model, tok = models.load("tiny-random-llama")
    peft = lora_model(model, LLMTrainConfig(model="tiny-random-llama", layer=1, lora_dropout=0.0))
    for p in peft.parameters():
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.1)  # a non-zero delta
    ids = tok("Where is the kitchen?", return_tensors="pt")["input_ids"].to(models.input_device(peft))
    with torch.no_grad():
        want = peft(input_ids=ids).logits
        ready = X.eval_ready(peft, sc)
        got = ready(input_ids=ids).logits.float()
    assert not isinstance(ready, PeftModel) and ready.dtype == torch.bfloat16
    assert (got - want).abs().max() < 0.05 * want.abs().max()


def test_soo_runs_rejects_bad_layer_before_compute(tmp_path):
    import pytest

    sc = X.llm_scale("smoke")
    with pytest.raises(ValueError, match="layer=7 is out of range.*2 layers"):
        X.soo_runs(sc.model, sc, tmp_path, [("soo_mse", 0, None), ("soo_mse", 0, 7)])
    with pytest.raises(ValueError, match="condition"):
        X.soo_runs(sc.model, sc, tmp_path, [("magic", 0)])
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written
