"""The RL experiment: modified Physical Deception, MADDPG baselines, SOO fine-tuning, metrics, the book's pages.

One room per job, each importing only the rooms before it, in the order the data flow:

``env`` (the environment, PettingZoo and batched) -> ``config`` (agent kinds, fine-tuning controls, training
settings, run and scale configs) -> ``maddpg`` (the reference MADDPG of one run: networks, update, noise, buffer,
training loop) -> ``overlap`` (the SOO measure on observations and activations: pure functions) -> ``stacked`` (the
engine: the same update on K runs at once) -> ``auxiliary`` (the fine-tuning's auxiliary loss, one run and stacked)
-> ``training`` (the training loop with its checkpoints; a run's folder and key) -> ``runs`` (the run registry,
finishing runs, the runs kept with the book, the training fingerprint) -> ``metrics`` (pure functions on rollouts)
-> ``diagnostics`` (reference blues, one pair's claims) -> ``evaluation`` (the cached evaluation steps) ->
``verdicts`` (the paper's claims tested seed by seed, the bottom line) -> ``experiment`` (the notebooks' setup and
training steps; ``make rl-full``) -> ``screen`` (the declared settings screen, ``make rl-screen``) -> ``book`` (the
pages' tables, claims and glued values); ``figures`` (the pages' figures) reads only ``config`` and ``soo.style``.
Statistics come from ``soo.stats``. This package file only re-exports the names a reader starts from.
"""
from .config import AGENTS, FINETUNE_KINDS, FINETUNES, PRESETS, SETTINGS, RLConfig, ScaleConfig, scale_config
from .env import BatchedDeceptionEnv, DeceptionParallelEnv, EnvConfig
from .maddpg import MADDPG, train_reference
from .overlap import log_mse, make_other_obs
from .training import load_policies, train

__all__ = ["AGENTS", "FINETUNE_KINDS", "FINETUNES", "SETTINGS", "BatchedDeceptionEnv", "DeceptionParallelEnv",
           "EnvConfig", "MADDPG", "PRESETS", "RLConfig", "ScaleConfig", "load_policies", "log_mse", "make_other_obs",
           "scale_config", "train", "train_reference"]
