"""The LLM chapter's paper protocol, computed once and kept with the book (``make llm-full``).

``make book`` runs the LLM notebooks at the ``default`` scale (one seed, 25 scenarios per order): its intervals are
too wide to answer the paper's question. This module runs the ``full`` scale's SOO protocol on the embedded model
once: the organism at ``full``, the start model's row, and every rung of the control ladder
(:data:`soo.llm.config.LADDER`) x 5 seeds, each scored on 250 burglar scenarios in both orders by log-prob and by
greedy generation (75 new tokens; answers stop once their first-mention label is decided, except a fixed sample of
``n_whole`` per order kept whole), Perspectives 250 in both orders, latent SOO and the offline capability check.
Every finished run is copied into ``book/data/llm_full/<run>/``: its ``result.json`` (the per-item records: label,
log-probs, the response text), its LoRA adapter (in fp16), the forward-pass checks at the SOO site
(``mechanism.json``: :func:`mechanism`) and a ``manifest.json`` (the settings key, code version, precision, machine, wall
time); ``protocol.json`` holds every sitting's time (:class:`Sitting`). The book reads these files; ``tests/test_llm_kept.py``
fails when a kept run no longer matches the code's settings.

Resumable: a run already kept with the same settings is read back (copied into the work folder, never recomputed),
and the runs are kept one batch of ``workers`` at a time, seed by seed (:func:`seed_major`: SOO first, then the other
rungs), so the set can be built over several sittings and holds whole ladders wherever it stops. The organism
itself (a merged model, 270 MB) is not kept: a sitting with a fresh work folder that still has runs to compute
trains it again from its settings (which the kept runs' keys name); one with every run kept trains nothing. The sweeps
and the generalization variants are not part of it (the book shows them at ``default``).

``python -m soo.llm.full [--device cuda] [--workers N] [--only soo_mse lm ...] [--seeds 0 1] [--out-dir DIR]``
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..files import atomic_write_json, cache_key, read_json
from ..provenance import machine_info, manifest
from ..utils import as_choices, as_seeds, project_root
from . import models
from .config import LADDER, LLMConfig, SooRun
from .scales import llm_config

KEPT_DIR = project_root() / "book" / "data" / "llm_full"
NOTEBOOK = "llm_soo"
"""The work folder's notebook name: ``<out_dir>/full/llm_soo``, as the notebook at ``scale="full"`` uses it."""


def full_config(precision: str = "auto", seeds=None, scale: str = "full") -> LLMConfig:
    """The ``full`` scale on the embedded model (``precision``: see :func:`soo.llm.scales.llm_config`; ``scale``:
    ``smoke`` for the tests, on the tiny model)."""
    return llm_config(scale, precision=precision, seeds=seeds)


START = "<start model>"
"""What a portable key says instead of the start model's folder."""


def portable_key(key: dict) -> dict:
    """A run's cache key without the machine's folders: the organism is named by its settings, not its path (in
    the key's ``organism`` and in the training config's ``model``)."""
    key = cache_key(key)
    org = key.get("organism")
    if isinstance(org, dict):
        key["organism"] = {k: v for k, v in org.items() if k != "path"}
        if isinstance(key.get("config"), dict):
            key["config"] = {**key["config"], "model": START}
    return key


def organism_settings_key(sc: LLMConfig) -> object:
    """The organism's settings key as :func:`soo.llm.organism.make_organism` stores it, computed without it."""
    import dataclasses

    return cache_key({"config": dataclasses.asdict(sc.organism), "n": sc.organism_n, "suffix": sc.suffix,
                      "counterbalance": True, "dtype": str(sc.dtype)})


