"""Mutation testing of the core modules (``make mutate``) and its record, ``benchmarks/mutation.json``.

The tool is mutmut, pinned in ``requirements-mutate.txt``; its set-up is the ``[tool.mutmut]`` section of
``pyproject.toml`` (the five files it may mutate and the tests it runs). :data:`FUNCTIONS` picks, in each module, the
functions whose mutants are tested: the whole of ``soo/losses.py``, and elsewhere the parts the record is about
(the first-mention classifier and the rates of ``soo/llm/scoring.py``, the verdicts of ``soo/rl/metrics.py`` and the
measures they decide on, the reward and trap rules of ``soo/rl/env.py``, the atomic writers of ``soo/files.py``).
A mutant is killed when a test fails (or runs past mutmut's time limit) with it in place.

    python scripts/mutation_report.py --run    # a fresh run (mutants/ emptied, one mutmut run per module), the record
    python scripts/mutation_report.py          # the record again from mutants/ (after `mutmut run NAME` of a mutant)

Prints each module's counts and every mutant not killed with its diff (``mutmut show NAME`` shows one again).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from soo.files import atomic_write_json  # noqa: E402
from soo.provenance import machine_info  # noqa: E402

OUT = ROOT / "benchmarks" / "mutation.json"
MUTANTS = ROOT / "mutants"

# module file -> (dotted module, functions whose mutants are tested; "Class.method" for a method)
FUNCTIONS = {
    "soo/losses.py": ("soo.losses", ["_check_pair", "_last_index", "soo_mse", "soo_kl_logits"]),
    "soo/llm/scoring.py": ("soo.llm.scoring", [
        "_pattern", "_spans", "_inside", "first_mentions", "classify", "answer_kind", "decided",  # the classifier
        "rate", "summarize", "summarize_orders"]),  # the rates
    "soo/stats.py": ("soo.stats", ["paired_t_verdict"]),  # the RL verdict
    "soo/rl/metrics.py": ("soo.rl.metrics", [
        "classification_accuracy", "mean_soo_curve",  # the verdicts
        "behavioural_difference", "surface_mse", "truncated_surfaces", "count_surface", "threshold_grid",
        "deceptive_moves", "_unit", "summary", "per_episode"]),  # the measures they decide on
    "soo/rl/env.py": ("soo.rl.env", [
        "trapped_at", "_rewards",  # the rules
        "BatchedDeceptionEnv.reset", "BatchedDeceptionEnv.step"]),  # where they are applied (trap at reset, freeze)
    "soo/files.py": ("soo.files", [
        "atomic_write_text", "atomic_write_json", "_json_default", "_aside_of", "_recover_aside"]),
}
NOT_MUTATED = {
    "soo/files.py": {
        "atomic_file": "decorated (@contextmanager): mutmut 3 mutates no decorated function",
        "atomic_directory": "decorated (@contextmanager): mutmut 3 mutates no decorated function (its helpers "
                            "_aside_of and _recover_aside are mutated)"},
    "soo/rl/env.py": {
        "BatchedDeceptionEnv.fake": "a @property: mutmut 3 mutates no decorated function"},
}
KILLED = ("killed", "timeout")


def mangled(function: str) -> str:
    """mutmut's name of a function in its mutants' names: ``x_name``, or ``xǁClassǁmethod`` for a method."""
    if "." in function:
        cls, name = function.split(".")
        return f"xǁ{cls}ǁ{name}"
    return f"x_{function}"


def patterns(path: str) -> list[str]:
    """The mutant names (globs) of a module's selected functions, as ``mutmut run`` takes them."""
    mod, funcs = FUNCTIONS[path]
    return [f"{mod}.{mangled(f)}__mutmut_*" for f in funcs]


def mutmut_exe() -> str:
    exe = Path(sys.executable).with_name("mutmut")
    return str(exe) if exe.exists() else "mutmut"


