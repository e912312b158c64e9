"""Where the ``llm_soo`` notebook's time goes: seconds per phase, measured in one run, as one JSON line.

The notebook evaluates the start model once and then trains and evaluates one SOO run per (condition, seed) and per
sweep point, two runs at a time on a 2-core CPU, each in its own process with one torch thread
(:func:`soo.utils.run_parallel`). This script runs, here, in one process with one torch thread, the start model's
evaluation and one run of each condition (seed 0, the scale's layer and lr) through the notebook's own steps
(:func:`soo.llm.experiment.base_run`, :func:`soo.llm.experiment.soo_run`) into a scratch folder, and times every
phase: loading, training, the start model's capability pass in a run (recorded, or read back from the start
model's row: :class:`soo.llm.capability.StartOutputs`), merging,
log-prob scoring of the burglar scenarios, their greedy generation, Perspectives, latent SOO, capability. Each
phase's time is its own (time spent in a phase nested inside it counts for the inner one).

From the sampled runs and the notebook's run list (:func:`soo.llm.experiment.soo_jobs` at the scale: how many runs
of each condition) it adds up the notebook's one-thread seconds per phase (a sweep run counted as its condition's
sampled run) and divides by the two workers for an estimate of the wall time. The estimate is for comparing two
versions of the code in one run on one machine, not a measured notebook time (``make book`` prints those).

The start is the model itself (``start_from=None``), so no organism has to be trained first. The organism has the
same architecture, so every phase but greedy generation costs the same; generation runs until every answer of a
batch has ended, and took more than twice as long per run from the released model as from the organism
(``benchmarks/README.md``), so the burglar-generation phase here is an upper bound of the notebook's. ``--precision fp32`` computes as ``precision="auto"`` does on a
CPU without native bf16; ``--isa avx2`` restarts the script with torch, oneDNN and MKL held to their AVX2 kernels
(``ATEN_CPU_CAPABILITY=avx2``, ``ONEDNN_MAX_CPU_ISA=AVX2``, ``MKL_ENABLE_INSTRUCTIONS=AVX2``): an AVX2-only
machine's instruction set on this one (its clock, caches and memory stay this machine's).

Usage: ``python benchmarks/bench_profile_llm.py [--scale default] [--precision fp32] [--isa avx2] [--out FILE]``;
``--out`` appends the JSON line to FILE (the kept profiles are ``benchmarks/profile_llm_soo.jsonl``).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ISA_ENV = {"avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}}
"""The environment that holds torch's, oneDNN's and MKL's kernels to an instruction set."""
WORKERS = 2
"""The notebook's CPU workers (:attr:`soo.llm.config.LLMConfig.workers` at the default scale)."""


class PhaseClock:
    """Exclusive seconds per phase: ``with clock("train"):`` blocks may nest; a block's time less the time of the
    blocks inside it is its own."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self._stack: list[list] = []  # [name, start, time of the blocks inside]

    @contextlib.contextmanager
    def __call__(self, name: str):
        self._stack.append([name, time.perf_counter(), 0.0])
        try:
            yield
        finally:
            name, t0, inner = self._stack.pop()
            total = time.perf_counter() - t0
            self.seconds[name] += total - inner
            if self._stack:
                self._stack[-1][2] += total

    def current(self) -> str | None:
        """The innermost open phase."""
        return self._stack[-1][0] if self._stack else None

    def wrap(self, owner, attr: str, name):
        """Replace ``owner.attr`` by a timed copy; ``name``: a phase name or a function of the call's arguments."""
        fn = getattr(owner, attr)

        def timed(*args, **kwargs):
            with self(name(*args, **kwargs) if callable(name) else name):
                return fn(*args, **kwargs)
        setattr(owner, attr, timed)


START_PASS = "start model's capability pass"


def _scenario_kind(scenarios) -> str:
    return "perspectives" if scenarios and scenarios[0].kind == "perspectives" else "burglar"


def score_phase(model, tok, sc, scenarios, method="logprob", whole=None):
    return f"{_scenario_kind(scenarios)} {'generation' if method == 'generate' else 'log-prob'}"


def score_both_phase(model, tok, sc, scenarios, whole=None):
    """Generation and log-prob of the same scenarios in one pass (the log-probs read from generation's cache)."""
    return f"{_scenario_kind(scenarios)} generation + log-prob"


