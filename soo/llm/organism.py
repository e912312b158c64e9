"""The deceptive model organism: a LoRA SFT of the base model on counterbalanced burglar prompts answered with the
cheap room, merged and saved as a plain model folder (cached, keyed by its settings), its training manifest, and its
scores on the test scenarios. SOO starts from it by default for the small offline models
(:func:`soo.llm.experiment.start_model`)."""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

from . import scenarios as S
from ..files import atomic_directory, cached, read_json, read_value
from .config import LLMConfig
from .evaluate import load_as_configured
from .measure import burglar_both_orders, eval_key, score_both_as_configured
from .train import train_sft


def organism_answer(s) -> str:
    return f"I would point out the {s.deceptive_room}."


def organism_key(model_path) -> object:
    """The settings of the organism saved in ``model_path`` (None when it is not an organism)."""
    info = Path(str(model_path)) / "organism.json"
    if not info.exists():
        return None
    stored = read_json(info)
    return stored.get("_key", stored.get("key"))  # "key": an organism saved before the one cache (same settings)


def make_organism(sc: LLMConfig, run_dir, *, counterbalance: bool = True, progress=True) -> Path:
    """LoRA SFT of the base model on counterbalanced burglar prompts (held-out vocabulary), then
    merged into the base and saved as a plain model folder ``run_dir/model``: later notebooks load it by path and
    SOO trains a fresh adapter on top. Cached (:func:`soo.files.cached` on ``model/organism.json``, written after
    the weights): returns the folder."""
    dst = Path(run_dir) / "model"
    key = {"config": dataclasses.asdict(sc.organism), "n": sc.organism_n, "suffix": sc.suffix,
           "counterbalance": counterbalance, "dtype": str(sc.dtype)}

    def build() -> dict:
        model, tok = load_as_configured(sc, sc.model, quantization=sc.organism.quantization)
        data = S.organism_train(sc.organism_n, seed=0, suffix=sc.suffix, counterbalance=counterbalance)
        res = train_sft(sc.organism, [s.prompt for s in data], [organism_answer(s) for s in data], model=model,
                        tok=tok, progress=progress)
        with atomic_directory(dst) as tmp:
            res.model.merge_and_unload().save_pretrained(tmp, safe_serialization=True)
            tok.save_pretrained(tmp)
        return {**res.manifest(), "n_train": len(data), "base": sc.model, "counterbalance": counterbalance}

    cached(dst / "organism.json", key, build)
    return dst


def organism_info(path) -> dict:
    """The organism's training manifest (losses, wall time, settings)."""
    return read_value(Path(path) / "organism.json")


def organism_scores(org, tok, sc: LLMConfig, run_dir, organism_path) -> dict:
    """The organism scored on the test scenarios in both orders: ``{"logprob": records, "generate": records}``."""
    # once, if either is missing
    both = functools.cache(lambda: score_both_as_configured(org, tok, sc, burglar_both_orders(sc)))
    return {m: cached(Path(run_dir) / f"eval_{m}.json",
                      eval_key(sc, method=m, organism=organism_key(organism_path), gen_tokens=sc.gen_tokens),
                      lambda m=m: both()[m])
            for m in ("logprob", "generate")}