def organism_digest(start) -> str | None:
    """sha256 (16 hex digits) of the start model's weights files: the kept runs of one set must share it (the same
    settings trained on another machine can give other weights); None for a model that is not a folder."""
    import hashlib

    files = sorted(Path(str(start)).glob("*.safetensors")) if Path(str(start)).is_dir() else []
    if not files:
        return None
    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def expected_key(sc: LLMConfig, run: SooRun | None) -> dict:
    """The portable key a kept run of ``run`` (None: the start model's row) must hold under the current code."""
    from . import experiment as X

    key = X._run_key(sc, "", None if run is None else run.resolved(sc).config(sc, ""))
    return portable_key({**key, "organism": {"path": "", "organism": organism_settings_key(sc)}})


def run_names(sc: LLMConfig, conditions=LADDER) -> list[tuple[str, SooRun | None]]:
    """``[(folder name, run)]`` of the kept set: the start model's row (``base``), then every condition x seed."""
    return [("base", None)] + [(SooRun(c, s).resolved(sc).name, SooRun(c, s)) for c in conditions for s in sc.seeds]


def kept_manifest(name: str, kept_dir: Path | None = None) -> dict | None:
    path = (kept_dir or KEPT_DIR) / name / "manifest.json"
    return read_json(path) if path.exists() else None


def kept_result(name: str, kept_dir: Path | None = None) -> dict:
    """A kept run's result (what :func:`soo.llm.experiment.soo_run` returns)."""
    return read_json((kept_dir or KEPT_DIR) / name / "result.json")["value"]


def stale_runs(kept_dir: Path | None = None) -> list[str]:
    """The kept runs whose settings key differs from what the current code would compute for them (with the
    precision each was computed in): empty when the kept set is current."""
    kept_dir = kept_dir or KEPT_DIR
    out = []
    for man_path in sorted(kept_dir.glob("*/manifest.json")):
        man = read_json(man_path)
        sc = full_config(man["precision"], seeds=[man["seed"]] if man["seed"] is not None else None,
                         scale=man["scale"])
        run = None if man["condition"] == "base" else SooRun(man["condition"], man["seed"])
        if man["settings_key"] != expected_key(sc, run):
            out.append(man_path.parent.name)
    return out


def _work_file(run_dir: Path, name: str) -> Path:
    return run_dir / name / "result.json"


def _restore(run_dir: Path, name: str, kept_dir: Path, key: dict) -> bool:
    """Copy a kept run with this key into the work folder (so the cache reads it back); False if none."""
    man = kept_manifest(name, kept_dir)
    if man is None or man["settings_key"] != portable_key(key):
        return False
    dst = _work_file(run_dir, name)
    dst.parent.mkdir(parents=True, exist_ok=True)
    stored = read_json(kept_dir / name / "result.json")
    atomic_write_json(dst, {**stored, "_key": cache_key(key)})  # the work folder's own path in its key
    return True


ADAPTER_DTYPE = "float16"
"""The kept adapters' weights (half the bytes of fp32; the mechanism checks read activations, not digits)."""


def keep_adapter(src: Path, dst: Path) -> None:
    """A SOO run's LoRA adapter (``adapter/`` of :meth:`soo.llm.train.TrainResult.save`) copied into the kept set
    with its weights in :data:`ADAPTER_DTYPE`, for the forward-pass checks on kept runs."""
    import torch
    from safetensors.torch import load_file, save_file

    from ..files import atomic_directory

    with atomic_directory(dst) as tmp:
        for f in src.iterdir():
            if f.name == "adapter_model.safetensors":
                save_file({k: v.to(getattr(torch, ADAPTER_DTYPE)) for k, v in load_file(f).items()}, tmp / f.name)
            elif f.is_file():
                (tmp / f.name).write_bytes(f.read_bytes())


MECHANISM_PROMPTS = 50
"""Burglar prompts per order whose site output :func:`mechanism` compares (its spread over prompts)."""


