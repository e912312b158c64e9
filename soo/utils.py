"""Small shared helpers of both wings: parameter checks, paths, seeding, the disk cache, the process pool,
run manifests. Nothing here knows about models, prompts or environments.

Every result file in this project is written through :func:`atomic_write_json` /
:func:`atomic_write_text` (a folder through :func:`atomic_directory`), so an interrupted run never leaves a
half-written file that a later run would mistake for a finished one; :func:`cached` is the one cache of results on
disk, :func:`written_with` the one test of "was this result made with these settings" (the cache, a trained LLM
adapter, an RL run), and :func:`run_parallel` the one process pool and the one place that sets a job's torch
threads (:func:`torch_threads` for a block of this process).
"""
from __future__ import annotations

import json
import math
import numbers
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from importlib import metadata
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


def seed_table(df, by: str, columns=None):
    """Mean and population SD (ddof=0, the convention of the paper and of this project) over the rows
    (seeds) of each ``by`` group of a DataFrame: columns ``"<col> mean"`` and ``"<col> sd"`` for each of
    ``columns`` (default: every other numeric column), groups in their order of appearance."""
    g = df.groupby(by, sort=False)
    columns = list(columns) if columns is not None else [c for c in df.select_dtypes("number").columns if c != by]
    mean, sd = g[columns].mean(), g[columns].std(ddof=0)
    out = mean.add_suffix(" mean").join(sd.add_suffix(" sd"))
    return out[[f"{c} {k}" for c in columns for k in ("mean", "sd")]]


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


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


_ASIDE = ".old-"
"""Infix of the name a replaced folder has between :func:`atomic_directory`'s first and last step."""


def _aside_of(dst: Path) -> list[Path]:
    """Folders a commit of ``dst`` moved aside (``.{name}.old-*`` siblings), newest first."""
    import glob

    found = [Path(p) for p in glob.glob(str(dst.parent / f".{glob.escape(dst.name)}{_ASIDE}*"))]
    return sorted(found, key=lambda p: p.lstat().st_ctime, reverse=True)


def _recover_aside(dst: Path) -> None:
    """Finish the commit of a process that died inside :func:`atomic_directory`'s commit: with ``dst`` missing, the
    folder moved aside is the last whole version and goes back; with ``dst`` there, what was moved aside is removed."""
    import shutil

    aside = _aside_of(dst)
    if aside and not os.path.lexists(dst):
        os.rename(aside.pop(0), dst)
    for p in aside:
        shutil.rmtree(p, ignore_errors=True)


@contextmanager
def atomic_directory(dst: str | os.PathLike):
    """``with atomic_directory(dst) as tmp:`` — fill the folder ``tmp`` (a fresh sibling of ``dst``); when the block
    ends without an error, ``tmp`` replaces ``dst`` whole, so a reader never sees half a folder. On an error ``dst``
    is left as it was and ``tmp`` is removed.

    The commit is three steps, each of which leaves a whole folder behind if it fails: the old ``dst`` is renamed
    aside (to the hidden sibling ``.{name}.old-*``), ``tmp`` is renamed to ``dst`` (on a failure the old folder is
    renamed back), then the old folder is removed (a failure leaves only that hidden sibling). A process killed in
    the block leaves ``dst`` as it was (and its hidden ``tmp``); one killed between the two renames leaves ``dst``
    aside, whole, and the next ``atomic_directory(dst)`` puts it back before it starts (and removes any leftover
    aside)."""
    import secrets
    import shutil

    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    _recover_aside(dst)
    tmp = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}.tmp"))
    tmp.chmod(0o755)
    try:
        yield tmp
        old = None
        if os.path.lexists(dst):
            old = dst.parent / f".{dst.name}{_ASIDE}{secrets.token_hex(6)}"
            os.rename(dst, old)  # 1. the old folder aside
        try:
            os.rename(tmp, dst)  # 2. the new one in
        except BaseException:
            if old is not None:
                os.rename(old, dst)
            raise
        if old is not None:  # 3. the old one removed
            try:
                shutil.rmtree(old)
            except OSError:  # dst is whole; the next commit of dst removes what is left aside
                pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def atomic_file(path: str | os.PathLike):
    """``with atomic_file(path) as tmp:`` — write the file ``tmp`` (e.g. with ``torch.save``); when the block ends
    without an error it replaces ``path`` whole; on an error ``path`` is left as it was and ``tmp`` is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _jsonable(obj, default=_json_default):
    return json.loads(json.dumps(obj, default=default))


def cache_key(key: Any) -> Any:
    """``key`` as it is stored and compared by :func:`cached` (JSON types; anything else by its ``str``)."""
    return _jsonable(key, default=str)


def written_with(path: str | os.PathLike, key: Any, *, field: str = "_key") -> bool:
    """True if the JSON file ``path`` exists and its ``field`` holds ``key`` (compared as :func:`cache_key` stores
    it): the one test of "was this result made with these settings", for the disk cache (:func:`is_cached`), a
    trained LLM adapter's manifest and an RL run's training log alike."""
    path = Path(path)
    if not path.exists():
        return False
    stored = read_json(path)
    return isinstance(stored, dict) and field in stored and stored[field] == cache_key(key)


def is_cached(path: str | os.PathLike, key: Any) -> bool:
    """True if ``path`` holds a :func:`cached` result computed with ``key``."""
    return written_with(path, key)


def cached(path: str | os.PathLike, key: Any, compute: Callable[[], Any]) -> Any:
    """The one disk cache of the project (LLM and RL results alike).

    Read ``path`` if it holds a result computed with the same ``key`` (the settings that produced it: a
    JSON-able dict); otherwise call ``compute()``, write ``{"_key": key, "value": result}`` atomically and
    return the result as read back (JSON types). A result computed with other settings is recomputed, never
    silently reused; an interrupted computation leaves no file."""
    path = Path(path)
    if is_cached(path, key):
        return read_json(path)["value"]
    out = compute()
    atomic_write_json(path, {"_key": cache_key(key), "value": out})
    return _jsonable(out)


def read_value(path: str | os.PathLike) -> Any:
    """The value of a result file written by :func:`cached` (whatever its key)."""
    stored = read_json(path)
    return stored["value"] if isinstance(stored, dict) and "_key" in stored else stored


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


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=project_root(), capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() or None
    except Exception:  # no git, not a checkout
        return None


def package_versions(names=("torch", "transformers", "peft", "bitsandbytes", "numpy", "mpe2", "pettingzoo")) -> dict:
    out = {"python": sys.version.split()[0]}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = None
    return out


def machine_info() -> dict:
    """CPU model, core count, GPU (if CUDA is available) and platform of this machine."""
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = None
    if "torch" in sys.modules and sys.modules["torch"].cuda.is_available():
        gpu = sys.modules["torch"].cuda.get_device_name(0)
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "gpu": gpu, "platform": platform.platform()}


def manifest(**extra) -> dict:
    """A run manifest: package versions, git commit, plus whatever the caller adds."""
    return {"versions": package_versions(), "git_commit": git_commit(), **extra}


def figure_dir(out_dir, fig_dir=None) -> Path:
    """Where a notebook saves its figures, created: ``fig_dir``, or ``{out_dir}/figures`` when it is None (so a
    re-run with its own ``out_dir`` never overwrites the book's figures; ``make book`` passes ``book/figures``)."""
    d = Path(out_dir) / "figures" if fig_dir is None else Path(fig_dir)
    d.mkdir(parents=True, exist_ok=True)
    return d
