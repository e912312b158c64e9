"""Model loading time: the embedded model from its converted cache (median of ``--n``) and the four
tiny random models; with ``--convert`` also the first-time GGUF -> safetensors conversion, in a
temporary ``SOO_MODEL_CACHE`` (the user's cache is not touched).

Usage: ``python benchmarks/bench_load.py [--n 3] [--convert]``.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

t_import0 = time.perf_counter()
import torch  # noqa: E402,F401

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from soo.llm import models  # noqa: E402

T_IMPORT = time.perf_counter() - t_import0


def load_times(name: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        model, tok = models.load(name)
        out.append(time.perf_counter() - t0)
        del model, tok
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=3, help="loads per model (median reported)")
    ap.add_argument("--convert", action="store_true", help="also time the first-time conversion (temp cache)")
    a = ap.parse_args(argv)
    print(f"import torch + soo.llm.models: {T_IMPORT:.2f} s")
    t0 = time.perf_counter()
    models.embedded_path()  # make sure the converted cache exists (converts on first use)
    for name in models.TINY_MODELS:
        models.tiny_path(name)
    print(f"caches ready in {time.perf_counter() - t0:.2f} s ({models.cache_dir()})")
    print(f"{'model':28s} {'median s':>9s} {'first s':>8s} {'all':s}")
    for name in (models.EMBEDDED, *models.TINY_MODELS):
        ts = load_times(name, a.n)
        print(f"{name:28s} {statistics.median(ts):9.2f} {ts[0]:8.2f} {' '.join(f'{t:.2f}' for t in ts)}")
    if a.convert:
        with tempfile.TemporaryDirectory() as tmp:
            old = os.environ.get("SOO_MODEL_CACHE")
            os.environ["SOO_MODEL_CACHE"] = tmp
            try:
                t0 = time.perf_counter()
                models.embedded_path()
                t_conv = time.perf_counter() - t0
                t0 = time.perf_counter()
                models.load(models.EMBEDDED)
                t_after = time.perf_counter() - t0
            finally:
                if old is None:
                    os.environ.pop("SOO_MODEL_CACHE")
                else:
                    os.environ["SOO_MODEL_CACHE"] = old
        print(f"first-time conversion of {models.EMBEDDED}: {t_conv:.2f} s (then load {t_after:.2f} s)")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