def mechanism(start, sc: LLMConfig, adapter_dir: Path | None) -> dict:
    """The forward-pass checks of one run at the SOO site (:func:`soo.llm.latent.site_collapse`): the start model
    alone (``adapter_dir`` None) or with a run's adapter. Prompts: the first :data:`MECHANISM_PROMPTS` burglar
    scenarios per order; pairs: the SOO pairs and the name-control pairs of the protocol."""
    from . import scenarios as S
    from .evaluate import load_as_configured
    from .latent import site_collapse
    from .measure import burglar_both_orders

    model, tok = load_as_configured(sc, start)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir)
    model.eval()
    prompts = [s.prompt for s in burglar_both_orders(sc, n=min(MECHANISM_PROMPTS, sc.n_soo_eval))]
    with models.autocast(sc.bf16):
        return site_collapse(model, tok, sc.soo.site, prompts, S.soo_pairs(sc.soo.pairs)[:sc.n_pairs],
                             S.name_control_pairs(sc.soo.pairs)[:sc.n_pairs], batch_size=sc.batch_size,
                             pooling=sc.soo.pooling)


def keep(run_dir: Path, name: str, key: dict, kept_dir: Path, extra: dict) -> None:
    """Copy one finished run into the kept set: ``result.json``, its adapter (a SOO run), then ``manifest.json``
    (written last: its presence marks a kept run)."""
    dst = kept_dir / name
    dst.mkdir(parents=True, exist_ok=True)
    stored = read_json(_work_file(run_dir, name))
    atomic_write_json(dst / "result.json", {**stored, "_key": portable_key(key)})
    if (run_dir / name / "adapter").is_dir():
        keep_adapter(run_dir / name / "adapter", dst / "adapter")
    if "mechanism" in extra:
        atomic_write_json(dst / "mechanism.json", extra.pop("mechanism"))
    atomic_write_json(dst / "manifest.json", {"run": name, "settings_key": portable_key(key),
                                              "machine": machine_info(), **manifest(**extra)})


class Sitting:
    """One sitting of ``make llm-full`` in ``protocol.json``: written after every kept batch (so a sitting that is
    stopped keeps its time so far) and at the end. The file lists every sitting (``sittings``: command, wall time,
    runs computed, whether it finished, workers, device, machine, code version) and their total wall time
    (``wall_time_s_all_sittings``): the set's time when it was built over several."""

    def __init__(self, path: Path, argv, names, precision: str, workers: int, device: str, t0: float):
        self.path, self.t0, self.workers = Path(path), t0, workers
        old = read_json(self.path) if self.path.exists() else {}
        self.before = old.get("sittings", [])
        self.head = {"runs": [n for n, _ in names], "precision": precision}
        self.entry = {"command": "python -m soo.llm.full " + " ".join(argv if argv is not None else sys.argv[1:]),
                      "workers": workers, "device": device, "machine": machine_info(), **manifest()}

    def write(self, computed: int, finished: bool = False) -> float:
        """Write the file with this sitting's time so far; returns it (seconds)."""
        wall = time.perf_counter() - self.t0
        sittings = self.before + [{**self.entry, "wall_time_s": wall, "runs_computed": computed,
                                   "finished": finished}]
        atomic_write_json(self.path, {**self.head, "sittings": sittings,
                                      "wall_time_s_all_sittings": sum(x["wall_time_s"] for x in sittings),
                                      "runs_computed_all_sittings": sum(x["runs_computed"] for x in sittings)})
        return wall


FIRST = "soo_mse"
"""The rung computed first at each seed: the paper's SOO, which every other rung is judged against."""


def seed_major(todo, conditions) -> list:
    """``[(name, run)]`` in the order they are computed: seed by seed, so that a set built over several sittings
    holds whole ladders (every rung at the same seeds) wherever it stops; within a seed SOO (MSE) first (the page's
    verdicts compare each rung with it), then the other rungs in ladder order from the start model up."""
    conditions = list(conditions)
    return sorted(todo, key=lambda t: (t[1].seed, t[1].condition != FIRST, conditions.index(t[1].condition)))


