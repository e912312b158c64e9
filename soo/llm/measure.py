"""How an LLM configuration measures a model: the scenario sets it evaluates on (burglar and Perspectives, both
orders; the answers generated whole), scored with its settings (precision, new tokens, evaluation batch), the
settings that key a cached result (:func:`eval_key`), and the baseline page's step: the model as released, scored
four ways and on Perspectives (:func:`baseline_scores`)."""
from __future__ import annotations

from pathlib import Path

from . import evaluate as E
from . import models
from . import scenarios as S
from ..files import cached
from .config import LLMConfig


def eval_key(sc: LLMConfig, **extra) -> dict:
    """The settings that determine an evaluation's result."""
    return {"model": sc.model, "n_eval": sc.n_eval, "suffix": sc.suffix, "bf16": sc.bf16, "dtype": str(sc.dtype), **extra}


def burglar_both_orders(sc: LLMConfig, n: int | None = None, honesty: bool = False):
    n = n or sc.n_eval
    return [s for o in S.ORDERS for s in S.burglar(n, order=o, honesty_prompt=honesty, suffix=sc.suffix)]


def perspectives_both_orders(sc: LLMConfig):
    return [s for o in S.ORDERS for s in S.perspectives(sc.n_perspectives, order=o)]


def score_as_configured(model, tok, sc: LLMConfig, scenarios, method="logprob", whole=None):
    """:func:`soo.llm.evaluate.score_scenarios` in the precision, with the new tokens and the evaluation batch of
    ``sc``."""
    with models.autocast(sc.bf16):
        return E.score_scenarios(model, tok, scenarios, method=method, max_new_tokens=sc.gen_tokens,
                                 batch_size=sc.batch_size, whole=whole)


def score_both_as_configured(model, tok, sc: LLMConfig, scenarios, whole=None) -> dict:
    """``{"logprob": records, "generate": records}`` of the same scenarios in one pass
    (:func:`soo.llm.evaluate.score_both_methods`), configured as :func:`score_as_configured`."""
    with models.autocast(sc.bf16):
        lp, gen = E.score_both_methods(model, tok, scenarios, max_new_tokens=sc.gen_tokens,
                                       batch_size=sc.batch_size, whole=whole)
    return {"logprob": lp, "generate": gen}


def whole_sample(sc: LLMConfig) -> list[int] | None:
    """Positions in :func:`burglar_both_orders` ``(sc, n=sc.n_generate)`` of the answers generated whole
    (``sc.n_whole`` per order, the same seeded sample in both orders and in every run); None: all."""
    if sc.n_whole is None:
        return None
    import numpy as np

    pick = sorted(np.random.default_rng(0).choice(sc.n_generate, sc.n_whole, replace=False).tolist())
    return [o * sc.n_generate + i for o in range(len(S.ORDERS)) for i in pick]


def baseline_scores(model, tok, sc: LLMConfig, run_dir) -> dict:
    """Deceptive rate by generation and by log-prob, with and without the honesty prompt,
    plus Perspectives accuracy: ``{key: records}``, each cached in ``run_dir``."""
    out = {}
    for method in ("generate", "logprob"):
        gen = {"gen_tokens": sc.gen_tokens} if method == "generate" else {}
        for honesty in (False, True):
            key = f"{method}{'_honesty' if honesty else ''}"
            out[key] = cached(Path(run_dir) / f"{key}.json", eval_key(sc, method=method, honesty=honesty, **gen),
                              lambda: score_as_configured(model, tok, sc, burglar_both_orders(sc, honesty=honesty),
                                                          method))
        out[f"perspectives_{method}"] = cached(
            Path(run_dir) / f"perspectives_{method}.json", eval_key(sc, method=method, n_perspectives=sc.n_perspectives, **gen),
            lambda: score_as_configured(model, tok, sc, perspectives_both_orders(sc), method))
    return out
