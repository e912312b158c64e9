"""The RL experiment: modified Physical Deception, MADDPG baselines, SOO fine-tuning, metrics."""
from .env import BatchedDeceptionEnv, DeceptionParallelEnv, EnvConfig

__all__ = ["BatchedDeceptionEnv", "DeceptionParallelEnv", "EnvConfig"]