def main(argv=None) -> int:
    """``make llm-full``: the paper's protocol on the embedded model, kept in ``book/data/llm_full``."""
    from . import experiment as X

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--precision", default="auto", choices=models.PRECISIONS)
    ap.add_argument("--device", default=None, choices=("cpu", "cuda"),
                    help="cuda: one process on the GPU (default: CPU workers)")
    ap.add_argument("--workers", type=int, default=None, help="CPU processes (default: the scale's, 2)")
    ap.add_argument("--only", nargs="*", default=None, help=f"conditions (default: the ladder, {' '.join(LADDER)})")
    ap.add_argument("--seeds", nargs="*", type=int, default=None, help="seeds (default: the scale's, 0-4)")
    ap.add_argument("--out-dir", default="results", help="work folder (default: %(default)s)")
    ap.add_argument("--kept-dir", default=str(KEPT_DIR))
    ap.add_argument("--scale", default="full", choices=("full", "smoke"), help=argparse.SUPPRESS)  # smoke: tests
    args = ap.parse_args(argv)
    conditions = LADDER if args.only is None else as_choices("only", args.only, LADDER)
    sc = full_config(args.precision, seeds=None if args.seeds is None else as_seeds(args.seeds), scale=args.scale)
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"workers={args.workers!r} must be a positive integer")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: no CUDA device is available here")
    kept_dir, out = Path(args.kept_dir), Path(args.out_dir)
    run_dir = sc.dir(out, NOTEBOOK)
    names = run_names(sc, conditions)
    missing = [n for n, r in names if (kept_manifest(n, kept_dir) or {}).get("settings_key") != expected_key(sc, r)]
    if not missing:
        print(f"all {len(names)} runs are kept and current in {kept_dir}", flush=True)
        return 0
    t0 = time.perf_counter()
    sitting = Sitting(kept_dir / "protocol.json", argv, names, sc.precision, 1 if args.device == "cuda" else
                      (args.workers or sc.workers), args.device or "cpu", t0)
    start = X.start_model(sc, out)  # the organism: trained, or read back from the work folder
    organism = organism_digest(start)
    sitting.write(0)

    def finish(name: str, run: SooRun | None, seconds: float) -> None:
        key = X._run_key(sc, start) if run is None else X._soo_spec(start, sc, run_dir, run)[3]
        adapter = None if run is None else run_dir / name / "adapter"
        extra = {"condition": "base" if run is None else run.condition, "seed": None if run is None else run.seed,
                 "precision": sc.precision, "scale": sc.scale, "wall_s": seconds, "organism_digest": organism,
                 "mechanism": mechanism(start, sc, adapter)}
        keep(run_dir, name, key, kept_dir, extra)
        print(f"kept {name} ({seconds:.0f} s)", flush=True)

    computed = 0
    # the start model's row first: every SOO run reads the start model's outputs it keeps
    if not _restore(run_dir, "base", kept_dir, X._run_key(sc, start)):
        t = time.perf_counter()
        X.base_run(start, sc, run_dir)
        finish("base", None, time.perf_counter() - t)
        computed += 1
        sitting.write(computed)
    todo = []
    for name, run in names[1:]:
        key = X._soo_spec(start, sc, run_dir, run)[3]
        if not _restore(run_dir, name, kept_dir, key):
            todo.append((name, run))
    todo = seed_major(todo, conditions)
    print(f"{len(todo)} of {len(names) - 1} runs to compute; the others are kept", flush=True)
    workers = sitting.workers
    for i in range(0, len(todo), workers):
        batch = todo[i:i + workers]
        t = time.perf_counter()
        X.soo_runs(start, sc, run_dir, [r for _, r in batch], workers=workers)
        for name, run in batch:  # each run's share of the batch's wall time
            finish(name, run, (time.perf_counter() - t) * min(len(batch), workers) / len(batch))
            computed += 1
        sitting.write(computed)
    total = sitting.write(computed, finished=True)
    print(json.dumps({"runs": len(names), "computed": computed, "wall_time_s": round(total)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
