"""The RL experiment: modified Physical Deception, MADDPG baselines, SOO fine-tuning, metrics.

``env`` (ParallelEnv + batched env) -> ``maddpg`` (training, checkpoints) -> ``soo`` (fine-tuning loss,
SOO values) -> ``metrics`` (pure functions on rollouts) -> ``experiment`` (cached steps for the
notebooks) -> ``plots``.
"""
from .config import PRESETS, RLConfig, ScaleConfig, scale_config
from .env import BatchedDeceptionEnv, DeceptionParallelEnv, EnvConfig
from .maddpg import MADDPG, load_policies, train
from .soo import log_mse, make_other_obs

__all__ = ["BatchedDeceptionEnv", "DeceptionParallelEnv", "EnvConfig", "MADDPG", "PRESETS", "RLConfig",
           "ScaleConfig", "load_policies", "log_mse", "make_other_obs", "scale_config", "train"]
