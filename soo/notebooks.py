"""Run the book's notebooks with papermill: ``python -m soo.notebooks --scale default``.

Each notebook lives in ``notebooks/NAME.md`` (MyST markdown, paired with ``.ipynb`` by
jupytext).  It is converted to ``notebooks/NAME.ipynb``, executed by papermill with
``scale`` (and any extra parameters) injected, with the project root as working
directory, and written atomically to ``book/executed/NAME.ipynb`` for the book.
Notebooks keep their own results under ``results/<scale>/`` and read finished runs
back, so a second ``make book`` is fast.

The book (``--scale default``) shows the RL chapter at the paper's full protocol: the RL notebooks then run at
``scale="full"`` (:data:`BOOK_SCALE`), which restores the 64 training runs kept with the book
(``book/data/rl_full/official``, ``make rl-full``) and evaluates them at build time.

The commands the book's pages print, and the workshop page's table of run times, are ``soo.pages``'.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .utils import SCALES, check_choice, project_root

# Order matters: later notebooks read what earlier ones wrote (the organism, baselines).
NOTEBOOKS = (
    "quickstart",
    "llm_baseline",
    "llm_organism",
    "llm_soo",
    "llm_generalization",
    "rl_baselines",
    "rl_soo",
    "rl_classification",
)


BOOK_SCALE = {"rl_baselines": "full", "rl_soo": "full", "rl_classification": "full"}
"""Notebooks the book runs at another scale than ``--scale default`` (the RL runs are kept with the book)."""
BOOK_FIG_DIR = "book/figures"
"""Where ``make book`` has the notebooks save the figures its pages show (relative to the project root)."""
RL_NOTEBOOKS = ("rl_baselines", "rl_soo", "rl_classification")
BOOK_RL_SETTINGS = ("official",)
"""The RL training settings the book shows (``soo.rl.config.SETTINGS``), each from its kept full-protocol runs
(``book/data/rl_full/{setting}``): the official one, and the setting the screen chose (``soo.rl.screen``). The
RL notebooks run once per setting; a setting's executed notebooks are named ``{notebook}_{setting}``."""


def book_scale(name: str, scale: str) -> str:
    """The scale ``make book`` runs notebook ``name`` at, when asked for ``scale``."""
    return BOOK_SCALE.get(name, scale) if scale == "default" else scale


def available(root: Path) -> list[str]:
    """The notebooks of :data:`NOTEBOOKS` that exist under ``root/notebooks``, in order."""
    return [n for n in NOTEBOOKS if (root / "notebooks" / f"{n}.md").exists()]


def execute(name: str, *, scale: str, root: Path | None = None, parameters: dict | None = None,
            executed_dir: str | os.PathLike = "book/executed", out_name: str | None = None) -> Path:
    """Execute one notebook; return the path of the executed ``.ipynb`` (``{out_name or name}.ipynb``)."""
    import jupytext
    import papermill as pm

    root = Path(root or project_root())
    check_choice("scale", scale, SCALES)
    src = root / "notebooks" / f"{name}.md"
    if not src.exists():
        raise FileNotFoundError(f"notebook {name!r}: {src} does not exist; choose one of {available(root)}")
    paired = src.with_suffix(".ipynb")
    jupytext.write(jupytext.read(src), paired)  # keep the .ipynb pair in sync with the .md
    out_dir = root / executed_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{out_name or name}.ipynb"
    tmp = out_dir / f".{out_name or name}.tmp.ipynb"
    params = {"scale": scale, **(parameters or {})}
    try:
        pm.execute_notebook(str(paired), str(tmp), parameters=params, cwd=str(root),
                            kernel_name="python3", progress_bar=False, log_output=False)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out


def run_all(*, scale: str, root: Path | None = None, names=None, executed_dir="book/executed",
            stream=sys.stdout) -> dict[str, float]:
    """Execute notebooks in order, printing one progress line each; return seconds per notebook."""
    check_choice("scale", scale, SCALES)
    root = Path(root or project_root())
    names = list(names) if names else available(root)
    for n in names:
        check_choice("notebook", n, NOTEBOOKS)
    def figs(n):  # the book's figures go to book/figures (a notebook's own default is {out_dir}/figures)
        return {"fig_dir": BOOK_FIG_DIR} if "fig_dir =" in (root / "notebooks" / f"{n}.md").read_text() else {}

    jobs = [(n, n, figs(n)) for n in names] + [(n, f"{n}_{s}", {"setting": s, **figs(n)}) for s in BOOK_RL_SETTINGS[1:]
                                               for n in RL_NOTEBOOKS if n in names]
    times = {}
    for i, (n, out_name, params) in enumerate(jobs, 1):
        t0 = time.perf_counter()
        execute(n, scale=book_scale(n, scale), root=root, executed_dir=executed_dir, parameters=params,
                out_name=out_name)
        times[out_name] = time.perf_counter() - t0
        print(f"[{i}/{len(jobs)}] {out_name:<34s} scale={book_scale(n, scale):<8s} {times[out_name]:7.1f} s",
              file=stream, flush=True)
    print(f"all notebooks: {sum(times.values()):.1f} s", file=stream, flush=True)
    return times


def glue_values(values: dict):
    """Glue every value for the book (myst-nb, not displayed) and return them as a table to display, every row shown:
    the notebook's last cell shows the reader each number and verdict the book's text quotes, by the name the pages
    use (a glued table is named, not repeated)."""
    import pandas as pd
    from myst_nb import glue

    for name, value in values.items():
        glue(name, value, display=False)
    shown = [value if isinstance(value, (bool, int, float, str)) else "(a table, on the book's page)"
             for value in values.values()]
    table = pd.DataFrame({"value": pd.Series(shown, dtype=object).values}, index=pd.Index(list(values), name="glued as"))
    return table.style.format(lambda v: f"{v:.4g}" if isinstance(v, float) else v)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="default", choices=SCALES)
    ap.add_argument("--only", nargs="*", help="run only these notebooks (in book order)")
    args = ap.parse_args(argv)
    run_all(scale=args.scale, names=args.only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
