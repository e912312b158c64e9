"""The LLM experiment's wing (growing; the rest still lives in ``soo.experiments``, ``soo.train`` and
``soo.evaluate``): ``config`` (what a notebook runs: scale, model preset, overrides, validated before any compute)
and ``plan`` (the dry run: the configuration checked on the model built without its weights)."""
from .config import LLMConfig, llm_config

__all__ = ["LLMConfig", "llm_config"]
