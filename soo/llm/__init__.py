"""The LLM experiment, one room per job, the same rooms as ``soo.rl``:

``models`` (loading a model by name, addressing its activations; the one layer check) and ``scenarios`` (every
prompt, from the package's data files) -> ``config`` (what a notebook runs: the conditions and their labels, the
training settings, the scale, the model preset, overrides, one SOO run, validated before any compute; ``plan``: the
dry run, that configuration checked on the model built without its weights) -> ``train`` (LoRA SOO fine-tuning, its
controls, the organism's SFT) -> ``scoring`` (answers to labels to rates: pure) -> ``evaluate`` (running a model:
generation, log-probs, latent SOO, capability) -> ``judge`` (the optional MT-Bench judge) -> ``experiment`` (the
cached steps) -> ``book`` (the pages' tables, the values each page glues and its paper-vs-ours tables); ``figures``
draws the chapter's figures.
"""
from .config import CONDITIONS, LLMConfig, LLMTrainConfig, llm_config

__all__ = ["CONDITIONS", "LLMConfig", "LLMTrainConfig", "llm_config"]
