"""Small shared helpers: paths, seeding, atomic result files, run manifests.

Every result file in this project is written through :func:`atomic_write_json` /
:func:`atomic_write_text`, so an interrupted run never leaves a half-written file
that a later run would mistake for a finished one.
"""
from __future__ import annotations

import json
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


def manifest(**extra) -> dict:
    """A run manifest: package versions, git commit, plus whatever the caller adds."""
    return {"versions": package_versions(), "git_commit": git_commit(), **extra}
