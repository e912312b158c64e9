"""What the book's pages print that the project checks or makes: the ``papermill`` commands of a page, read back
as written (:func:`page_commands`, :func:`papermill_parameters`: the workshop timing and the tests run them), and the
workshop page's table of run times, made from ``benchmarks/workshop_times.json`` (:func:`write_workshop_times`).
"""
from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from .files import atomic_write_text, read_json
from .utils import project_root


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
