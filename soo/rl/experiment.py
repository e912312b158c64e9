"""The RL notebooks' entry: their one setup call (:func:`setup`), the protocol's two training steps
(:func:`train_baselines`, :func:`finetune`), and ``make rl-full`` (:func:`main`). The runs are ``soo.rl.runs``,
their evaluation ``soo.rl.evaluation``, what the pages show ``soo.rl.book``.

``python -m soo.rl.experiment --scale full [--setting NAME] --keep`` (``make rl-full``) trains the whole protocol
from nothing and writes the kept runs (:func:`soo.rl.runs.keep_runs`) plus ``protocol.json`` (machine, wall time).
``python -m soo.rl.experiment --record-fingerprint`` records what the training code computes
(:func:`soo.rl.runs.training_fingerprint`, ``soo.rl.training.TRAINING_FINGERPRINT``).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..files import atomic_write_json
from ..provenance import machine_info, manifest
from ..style import save_figure, style
from ..utils import check_choice, figure_dir
from .config import FINETUNE_KINDS, SETTINGS, ScaleConfig, scale_config
from .env import MODES
from .runs import (baseline_runs, finetune_runs, keep_runs, kept_dir_of, protocol_runs, record_training_fingerprint,
                   run_all)
from .training import TRAINING_FINGERPRINT

NOTEBOOKS = ("rl_baselines", "rl_soo", "rl_classification")


@dataclass(frozen=True)
class Notebook:
    """What every RL notebook starts from (built by :func:`setup`): the scale's configuration and its folders."""

    name: str
    scfg: ScaleConfig
    out_dir: Path
    fig_dir: Path

    @property
    def suffix(self) -> str:
        """The setting's part of a figure's name: none for the official setting, ``_{setting}`` otherwise (one set
        of figures per setting)."""
        return "" if self.scfg.setting == "official" else f"_{self.scfg.setting}"

    def savefig(self, fig, name: str, per_setting: bool = True) -> None:
        """Save a figure as ``<fig_dir>/<name><suffix>.png`` (``per_setting=False``: without the setting's suffix,
        for a figure of every setting, e.g. the screen's) with the book's one saver, :func:`soo.style.save_figure`."""
        save_figure(fig, self.fig_dir, name + (self.suffix if per_setting else ""))


def setup(notebook: str, scale: str, seeds=None, setting: str = "official", *, out_dir="results", fig_dir=None,
          **overrides) -> Notebook:
    """The one setup call of the RL notebooks: the validated configuration (:func:`soo.rl.config.scale_config` with
    ``seeds``, ``setting`` and ``overrides``, e.g. ``finetune_reward``), the figure folder (``fig_dir``; None:
    ``{out_dir}/figures``, :func:`soo.utils.figure_dir`), the figure style. A bad parameter fails here, before
    any training."""
    check_choice("notebook", notebook, NOTEBOOKS)
    nb = Notebook(notebook, scale_config(scale, seeds, setting=setting, **overrides), Path(out_dir),
                  figure_dir(out_dir, fig_dir))
    style()
    return nb


def train_baselines(scfg: ScaleConfig, out_dir, modes=MODES, workers: int | None = None, device=None) -> dict:
    """Deceptive and honest baselines for every seed of ``scfg``; returns ``{(mode, seed): metrics}``."""
    return run_all(baseline_runs(scfg, modes), out_dir, scfg.tag, workers or scfg.workers, device,
                   kept_dir=kept_dir_of(scfg.setting), cpu_stack=scfg.cpu_stack)


def finetune(scfg: ScaleConfig, out_dir, conditions=FINETUNE_KINDS, workers: int | None = None, device=None) -> dict:
    """SOO fine-tuning (and controls) of each seed's deceptive blue policy, in the environment whose
    reward is ``scfg.finetune_reward`` (the paper: deceptive); ``{(condition, seed): metrics}``."""
    return run_all(finetune_runs(scfg, conditions), out_dir, scfg.tag, workers or scfg.workers, device,
                   kept_dir=kept_dir_of(scfg.setting), cpu_stack=scfg.cpu_stack)


def main(argv=None) -> int:
    """``make rl-full``: the whole protocol of a scale from nothing, timed, optionally kept with the book."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--scale", default="full", choices=("smoke", "default", "full"))
    ap.add_argument("--setting", default="official", choices=tuple(SETTINGS),
                    help="training settings of every run (default: %(default)s; see soo.rl.config.SETTINGS)")
    ap.add_argument("--out-dir", default=None, help="where to train (default: a fresh temporary folder)")
    ap.add_argument("--device", default=None, help="cuda: each stage as one stack on the GPU (default: CPU workers)")
    ap.add_argument("--workers", type=int, default=None, help="CPU processes (default: the scale's, 2)")
    ap.add_argument("--cpu-stack", type=int, default=None, help="CPU: runs per stack (default: the scale's, 4)")
    ap.add_argument("--keep", action="store_true", help="write the runs into --kept-dir")
    ap.add_argument("--kept-dir", default=None, help="where --keep writes (default: book/data/rl_full/SETTING)")
    ap.add_argument("--record-fingerprint", action="store_true",
                    help="only record what the training code computes (soo.rl.training.TRAINING_FINGERPRINT) and exit")
    args = ap.parse_args(argv)
    if args.record_fingerprint:
        rec = record_training_fingerprint()
        print(f"recorded the fingerprint of TRAINING_VERSION {rec['training_version']} in {TRAINING_FINGERPRINT}")
        return 0
    scfg = scale_config(args.scale, setting=args.setting,
                        **({} if args.cpu_stack is None else {"cpu_stack": args.cpu_stack}))
    out = Path(args.out_dir or tempfile.mkdtemp(prefix="rl_full_"))
    t0 = time.perf_counter()
    stages = {}
    for name, runs in (("baselines", baseline_runs(scfg)), ("finetune", finetune_runs(scfg))):
        t = time.perf_counter()
        run_all(runs, out, scfg.tag, args.workers or scfg.workers, args.device, kept_dir=None, cpu_stack=scfg.cpu_stack)
        stages[name] = time.perf_counter() - t
        print(f"{name}: {len(runs)} runs in {stages[name] / 60:.1f} min", flush=True)
    total = time.perf_counter() - t0
    summary_ = {"scale": scfg.scale, "setting": scfg.setting, "settings": SETTINGS[scfg.setting],
                "runs": len(protocol_runs(scfg)), "wall_time_s": total, "stages_s": stages,
                "device": args.device or "cpu", "workers": args.workers or scfg.workers, "cpu_stack": scfg.cpu_stack,
                "machine": machine_info(),
                "command": "python -m soo.rl.experiment " + " ".join(argv if argv is not None else sys.argv[1:]),
                **manifest()}
    print(json.dumps({k: summary_[k] for k in ("runs", "wall_time_s", "device", "workers")}))
    if args.keep:
        kept = Path(args.kept_dir) if args.kept_dir else kept_dir_of(scfg.setting)
        keep_runs(scfg, out, kept)
        atomic_write_json(kept / "protocol.json", summary_)
        print(f"kept in {kept}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
