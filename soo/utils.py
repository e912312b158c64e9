"""Small shared helpers: paths, seeding, atomic result files, run manifests.

Every result file in this project is written through :func:`atomic_write_json` /
:func:`atomic_write_text`, so an interrupted run never leaves a half-written file
that a later run would mistake for a finished one.
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
