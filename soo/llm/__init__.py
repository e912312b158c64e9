"""The LLM experiment, one room per job, the same rooms as ``soo.rl``:

``config`` (what a notebook runs: scale, model preset, overrides, validated before any compute; ``plan``: the dry
run, that configuration checked on the model built without its weights) -> ``train`` (LoRA SOO fine-tuning, its
controls, the organism's SFT) -> ``scoring`` (answers to labels to rates: pure) -> ``evaluate`` (running a model:
generation, log-probs, latent SOO, capability) -> ``judge`` (the optional MT-Bench judge) -> ``experiment``
(cached steps and the values each notebook glues).
"""
from .config import LLMConfig, llm_config
from .train import CONDITIONS, LLMTrainConfig

__all__ = ["CONDITIONS", "LLMConfig", "LLMTrainConfig", "llm_config"]
