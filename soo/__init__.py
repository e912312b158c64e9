"""soo: Self-Other Overlap fine-tuning, re-implemented (arXiv 2412.16325).

The ground floor, which imports no wing: ``utils`` (checks, paths, seeding, the disk cache, the process pool),
``style`` (the palette, the figure style, tables, the figure saver), ``notebooks`` (the notebook runner), ``losses``
(the paper's SOO losses) and ``data/`` (the package's data files, with their sources). Two wings that never import
each other: ``soo.llm`` (models, scenarios, config, architecture, scales, plan, train, scoring, evaluate,
capability, latent, judge, measure, organism, experiment, full, book, ladder,
figures) and ``soo.rl`` (env, config, maddpg, runs, stacked, soo, metrics, diagnostics, experiment, screen, book,
figures). Importing ``soo`` loads neither wing.
"""
__version__ = "0.1.0"
