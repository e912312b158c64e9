"""soo: Self-Other Overlap fine-tuning, re-implemented (arXiv 2412.16325).

Modules: ``models`` (loading, activation sites), ``scenarios`` (all prompt text),
``losses`` (SOO losses), ``train`` (LoRA / QLoRA fine-tuning), ``evaluate``
(deception rates, latent SOO, capability), ``plots`` (one function per figure),
``rl`` (the RL experiment).
"""
from .models import ActivationSite, capture, load, module_at

__all__ = ["ActivationSite", "capture", "load", "module_at"]
__version__ = "0.1.0"
