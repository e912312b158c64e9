"""Small shared helpers of both wings: parameter checks (:func:`check_choice` and the ``as_*`` parsers of notebook
parameters), paths, seeding, and :func:`run_parallel`, the one process pool and the one place that sets a job's
torch threads (:func:`torch_threads` for a block of this process). Result files and the disk cache are
``soo.files``; run manifests ``soo.provenance``. Nothing here knows about models, prompts or environments.
"""
from __future__ import annotations

import math
import numbers
import os
import random
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

SCALES = ("smoke", "default", "full")


def project_root() -> Path:
    """The repository root (the folder holding ``_toc.yml``), found from this file."""
    here = Path(__file__).resolve().parent
    for cand in (here, *here.parents):
        if (cand / "_toc.yml").exists():
            return cand
    return here.parent


def check_choice(name: str, value: Any, choices) -> None:
    """Raise a ``ValueError`` naming the parameter and the valid choices."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not valid; choose one of {', '.join(map(repr, choices))}.")


def _as_list(name: str, values, example: str) -> list:
    """``values`` as a list. A string is read as YAML/JSON (papermill's ``-p seeds "[0]"`` passes the string
    ``"[0]"``) and must spell a list; anything else that is not a list is refused with the parameter's name."""
    if isinstance(values, str):
        import yaml

        try:
            parsed = yaml.safe_load(values)
        except yaml.YAMLError:
            parsed = None
        if isinstance(parsed, list):
            return parsed
    if isinstance(values, (str, bytes, numbers.Number)) or not hasattr(values, "__iter__"):
        raise ValueError(f"{name}={values!r}: give a list, e.g. {example} (on papermill's command line: "
                         f"-p {name} \"{example}\").")
    return list(values)


def as_choices(name: str, values, choices) -> tuple[str, ...]:
    """``values`` (a list, or a YAML/JSON string spelling one) as a tuple of strings, each one of ``choices``;
    otherwise a ``ValueError`` naming the parameter and the choices."""
    vals = _as_list(name, values, "[" + ", ".join(f'"{c}"' for c in list(choices)[:2]) + "]")
    for v in vals:
        check_choice(name, v, choices)
    return tuple(vals)


def as_ints(name: str, values) -> tuple[int, ...]:
    """``values`` (a list of integers, or of strings that spell integers: papermill's ``-p`` passes
    YAML) as a tuple of ints; otherwise a ``ValueError`` naming the parameter. Booleans and numbers
    with a fraction are refused rather than rounded."""
    vals = _as_list(name, values, "[0, 1, 2]")
    out = []
    for v in vals:
        if isinstance(v, str) and v.strip().lstrip("+-").isdigit():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise ValueError(f"{name}={vals!r}: {v!r} is not an integer.")
        out.append(int(v))
    return tuple(out)


MAX_SEED = 2**32 - 1
"""The largest seed numpy's and torch's generators accept."""


def as_seeds(values) -> tuple[int, ...]:
    """The ``seeds`` parameter of every notebook (LLM and RL): a non-empty list of integers in ``0..2**32 - 1`` (or
    its YAML/JSON text, as papermill's ``-p`` passes it); otherwise a ``ValueError`` naming ``seeds``, before any
    compute."""
    seeds = as_ints("seeds", values)
    if not seeds:
        raise ValueError("seeds: give at least one seed (or None for the scale's default)")
    bad = [s for s in seeds if not 0 <= s <= MAX_SEED]
    if bad:
        raise ValueError(f"seeds={list(seeds)!r}: {bad[0]!r} is out of range; seeds are integers from 0 to "
                         f"{MAX_SEED} (2**32 - 1, what numpy and torch accept).")
    return seeds


def as_positive_floats(name: str, values) -> tuple[float, ...]:
    """``values`` (a list of positive numbers, or strings that spell them, such as ``"1e-3"``, which
    YAML reads as a string) as a tuple of floats; otherwise a ``ValueError`` naming the parameter."""
    vals = _as_list(name, values, "[1e-4, 1e-3]")
    out = []
    for v in vals:
        try:
            if isinstance(v, bool):
                raise TypeError
            f = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{name}={vals!r}: {v!r} is not a number.") from None
        if not (math.isfinite(f) and f > 0):
            raise ValueError(f"{name}={vals!r}: {v!r} must be a finite number > 0.")
        out.append(f)
    return tuple(out)


def check_scale(scale: str) -> str:
    check_choice("scale", scale, SCALES)
    return scale


def seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy and torch (CPU and CUDA)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


@contextmanager
def torch_threads(n: int):
    """``with torch_threads(1):`` — torch's intra-op thread count inside the block, restored after it."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _call_with_threads(fn, threads: int, job):
    t0 = time.perf_counter()
    with torch_threads(threads):
        fn(job)
    return time.perf_counter() - t0


def run_parallel(fn: Callable[[Any], Any], jobs: Sequence, workers: int, *, threads: int | None = None,
                 label: Callable[[Any], str] = str, log: bool = True) -> None:
    """The one process pool of the project, and the one place that sets torch's thread count for a job: ``fn(job)``
    for every job, for its side effects (each job writes its own result files). With ``workers`` > 1 (capped at
    the jobs and the CPU count) the jobs run in that many spawned processes, each with ``threads`` torch threads
    (None: its share of the CPU's; small training steps use two one-thread processes better than one process with
    two threads). ``fn`` must be a module-level function (it is pickled). With one worker the jobs run here, one
    after another, with ``threads`` threads (None: this process's), and this process's count is restored after
    each. Prints one line per finished job (``label(job)`` and its seconds) when ``log``."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    jobs = list(jobs)
    workers = max(1, min(int(workers), len(jobs), os.cpu_count() or 1))
    if workers == 1:
        import torch

        for job in jobs:
            seconds = _call_with_threads(fn, torch.get_num_threads() if threads is None else threads, job)
            if log:
                print(f"  {label(job)}: {seconds:.0f} s", flush=True)
        return
    threads = max(1, (os.cpu_count() or 1) // workers) if threads is None else threads
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as ex:
        futs = {ex.submit(_call_with_threads, fn, threads, job): job for job in jobs}
        for f in as_completed(futs):
            seconds = f.result()  # re-raises a worker's error here
            if log:
                print(f"  {label(futs[f])}: {seconds:.0f} s", flush=True)


def figure_dir(out_dir, fig_dir=None) -> Path:
    """Where a notebook saves its figures, created: ``fig_dir``, or ``{out_dir}/figures`` when it is None (so a
    re-run with its own ``out_dir`` never overwrites the book's figures; ``make book`` passes ``book/figures``)."""
    d = Path(out_dir) / "figures" if fig_dir is None else Path(fig_dir)
    d.mkdir(parents=True, exist_ok=True)
    return d
