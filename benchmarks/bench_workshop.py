"""Time the workshop exercises (book/workshop.md) on this machine at the default scale.

Each exercise is one notebook run with changed parameters, writing into its own
``results/workshop/<name>`` so the book's results are untouched (the trained organism of
the default scale is reused where an exercise starts from it); an exercise's folder is emptied
first, so that every time is a fresh run. Prints one line per
exercise, keeps every exercise's latest time in ``benchmarks/workshop_times.json`` (so ``--only``
updates one row) and writes ``book/workshop_times.md``, which the workshop page includes.

    .venv/bin/python benchmarks/bench_workshop.py [--only NAME ...]
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from datetime import date

from soo import notebooks
from soo.utils import atomic_write_json, atomic_write_text, project_root, read_json

ORGANISM = "results/default/llm_organism/model"
# The parameters exactly as papermill's command line passes those of book/workshop.md (lists as strings);
# tests/test_documented_commands.py runs the page's commands themselves.
EXERCISES = {
    "layer": ("llm_soo", {"start_from": ORGANISM, "layer": 6, "seeds": "[0]", "conditions": '["soo_mse"]',
                        "sweep_layers": "[]", "sweep_lrs": "[]"}),
    "kl_loss": ("llm_soo", {"start_from": ORGANISM, "seeds": "[0]", "conditions": '["soo_kl_logits"]',
                          "sweep_layers": "[]", "sweep_lrs": "[]"}),
    "no_counterbalancing": ("llm_organism", {"counterbalance": False}),
    "classifier_seeds": ("rl_classification", {"seeds": "[155, 714, 1908, 1549, 1195]"}),
    "honest_reward": ("rl_soo", {"finetune_reward": "honest"}),
}


def prepare(name: str, root) -> None:
    """A fresh start (an earlier run of the exercise would be read back, not timed), then what the
    exercise's instructions do before its notebook runs."""
    shutil.rmtree(root / "results" / "workshop" / name, ignore_errors=True)  # rl_soo trains its own baselines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", choices=sorted(EXERCISES))
    args = ap.parse_args(argv)
    root = project_root()
    store = root / "benchmarks" / "workshop_times.json"
    times = read_json(store) if store.exists() else {}
    for name, (nb, params) in EXERCISES.items():
        if args.only and name not in args.only:
            continue
        prepare(name, root)
        t0 = time.perf_counter()
        notebooks.execute(nb, scale="default", root=root, executed_dir=f"results/workshop/{name}",
                          parameters={**params, "out_dir": f"results/workshop/{name}",
                                      "fig_dir": f"results/workshop/{name}/figures"})
        dt = time.perf_counter() - t0
        times[name] = {"notebook": nb, "wall_s": dt, "date": str(date.today()), "machine": platform.machine(),
                       "cores": os.cpu_count()}
        atomic_write_json(store, times)
        print(f"{name:<22s} {nb:<14s} {dt:7.1f} s", flush=True)
    table = ["| exercise | notebook | wall time (s) | measured |", "|---|---|---|---|"]
    table += [f"| {n} | `{t['notebook']}` | {t['wall_s']:.0f} | {t['date']}, {t['machine']}, {t['cores']} cores |"
              for n, t in times.items() if n in EXERCISES]
    note = "Measured by `benchmarks/bench_workshop.py` at the default scale, after `make book`."
    atomic_write_text(root / "book" / "workshop_times.md", "\n".join(table) + "\n\n" + note + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
