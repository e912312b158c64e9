"""Where and with what a result was made: the machine, the package versions and the git commit, written into every
run's manifest (:func:`manifest`)."""
from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=10
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
