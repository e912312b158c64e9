"""The RL experiment: modified Physical Deception, MADDPG baselines, SOO fine-tuning, metrics, the book's pages.

One room per job, each importing only the rooms before it:

``env`` (the environment, PettingZoo and batched) -> ``config`` (agent kinds, fine-tuning controls, training
settings, run and scale configs) -> ``maddpg`` (the reference MADDPG of one run: networks, update, noise, buffer,
training loop) -> ``runs`` (a run's folder: checkpoints, settings key, finished or not) -> ``stacked`` (the same
update on K runs at once, what the experiment trains with) -> ``soo`` (the fine-tuning loss, SOO values) ->
``metrics`` (pure functions on rollouts) -> ``diagnostics`` (reference blues, one pair's claims) -> ``experiment``
(the cached steps: run registry, kept runs, training, evaluation; ``make rl-full``) -> ``screen`` (the declared
settings screen, ``make rl-screen``) -> ``book`` (the pages' tables, claims and glued values); ``figures`` (the
pages' figures) reads only ``config`` and ``soo.style``. This package file only re-exports the names a reader
starts from.
"""
from .config import AGENTS, FINETUNE_KINDS, FINETUNES, PRESETS, SETTINGS, RLConfig, ScaleConfig, scale_config
from .env import BatchedDeceptionEnv, DeceptionParallelEnv, EnvConfig
from .maddpg import MADDPG, train_reference
from .runs import load_policies
from .soo import log_mse, make_other_obs
from .stacked import train

__all__ = ["AGENTS", "FINETUNE_KINDS", "FINETUNES", "SETTINGS", "BatchedDeceptionEnv", "DeceptionParallelEnv",
           "EnvConfig", "MADDPG", "PRESETS", "RLConfig", "ScaleConfig", "load_policies", "log_mse", "make_other_obs",
           "scale_config", "train", "train_reference"]
