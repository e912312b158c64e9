"""soo: Self-Other Overlap fine-tuning, re-implemented (arXiv 2412.16325).

Shared rooms: ``models`` (loading, activation sites, the one hook path), ``scenarios`` (all prompt text and
package data), ``losses`` (SOO losses), ``plots`` (every figure and table of the book), ``utils`` (checks, the
disk cache, the process pool). Two wings with the same rooms: ``soo.llm`` (config, train, scoring, evaluate,
judge, experiment) and ``soo.rl`` (env, config, maddpg, soo, metrics, experiment).
"""
from .llm.config import llm_config
from .llm.train import CONDITIONS
from .models import ActivationSite, capture, load, module_at

__all__ = ["ActivationSite", "CONDITIONS", "capture", "llm_config", "load", "module_at"]
__version__ = "0.1.0"
