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

The commands printed on the book's pages and in the README are read back by :func:`page_commands` and
:func:`papermill_parameters` (the workshop timing and the tests run them as written), and the workshop page's table of
run times is made from ``benchmarks/workshop_times.json`` by :func:`write_workshop_times`.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import time
from pathlib import Path

from .files import atomic_write_text, read_json
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


def page_commands(page: str | os.PathLike) -> list[list[str]]:
    """The ``papermill`` command lines (argv) in the ``bash`` blocks of a markdown page, in order (continued lines
    joined, comments dropped)."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", Path(page).read_text(), re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            argv = shlex.split(line, comments=True)
            if argv and Path(argv[0]).name == "papermill":
                out.append(argv)
    return out


def papermill_parameters(argv: list[str]) -> dict:
    """The parameters papermill's own command line passes for ``argv`` (``-p seeds "[0]"`` gives the string
    ``"[0]"``, ``-p layer 6`` the integer 6), read by papermill's CLI with the execution itself captured."""
    from click.testing import CliRunner
    from papermill import cli

    seen = {}
    real = cli.execute_notebook
    cli.execute_notebook = lambda *a, **kw: seen.update(kw.get("parameters") or {})
    try:
        res = CliRunner().invoke(cli.papermill, list(argv[1:]))
    finally:
        cli.execute_notebook = real
    if res.exit_code != 0:
        raise ValueError(f"argv={argv!r}: papermill's command line rejects it: {res.output}")
    return dict(seen)


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


WORKSHOP_TIMES = "benchmarks/workshop_times.json"
WORKSHOP_TABLE = "book/workshop_times.md"


def workshop_times_table(times: dict) -> str:
    """The workshop page's table of run times (markdown) from ``benchmarks/workshop_times.json``: one row per
    exercise, then the machine, precision and date each time was measured on (one line when all were measured in
    one run on one machine)."""
    rows = ["| exercise | notebook | precision | wall time (s) |", "|---|---|---|---|"]
    rows += [f"| {name} | `{t['notebook']}` | {t['precision']} | {t['wall_s']:.0f} |" for name, t in times.items()]
    where = {(t["machine"], t["date"], t.get("run", "")) for t in times.values()}
    if len(where) == 1:
        machine, day, _ = where.pop()
        note = f"Measured in one run on {day}, on {machine}"
    else:
        note = "Measured on " + "; ".join(f"{n}: {t['date']}, {t['machine']}" for n, t in times.items())
    note += (", by `benchmarks/bench_workshop.py` at the default scale after `make book` (each exercise from an "
             "empty folder). Other machines differ: a CPU without native bf16 computes the LLM notebooks in fp32.")
    return "\n".join(rows) + "\n\n" + note + "\n"


def write_workshop_times(root: Path | None = None) -> Path:
    """Write the workshop page's table (:data:`WORKSHOP_TABLE`) from :data:`WORKSHOP_TIMES`."""
    root = Path(root or project_root())
    return atomic_write_text(root / WORKSHOP_TABLE, workshop_times_table(read_json(root / WORKSHOP_TIMES)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="default", choices=SCALES)
    ap.add_argument("--only", nargs="*", help="run only these notebooks (in book order)")
    args = ap.parse_args(argv)
    run_all(scale=args.scale, names=args.only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
