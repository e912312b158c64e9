"""The RL experiment: modified Physical Deception, MADDPG baselines, SOO fine-tuning, metrics.

``config`` (agent kinds, fine-tuning controls, training settings, run and scale configs) -> ``env`` (ParallelEnv +
batched env) -> ``maddpg`` (training, checkpoints) -> ``soo`` (fine-tuning loss, SOO values) -> ``metrics`` (pure
functions on rollouts) -> ``diagnostics`` (reference blues, one pair's claims) -> ``experiment`` (cached steps and
the glued values of the notebooks) -> ``screen`` (the declared settings screen). The figures are in ``soo.plots`` (RL
section), with the LLM figures. This package file only re-exports the names a reader starts from.
"""
from .config import AGENTS, CONDITIONS, FINETUNES, PRESETS, SETTINGS, RLConfig, ScaleConfig, scale_config
from .env import BatchedDeceptionEnv, DeceptionParallelEnv, EnvConfig
from .maddpg import MADDPG, load_policies, train
from .soo import log_mse, make_other_obs

__all__ = ["AGENTS", "CONDITIONS", "FINETUNES", "SETTINGS", "BatchedDeceptionEnv", "DeceptionParallelEnv", "EnvConfig",
           "MADDPG", "PRESETS", "RLConfig",
           "ScaleConfig", "load_policies", "log_mse", "make_other_obs", "scale_config", "train"]
