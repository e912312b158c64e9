"""soo: Self-Other Overlap fine-tuning, re-implemented (arXiv 2412.16325).

The ground floor, which imports no wing: ``utils`` (checks, paths, seeding, the disk cache, the process pool),
``style`` (the palette, the figure style, tables, the figure saver), ``notebooks`` (the notebook runner), ``losses``
(the paper's SOO losses), ``models`` (loading models by name, activation sites, the one hook path) and
``scenarios`` (all prompt text and package data). Two wings that never import each other: ``soo.llm`` (config,
plan, train, scoring, evaluate, judge, experiment, book, figures) and ``soo.rl`` (env, config, maddpg,
runs, stacked, soo, metrics, diagnostics, experiment, screen, book, figures). Importing ``soo`` loads neither wing.
"""
from .models import ActivationSite, capture, load, module_at

__all__ = ["ActivationSite", "capture", "load", "module_at"]
__version__ = "0.1.0"
