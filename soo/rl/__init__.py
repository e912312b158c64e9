"""The RL experiment: modified Physical Deception, MADDPG baselines, SOO fine-tuning, metrics.

``config`` (agent kinds, run and scale configs) -> ``env`` (ParallelEnv + batched env) -> ``maddpg`` (training,
checkpoints) -> ``soo`` (fine-tuning loss, SOO values) -> ``metrics`` (pure functions on rollouts) ->
``experiment`` (cached steps and the glued values of the notebooks). The figures are in ``soo.plots`` (RL
section), with the LLM figures. This package file only re-exports the names a reader starts from.
"""
from .config import AGENTS, CONDITIONS, PRESETS, RLConfig, ScaleConfig, scale_config
from .env import BatchedDeceptionEnv, DeceptionParallelEnv, EnvConfig
from .maddpg import MADDPG, load_policies, train
from .soo import log_mse, make_other_obs

__all__ = ["AGENTS", "CONDITIONS", "BatchedDeceptionEnv", "DeceptionParallelEnv", "EnvConfig", "MADDPG", "PRESETS", "RLConfig",
           "ScaleConfig", "load_policies", "log_mse", "make_other_obs", "scale_config", "train"]
