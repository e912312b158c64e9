"""The LLM experiment, one room per job, the same rooms as ``soo.rl``:

``models`` (loading a model by name, addressing its activations; the one layer check) and ``scenarios`` (every
prompt, from the package's data files) -> ``config`` (what a configuration is: the conditions and their labels, the
training settings, the model presets, one SOO run, validated before any compute) -> ``architecture`` (a model's
architecture and depth, without its weights) -> ``scales`` (the scales and ``llm_config``, which builds a notebook's
configuration from a scale, a model and the overrides; ``plan``: the dry run, that configuration checked on the model
built without its weights) -> ``train`` (LoRA SOO fine-tuning, its controls, the organism's SFT) -> ``scoring``
(answers to labels to rates: pure) -> ``evaluate`` (running a model on the scenarios: generation, log-probs, records)
-> ``capability`` (the offline capability check against the start model) and ``latent`` (latent SOO and the SOO
site's collapse check) -> ``judge`` (the optional MT-Bench judge) -> ``measure`` (the scenario sets scored at a
configuration's settings; the baseline) -> ``organism`` (the deceptive model organism) -> ``experiment`` (the cached
steps: setup, SOO runs, generalization, MT-Bench) -> ``full`` (the paper protocol kept with the book) -> ``book``
(the pages' tables, the values each page glues and its paper-vs-ours tables) and ``ladder`` (the kept protocol as the
SOO page shows it); ``figures`` draws the chapter's figures.
"""
from .config import CONDITIONS, LLMConfig, LLMTrainConfig
from .scales import llm_config

__all__ = ["CONDITIONS", "LLMConfig", "LLMTrainConfig", "llm_config"]
