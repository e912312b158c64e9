"""The control ladder's two added rungs: name-control pairs and the generic fine-tune, built as specified and trained
with the same dose as SOO (MSE)."""
import re

import pytest

from soo.llm import scenarios as S
from soo.llm import train as T
from soo.llm.config import BOOK_CONDITIONS, CONDITIONS, LADDER, LLMTrainConfig
from soo.llm.scales import llm_config
from soo.llm.experiment import soo_jobs


def test_name_control_pairs_differ_only_in_the_name():
    """Each pair is a SOO pair's other prompt and the same prompt with another name in both places: no "you"
    against "Bob" (a pair that kept the self prompt, or swapped one name only, fails)."""
    soo, names = S.soo_pairs("all"), S.name_control_pairs("all")
    assert len(names) == len(soo) == 156
    for i, (p, q) in enumerate(zip(soo, names)):
        name = S.NAME_CONTROL_NAMES[i % len(S.NAME_CONTROL_NAMES)]
        assert q.self_prompt == p.other_prompt
        assert q.other_prompt == p.other_prompt.replace("Bob", name)
        assert "yourself" not in q.self_prompt + q.other_prompt and q.other_prompt.count(name) == 2
        assert (q.item, q.template) == (p.item, p.template)
    used = {n for n in S.NAME_CONTROL_NAMES}
    assert not used & {"Bob", *S.texts()["axes"]["name"]}


def test_generic_pairs_are_neutral_and_as_many_as_the_soo_pairs():
    """As many items as the SOO pairs, two distinct neutral texts each, none from the scenarios' vocabulary."""
    for mode in ("cycle", "all"):
        g = S.generic_pairs(mode)
        assert len(g) == len(S.soo_pairs(mode))
    texts = S.generic_texts()
    assert len(texts) == 104 == len(set(texts))
    words = re.compile(r"\b(room|steal|bob|burglar|suggest|recommend|you)\b", re.I)
    assert not [t for t in texts if words.search(t)]
    first = S.generic_pairs("cycle")
    assert {p.self_prompt for p in first} | {p.other_prompt for p in first} == set(texts)
    evaluation = " ".join(s.prompt for s in S.burglar(250) + S.perspectives(250))
    assert not [t for t in texts if t in evaluation]


@pytest.mark.parametrize("objective,pairs", [("soo_mse_names", S.name_control_pairs), ("generic", S.generic_pairs),
                                             ("soo_mse", S.soo_pairs), ("lm", S.soo_pairs),
                                             ("soo_mse_shuffled", S.soo_pairs)])
def test_training_pairs_per_condition(objective, pairs):
    assert S.training_pairs(objective) == pairs()


def test_ladder_rungs_train_with_the_same_dose(monkeypatch):
    """Every rung takes as many optimiser steps as SOO (MSE) on as many pairs, and its own pairs reach the loss."""
    from soo.llm import models

    seen = {}
    real = T.objective_loss

    def spy(model, cfg, es, eo):
        seen.setdefault(cfg.objective, []).append(es["input_ids"].shape[0])
        return real(model, cfg, es, eo)

    monkeypatch.setattr(T, "objective_loss", spy)
    steps = {}
    for objective in ("soo_mse", "generic", "soo_mse_names", "lm"):
        model, tok = models.load("tiny-random-llama")
        cfg = LLMTrainConfig(model="tiny-random-llama", objective=objective, layer=1, epochs=2, batch_size=4)
        r = T.train(cfg, pairs=S.training_pairs(objective)[:8], model=model, tok=tok, progress=False)
        steps[objective] = len(r.losses)
        assert r.n_examples == 8
    assert len(set(steps.values())) == 1 and steps["soo_mse"] == 4
    assert {k: sum(v) for k, v in seen.items()} == {k: 16 for k in steps}


def test_the_ladder_and_the_scales():
    """The full scale runs every rung; the book's quick rerun the four conditions it always ran."""
    assert set(LADDER) == set(CONDITIONS) and LADDER[-2:] == ("soo_mse", "soo_kl_logits")
    assert llm_config("full").conditions == LADDER
    assert llm_config("default").conditions == BOOK_CONDITIONS == llm_config("smoke").conditions
    sc = llm_config("smoke")
    assert [r.condition for r in soo_jobs(sc)["main"]] == list(BOOK_CONDITIONS)
    with pytest.raises(ValueError, match="conditions"):
        soo_jobs(sc, ["soo_mse", "names"])