def run(max_children: int) -> dict:
    """A fresh run: ``mutants/`` emptied, then one ``mutmut run`` per module (the first also generates the mutants
    and maps the tests to the functions they call; the others reuse both). Returns each module's command and wall
    seconds."""
    shutil.rmtree(MUTANTS, ignore_errors=True)
    out = {}
    for path in FUNCTIONS:
        cmd = [mutmut_exe(), "run", "--max-children", str(max_children), *patterns(path)]
        print(f"== {path}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, cwd=ROOT).returncode
        seconds = time.perf_counter() - t0
        if rc != 0:
            raise SystemExit(f"mutmut run failed for {path} (exit code {rc})")
        out[path] = {"mutmut_command": " ".join(["mutmut", *cmd[1:]]), "wall_s": round(seconds, 1)}
    return out


def diff(name: str) -> str:
    out = subprocess.run([mutmut_exe(), "show", name], cwd=ROOT, capture_output=True, text=True)
    return "\n".join(line for line in out.stdout.splitlines() if line.startswith(("-", "+")) and
                     not line.startswith(("---", "+++")))


def module_record(path: str) -> dict:
    from mutmut.stats import status_by_exit_code

    mod, funcs = FUNCTIONS[path]
    meta = json.loads((MUTANTS / f"{path}.meta").read_text())
    codes = meta["exit_code_by_key"]
    prefixes = {f: f"{mod}.{mangled(f)}__mutmut_" for f in funcs}
    status, per_function = {}, {}
    for f, prefix in prefixes.items():
        names = sorted((k for k in codes if k.startswith(prefix)), key=lambda k: int(k.rsplit("_", 1)[1]))
        if not names:
            raise SystemExit(f"{path}: no mutant of {f} (a function that is gone, renamed or decorated?)")
        for k in names:
            status[k] = status_by_exit_code[codes[k]]
        per_function[f] = {"total": len(names), "killed": sum(status[k] in KILLED for k in names)}
    counts = {s: sum(v == s for v in status.values()) for s in set(status.values())}
    killed = sum(counts.get(s, 0) for s in KILLED)
    survivors = sorted((k for k, s in status.items() if s not in KILLED), key=lambda k: (k.split("__mutmut_")[0],
                                                                                           int(k.rsplit("_", 1)[1])))
    return {"functions": funcs, "not_mutated": NOT_MUTATED.get(path, {}), "total": len(status), "killed": killed,
            "survived": len(status) - killed, "killed_percent": round(100 * killed / len(status), 1),
            "by_status": dict(sorted(counts.items())), "per_function": per_function,
            "survivors": [{"mutant": k, "status": status[k], "diff": diff(k)} for k in survivors]}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", action="store_true", help="run mutmut afresh first (else read the last run back)")
    ap.add_argument("--max-children", type=int, default=os.cpu_count() or 1, help="mutants tested at once")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    import tomllib
    from importlib import metadata

    if args.run:
        load, t0 = os.getloadavg()[0], time.perf_counter()
        runs = run(args.max_children)
        run_info = {"date": dt.date.today().isoformat(), "wall_s": round(time.perf_counter() - t0, 1),
                    "max_children": args.max_children,
                    "machine": {**machine_info(), "load_average_1min": [round(load, 2), round(os.getloadavg()[0], 2)]}}
    elif args.out.exists():  # counts read back again: the run they came from is the one on record
        old = json.loads(args.out.read_text())
        run_info = {k: old[k] for k in ("date", "wall_s", "max_children", "machine") if k in old}
        runs = {p: {k: m[k] for k in ("mutmut_command", "wall_s") if k in m} for p, m in old.get("modules", {}).items()}
    else:
        raise SystemExit(f"no record at {args.out}: run with --run first")
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    record = {"command": "make mutate", "tool": f"mutmut {metadata.version('mutmut')}", **run_info,
              "tests": cfg["pytest_add_cli_args_test_selection"],
              "modules": {path: {**runs.get(path, {}), **module_record(path)} for path in FUNCTIONS}}
    atomic_write_json(args.out, record)
    for path, m in record["modules"].items():
        print(f"{path}: {m['killed']}/{m['total']} killed ({m['killed_percent']} %), {m['survived']} not killed"
              + (f", {m['wall_s']:.0f} s" if "wall_s" in m else ""))
        for s in m["survivors"]:
            print(f"  {s['mutant']} ({s['status']})\n" + "\n".join("    " + line for line in s["diff"].splitlines()))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