def instrument(clock: PhaseClock) -> None:
    """Time the notebook's steps where they are looked up (module attributes), without changing what they do."""
    from soo.llm import capability as C
    from soo.llm import experiment as X

    clock.wrap(X, "load_as_configured", "load")
    clock.wrap(X, "train", "train")
    clock.wrap(X, "eval_ready", "merge")
    clock.wrap(X, "score_as_configured", score_phase)
    clock.wrap(X, "score_both_as_configured", score_both_phase)
    clock.wrap(X, "capability_set", "capability set")
    clock.wrap(X, "latent_soo", "latent SOO")
    # the start model's pass runs capability's batches through StartOutputs.record: counted as that pass
    for owner in (X, C):  # the SOO run's own check (experiment) and the start model's passes (StartOutputs)
        clock.wrap(owner, "capability", lambda *a, **k: START_PASS if clock.current() == START_PASS else "capability")
    record = C.StartOutputs.record.__func__

    def timed_record(cls, *args, **kwargs):
        with clock(START_PASS):
            return record(cls, *args, **kwargs)
    C.StartOutputs.record = classmethod(timed_record)
    load = C.StartOutputs.load.__func__

    def timed_load(cls, *args, **kwargs):
        with clock(START_PASS):
            return load(cls, *args, **kwargs)
    C.StartOutputs.load = classmethod(timed_load)


def profile(scale: str, precision: str) -> dict:
    import torch

    from soo.llm import experiment as X
    from soo.llm import models
    from soo.provenance import manifest

    torch.set_num_threads(1)  # as each of the notebook's workers
    clock = PhaseClock()
    instrument(clock)
    nb = X.setup("llm_soo", scale, start_from=None, precision=precision, out_dir=tempfile.mkdtemp(prefix="soo-prof-"))
    sc = nb.cfg
    jobs = X.soo_jobs(sc)
    runs = [r.resolved(sc) for group in jobs.values() for r in group]
    counts = Counter(r.condition for r in dict.fromkeys(runs))
    per_run: dict[str, dict] = {}
    t_all = time.perf_counter()
    for name, step in [("base", lambda: X.base_run(sc.model, sc, nb.run_dir))] + [
            (c, lambda c=c: X.soo_run(sc.model, sc, nb.run_dir, X.SooRun(c, sc.seeds[0]), progress=False))
            for c in counts]:
        before = dict(clock.seconds)
        t0 = time.perf_counter()
        step()
        per_run[name] = {"wall_s": time.perf_counter() - t0,
                         **{k: v - before.get(k, 0.0) for k, v in clock.seconds.items() if v - before.get(k, 0.0) > 0}}
        print(f"  {name}: {per_run[name]['wall_s']:.0f} s", flush=True)
    phases = sorted({k for r in per_run.values() for k in r if k != "wall_s"})
    notebook = {p: per_run["base"].get(p, 0.0) + sum(n * per_run[c].get(p, 0.0) for c, n in counts.items())
                for p in phases}
    one_thread = per_run["base"]["wall_s"] + sum(n * per_run[c]["wall_s"] for c, n in counts.items())
    return {"bench": "profile_llm_soo", "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {models.machine()}",
            "isa_env": {k: os.environ[k] for k in ISA_ENV["avx2"] if k in os.environ},
            "scale": scale, "precision": precision, "bf16": sc.bf16, "threads_per_run": 1,
            "runs_by_condition": dict(counts), "sampled": list(per_run),
            "per_run_s": {k: {p: round(v, 2) for p, v in r.items()} for k, r in per_run.items()},
            "notebook_one_thread_s": {p: round(v, 1) for p, v in sorted(notebook.items(), key=lambda kv: -kv[1])},
            "notebook_one_thread_total_s": round(one_thread, 1),
            "notebook_wall_estimate_s": round(per_run["base"]["wall_s"] + (one_thread - per_run["base"]["wall_s"])
                                              / WORKERS, 1),
            "profile_wall_s": round(time.perf_counter() - t_all, 1), "git_commit": manifest()["git_commit"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", default="default", choices=("smoke", "default"))
    ap.add_argument("--precision", default="fp32", choices=("auto", "bf16", "fp32"))
    ap.add_argument("--isa", default=None, choices=tuple(ISA_ENV), help="hold torch/oneDNN/MKL to these kernels")
    ap.add_argument("--out", default=None, help="append the JSON line to this file")
    a = ap.parse_args()
    env = ISA_ENV.get(a.isa, {})
    if any(os.environ.get(k) != v for k, v in env.items()):  # the kernels are chosen at import: restart with them
        args = [sys.executable, __file__, "--scale", a.scale, "--precision", a.precision, "--isa", a.isa]
        sys.exit(subprocess.call(args + (["--out", a.out] if a.out else []), env={**os.environ, **env}))
    res = profile(a.scale, a.precision)
    print(f"\nllm_soo at scale={a.scale}, precision={a.precision}, {res['machine']}, one thread per run:")
    total = sum(res["notebook_one_thread_s"].values())
    for p, s in res["notebook_one_thread_s"].items():
        print(f"  {p:32s} {s:8.0f} s  {100 * s / total:5.1f} %")
    print(f"  one-thread total {res['notebook_one_thread_total_s']:.0f} s; "
          f"wall estimate on {WORKERS} workers {res['notebook_wall_estimate_s']:.0f} s")
    line = json.dumps(res)
    print(line)
    if a.out:
        with open(a.out, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
