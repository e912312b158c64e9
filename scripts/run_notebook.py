"""Run one of this project's notebooks in this Python process, without Jupyter, and keep what it did.

For machines without a Jupyter kernel (a bare GPU machine may have PyTorch, pandas and matplotlib but
no IPython, papermill or myst-nb): the code cells of ``notebooks/NAME.md`` (MyST markdown) run in order in one
namespace, with the parameters given on the command line assigned right after the ``parameters`` cell, as papermill
injects them. ``-p name value`` reads ``value`` as papermill's command line does (``True``, ``False``, ``None``,
integers and floats; anything else stays a string, so ``-p seeds "[0]"`` passes the string ``"[0]"``).

Written to ``--out`` (atomically, after every cell, so an interrupted run keeps what it did):

* ``NAME.ipynb``: the notebook with each cell's printed output and the value of its last expression;
* ``NAME.json``: wall time and peak CUDA memory (``torch.cuda.max_memory_allocated``, reset before each cell) per
  cell and in total, the parameters, the package versions, and every value the notebook glued for the book.

With ``-p dry_run True`` the run stops after the dry run's cell, as the notebook does under papermill.

    python scripts/run_notebook.py llm_soo --out /tmp/out -p scale full -p seeds "[0]"
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
import re
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def resolve_type(value: str):
    """papermill's reading of a ``-p`` value (papermill.cli._resolve_type)."""
    if value in ("True", "False"):
        return value == "True"
    if value == "None":
        return None
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def code_cells(md: str) -> list[tuple[list[str], str]]:
    """``(tags, source)`` of each ``{code-cell}`` of a MyST notebook, in order."""
    cells = []
    for m in re.finditer(r"```\{code-cell\}[^\n]*\n(.*?)\n```", md, re.S):
        body = m.group(1).split("\n")
        tags = []
        while body and body[0].startswith(":"):
            t = re.match(r":tags:\s*\[(.*)\]", body[0])
            if t:
                tags = [x.strip().strip("'\"") for x in t.group(1).split(",")]
            body = body[1:]
        cells.append((tags, "\n".join(body).strip("\n")))
    return cells


class Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, s):
        for st in self.streams:
            st.write(s)
        return len(s)

    def flush(self):
        for st in self.streams:
            st.flush()


def jsonable(v):
    if hasattr(v, "data") and hasattr(v, "to_html"):  # a pandas Styler: its table
        v = v.data
    if hasattr(v, "to_dict") and hasattr(v, "columns"):
        return json.loads(v.to_json(orient="records"))
    try:
        json.dumps(v)
        return v
    except TypeError:
        return repr(v)


def install_glue_recorder(store: dict) -> None:
    """A ``myst_nb`` stand-in whose ``glue`` records the value (the book's numbers) instead of displaying it."""
    mod = types.ModuleType("myst_nb")
    mod.glue = lambda name, value, display=True: store.__setitem__(name, jsonable(value))
    sys.modules["myst_nb"] = mod


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebook")
    ap.add_argument("--out", required=True)
    ap.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    args = ap.parse_args(argv)
    params = {k: resolve_type(v) for k, v in args.p}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    import torch

    from soo.provenance import package_versions

    cuda = torch.cuda.is_available()
    glued: dict = {}
    install_glue_recorder(glued)
    cells = code_cells((ROOT / "notebooks" / f"{args.notebook}.md").read_text())
    record = {"notebook": args.notebook, "parameters": params, "versions": package_versions(),
              "device": torch.cuda.get_device_name(0) if cuda else "cpu", "cells": [], "glue": glued}
    nb = {"nbformat": 4, "nbformat_minor": 5, "cells": [],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                       "run_notebook": {"parameters": params}}}
    ns = {"__name__": "__main__", "display": print}
    t_all = time.perf_counter()
    status = "ok"
    for i, (tags, src) in enumerate(cells):
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        buf = io.StringIO()
        t0 = time.perf_counter()
        result = None
        try:
            with contextlib.redirect_stdout(Tee(sys.stdout, buf)), contextlib.redirect_stderr(Tee(sys.stderr, buf)):
                tree = ast.parse(src)
                last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
                exec(compile(tree, f"<{args.notebook} cell {i}>", "exec"), ns)
                if last is not None:
                    result = eval(compile(ast.Expression(last.value), f"<{args.notebook} cell {i}>", "eval"), ns)
        except BaseException as e:  # keep what ran, then fail
            status = f"error in cell {i}: {type(e).__name__}: {e}"
            buf.write(f"\n{status}\n")
        if cuda:
            torch.cuda.synchronize()
        wall = time.perf_counter() - t0
        peak = torch.cuda.max_memory_allocated() / 2 ** 20 if cuda else None
        outputs = [{"output_type": "stream", "name": "stdout", "text": buf.getvalue()}] if buf.getvalue() else []
        if result is not None:
            data = {"text/plain": repr(result)}
            if hasattr(result, "to_html"):
                data["text/html"] = result.to_html()
            outputs.append({"output_type": "execute_result", "execution_count": i + 1, "data": data, "metadata": {}})
        nb["cells"].append({"cell_type": "code", "execution_count": i + 1, "id": f"cell-{i}",
                            "metadata": {"tags": tags, "wall_s": wall, "peak_cuda_mib": peak}, "outputs": outputs,
                            "source": src})
        record["cells"].append({"cell": i, "tags": tags, "wall_s": round(wall, 3), "peak_cuda_mib": peak,
                                "first_line": src.splitlines()[0] if src else ""})
        if "parameters" in tags:  # papermill's injected cell
            inject = "\n".join(f"{k} = {v!r}" for k, v in params.items())
            exec(inject, ns)
            nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "injected-parameters",
                                "metadata": {"tags": ["injected-parameters"]}, "outputs": [], "source": inject})
        record["wall_s"] = round(time.perf_counter() - t_all, 3)
        peaks = [c["peak_cuda_mib"] for c in record["cells"] if c["peak_cuda_mib"] is not None]
        record["peak_cuda_mib"] = max(peaks) if peaks else None
        record["status"] = status
        atomic_write(out / f"{args.notebook}.ipynb", json.dumps(nb, indent=1))
        atomic_write(out / f"{args.notebook}.json", json.dumps(record, indent=1, default=repr))
        if status != "ok" or (params.get("dry_run") is True and ".dry_run(" in src):
            break
    print(f"{args.notebook}: {status}, {record['wall_s']:.1f} s, peak CUDA {record['peak_cuda_mib']} MiB", flush=True)
    return 0 if status == "ok" else 1


if __name__ == "__main__":
    raise SystemExit(main())
