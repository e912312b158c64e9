"""Time the workshop exercises (book/workshop.md) on this machine, all in one run, at the default scale.

The exercises are the ``papermill`` commands printed on the workshop page, read from it and run as written (their
parameters as papermill's command line passes them; each exercise is named by its ``out_dir``,
``results/workshop/<name>``). An exercise's folder is emptied first, so every time is a fresh run; the trained
organism of the default scale (``make book``) is reused where an exercise starts from it. Prints one line per
exercise and writes ``benchmarks/workshop_times.json`` (each time with the date, the machine, the precision the
notebook computed in and its parameters) and, from it, ``book/workshop_times.md``, which the workshop page includes.

    .venv/bin/python benchmarks/bench_workshop.py
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

from soo import notebooks, pages
from soo.files import atomic_write_json
from soo.llm import models
from soo.llm.scales import llm_config
from soo.utils import project_root


def exercises(root: Path) -> dict[str, tuple[str, dict]]:
    """``{name: (notebook, parameters)}`` of every papermill command on the workshop page."""
    out = {}
    for argv in pages.page_commands(root / "book" / "workshop.md"):
        params = pages.papermill_parameters(argv)
        out[Path(params["out_dir"]).name] = (Path(argv[1]).stem, params)
    return out


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.parse_args(argv)
    root = project_root()
    todo = exercises(root)
    machine = f"{cpu_name()}, {os.cpu_count()} cores, {models.machine()}"
    run = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
    times = {}
    for name, (nb, params) in todo.items():
        shutil.rmtree(root / params["out_dir"], ignore_errors=True)
        precision = llm_config("default", precision=params.get("precision", "auto")).precision \
            if nb.startswith("llm_") else "fp32"
        t0 = time.perf_counter()
        notebooks.execute(nb, scale=params.get("scale", "default"), root=root, parameters=params,
                          executed_dir=params["out_dir"])
        dt = time.perf_counter() - t0
        times[name] = {"notebook": nb, "wall_s": round(dt, 1), "precision": precision, "date": run[:10],
                       "run": run, "machine": machine, "parameters": params}
        print(f"{name:<22s} {nb:<18s} {precision:<5s} {dt:7.1f} s", flush=True)
    atomic_write_json(root / pages.WORKSHOP_TIMES, times)
    pages.write_workshop_times(root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
