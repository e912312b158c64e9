"""The LLM experiment as resumable steps: the notebooks stay thin over this module and :mod:`soo.llm.book`.

A step (the baseline scores, :mod:`soo.llm.measure`; the organism, :mod:`soo.llm.organism`; here a SOO run, a
generalization run, MT-Bench judging) computes once and writes its result atomically under
``<out_dir>/<scale>/<notebook>/`` through :func:`soo.files.cached`, keyed by the settings that produced it; the next
run reads it back (a finished SOO run is never trained twice). A SOO run is a :class:`soo.llm.config.SooRun`
(condition, seed and, for the sweeps, layer or lr) with a ``.name``; runs train in :func:`soo.utils.run_parallel`'s
processes on CPU. :func:`setup` is the one setup call of every LLM notebook; the pages' tables, what each page glues
and its paper-vs-ours tables are in :mod:`soo.llm.book`. This module holds no scoring rule
(:mod:`soo.llm.scoring`), no forward pass (:mod:`soo.llm.evaluate`, :mod:`soo.llm.capability`,
:mod:`soo.llm.latent`), no training loop (:mod:`soo.llm.train`) and no setting (:mod:`soo.llm.config`,
:mod:`soo.llm.scales`).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from . import models
from . import scenarios as S
from ..style import save_figure, style
from ..files import cached, is_cached
from ..utils import as_choices, as_ints, as_positive_floats, check_choice, figure_dir, run_parallel
from . import evaluate as E
from . import scoring
from .architecture import n_layers_of
from .capability import StartOutputs, capability
from .config import CONDITIONS, ORGANISM, LLMConfig, SooRun
from .evaluate import eval_ready, load_as_configured
from .latent import latent_soo
from .measure import (burglar_both_orders, eval_key, perspectives_both_orders, score_as_configured,
                      score_both_as_configured, whole_sample)
from .organism import make_organism, organism_key
from .plan import dry_run as _dry_run
from .scales import llm_config
from .train import is_finished, load_trained, train

CONTROLS = tuple(c for c in CONDITIONS if c != "soo_mse")
"""The conditions SOO (MSE) is compared with."""


# ----------------------------------------------------------------------------- the notebooks' setup
@dataclass(frozen=True)
class Notebook:
    """What every LLM notebook starts from (built by :func:`setup`): its configuration and folders."""

    name: str
    cfg: LLMConfig
    out_dir: Path
    fig_dir: Path

    @property
    def run_dir(self) -> Path:
        """This notebook's results: ``<out_dir>/<scale>/<notebook>``."""
        return self.cfg.dir(self.out_dir, self.name)

    def dir_of(self, notebook: str) -> Path:
        """Another notebook's results folder at the same scale (what this one reads back)."""
        return self.cfg.dir(self.out_dir, notebook)

    def dry_run(self, dry_run: bool, *, n_eval: int, runs=(), objectives=("soo_mse",)) -> None:
        """With ``dry_run``: write ``plan.json`` into the run folder, show it, and skip the rest of the notebook
        (:func:`soo.llm.plan.dry_run`); in the SOO notebooks the organism counts as a run when SOO starts from it."""
        check_choice("dry_run", dry_run, (False, True))
        if dry_run:
            trains_organism = self.cfg.start_from == ORGANISM and self.name in ("llm_soo", "llm_generalization")
            pre = ["organism"] if trains_organism else []
            _dry_run(self.cfg, self.name, self.run_dir, n_eval=n_eval, runs=pre + list(runs), objectives=objectives)

    def savefig(self, fig, name: str) -> None:
        """Save a figure as ``<fig_dir>/<name>.png`` (150 dpi) with the book's one saver,
        :func:`soo.style.save_figure`."""
        save_figure(fig, self.fig_dir, name, dpi=150, bbox_inches=None)

    def start(self, progress=True):
        """What SOO fine-tunes (see :func:`start_model`)."""
        return start_model(self.cfg, self.out_dir, progress=progress)

    @property
    def start_label(self) -> str:
        """How the book names the model SOO starts from."""
        return {None: f"{self.cfg.model} (as released)",
                ORGANISM: f"the organism of {self.cfg.model}"}.get(self.cfg.start_from,
                                                                   str(Path(str(self.cfg.start_from)).expanduser()))


def setup(notebook: str, scale: str, model=None, *, out_dir="results", fig_dir=None, **overrides) -> Notebook:
    """The one setup call of the LLM notebooks: the validated configuration (:func:`soo.llm.scales.llm_config`
    with ``overrides``: ``start_from``, ``layer``, ``lr``, ``seeds``), the figure folder (``fig_dir``; None:
    ``{out_dir}/figures``, :func:`soo.utils.figure_dir`), the figure style. A bad parameter fails here, before
    anything is loaded."""
    check_choice("notebook", notebook, ("llm_baseline", "llm_organism", "llm_soo", "llm_generalization"))
    nb = Notebook(notebook, llm_config(scale, model, **overrides), Path(out_dir), figure_dir(out_dir, fig_dir))
    style()
    return nb


# ----------------------------------------------------------------------------- SOO runs
def capability_set(base_model, tok, sc: LLMConfig, run_dir) -> dict:
    """MT-Bench first-turn questions and the base model's own greedy answers (cached)."""
    def compute():
        qs = [q["turns"][0] for q in S.mt_bench_questions()[:sc.n_capability]]
        with models.autocast(sc.bf16):
            ans = E.generate(base_model, tok, qs, max_new_tokens=sc.capability_tokens, batch_size=8)
        return {"questions": qs, "answers": ans}
    return cached(Path(run_dir) / "capability_set.json", {"n": sc.n_capability, "tokens": sc.capability_tokens,
                                                           "bf16": sc.bf16}, compute)


def evaluate_model(model, tok, sc: LLMConfig, cap: dict, *, base=None, on_start=None) -> dict:
    """Deception (log-prob, both orders; generation on a subset), Perspectives, latent SOO, and
    capability against the model before this fine-tune. ``model`` goes through
    :func:`soo.llm.evaluate.eval_ready` first. ``base``: ``None`` (``model`` is a SOO run's PEFT model: the start
    model is read from the same weights with the adapter disabled, :meth:`StartOutputs.record`), the start model's
    outputs saved by its own row (:meth:`StartOutputs.load`), or a model (a second copy, or ``model`` itself for the
    start model's own row, whose outputs then go to ``on_start``, :meth:`StartOutputs.of_start`)."""
    t0 = time.perf_counter()
    if cap and base is None:
        base = StartOutputs.record(model, tok, sc, cap)
    elif isinstance(base, StartOutputs):
        StartOutputs.cast_start(model, sc)  # as record does: the run is merged and cast exactly alike
    start_row = base is model
    model = eval_ready(model, sc)
    if isinstance(base, StartOutputs):
        base.model = model  # the same weights as evaluated (merged, or the 4-bit PEFT model as it is)
    if sc.n_soo_eval == sc.n_generate:  # the paper's protocol: both methods on the same scenarios, in one pass
        both = score_both_as_configured(model, tok, sc, burglar_both_orders(sc, n=sc.n_generate),
                                        whole=whole_sample(sc))
        recs, gen = both["logprob"], both["generate"]
    else:
        recs = score_as_configured(model, tok, sc, burglar_both_orders(sc, n=sc.n_soo_eval), "logprob")
        gen = score_as_configured(model, tok, sc, burglar_both_orders(sc, n=sc.n_generate), "generate",
                                  whole=whole_sample(sc))
    persp = score_as_configured(model, tok, sc, perspectives_both_orders(sc), "logprob")
    with models.autocast(sc.bf16):
        latent = latent_soo(model, tok, S.probe_pairs()[:sc.n_probe])
        capab = None
        if cap and start_row:
            start, capab = StartOutputs.of_start(model, tok, sc, cap)
            if on_start is not None:
                on_start(start)
        elif cap:
            capab = capability(model, tok, cap["questions"], cap["answers"], base=base)
    return {"deception": scoring.summarize_orders(recs), "records": recs, "generate": scoring.summarize_orders(gen),
            "generate_records": gen, "perspectives_accuracy": scoring.perspectives_accuracy(persp),
            "perspectives_records": persp, "latent_soo": latent,
            "capability": capab, "eval_s": time.perf_counter() - t0}


def _model_id(model_path) -> object:
    """What identifies the model a run starts from: the organism's own settings when it is one
    (so retraining the organism invalidates the runs built on it), else its name/path."""
    key = organism_key(model_path)
    return {"path": str(model_path), "organism": key} if key is not None else str(model_path)


def _run_key(sc: LLMConfig, model_path, cfg=None) -> dict:
    whole = {} if sc.n_whole is None else {"n_whole": sc.n_whole}
    return eval_key(sc, organism=_model_id(model_path), n_soo_eval=sc.n_soo_eval, n_perspectives=sc.n_perspectives,
                    n_generate=sc.n_generate, gen_tokens=sc.gen_tokens, n_probe=sc.n_probe, n_capability=sc.n_capability,
                    n_pairs=sc.n_pairs, config=dataclasses.asdict(cfg) if cfg else None, **whole)


def start_outputs_file(run_dir) -> Path:
    """Where the start model's row keeps its outputs on the capability texts for the SOO runs
    (:class:`soo.llm.capability.StartOutputs`)."""
    return Path(run_dir) / "base" / "start_outputs.pt"


def start_outputs_key(sc: LLMConfig, model_path, cap: dict) -> dict:
    """The settings the start model's kept outputs depend on: the start model's row's, and the capability texts."""
    import hashlib
    import json

    texts = json.dumps([cap["questions"], cap["answers"]]).encode()
    return {**_run_key(sc, model_path), "capability_texts": hashlib.sha256(texts).hexdigest()}


def base_run(model_path, sc: LLMConfig, run_dir) -> dict:
    """The model SOO starts from, before SOO: the reference row of every comparison (cached). Its capability pass
    also keeps the start model's outputs (:func:`start_outputs_file`), which every SOO run of this start model then
    reads instead of running the start model again."""
    def compute():
        model, tok = load_as_configured(sc, model_path, quantization=sc.soo.quantization)
        model = eval_ready(model, sc)
        cap = capability_set(model, tok, sc, run_dir)
        keep = lambda start: start.save(start_outputs_file(run_dir), start_outputs_key(sc, model_path, cap))  # noqa: E731
        res = {"condition": "base", "seed": None, **evaluate_model(model, tok, sc, cap, base=model, on_start=keep)}
        res["capability"] = {"kl": 0.0, **{k: v for k, v in res["capability"].items() if k != "kl"}}
        return res
    return cached(Path(run_dir) / "base" / "result.json", _run_key(sc, model_path), compute)


def _soo_spec(model_path, sc: LLMConfig, run_dir, run: SooRun):
    """(run, config, run folder, cache key) of one SOO run."""
    run = run.resolved(sc)
    cfg = run.config(sc, model_path)
    return run, cfg, Path(run_dir) / run.name, _run_key(sc, model_path, cfg)


def start_model(sc: LLMConfig, out_dir, *, progress=True):
    """What SOO fine-tunes (``sc.start_from``): the base model itself (``None``, the paper), the deceptive organism
    trained from it (``"organism"``, trained or read back under ``<out_dir>/<scale>/llm_organism``), or a folder."""
    if sc.start_from is None:
        return sc.model
    if sc.start_from == ORGANISM:
        return make_organism(sc, sc.dir(out_dir, "llm_organism"), progress=progress)
    return Path(str(sc.start_from)).expanduser()


def soo_run(model_path, sc: LLMConfig, run_dir, run: SooRun, *, progress=True) -> dict:
    """Fine-tune one :class:`SooRun` on the self/other pairs and evaluate it. Resumable:
    a finished run's ``result.json`` is read back; a trained adapter is reused."""
    run, cfg, rdir, key = _soo_spec(model_path, sc, run_dir, run)

    def compute():
        model, tok = load_as_configured(sc, model_path, quantization=cfg.quantization)
        models.normalize_layer(model, cfg.layer)
        cap = capability_set(model, tok, sc, run_dir)
        if is_finished(rdir, cfg):
            model, tok, man = load_trained(rdir, model=model, tok=tok)  # trained before, evaluation interrupted
        else:
            r = train(cfg, pairs=S.training_pairs(cfg.objective, cfg.pairs)[:sc.n_pairs], model=model, tok=tok,
                      progress=progress)
            r.save(rdir)
            model, man = r.model, r.manifest()
        # the start model's outputs as its own row kept them, else read from the same weights, adapter disabled
        start = StartOutputs.load(start_outputs_file(run_dir), start_outputs_key(sc, model_path, cap), model)
        return {"condition": run.condition, "seed": int(run.seed), "layer": cfg.layer, "lr": cfg.lr,
                "config": dataclasses.asdict(cfg), "train_losses": man["epoch_losses"], "train_s": man["wall_s"],
                **evaluate_model(model, tok, sc, cap, base=start)}
    return cached(rdir / "result.json", key, compute)


def _soo_job(job) -> None:
    """One :func:`soo_run` in a worker process (``job``: model path, configuration, run folder, run)."""
    model_path, sc, run_dir, run = job
    soo_run(model_path, sc, run_dir, run, progress=False)


def soo_runs(model_path, sc: LLMConfig, run_dir, runs, *, workers: int | None = None) -> list[dict]:
    """:func:`soo_run` for each :class:`SooRun` of ``runs``; results in their order. Finished runs are read
    back; the others run in ``workers`` processes (:func:`soo.utils.run_parallel`; default ``sc.workers``; one
    on CUDA). Every run is checked (condition, layer) before anything is trained."""
    import torch

    specs = [_soo_spec(model_path, sc, run_dir, r) for r in runs]  # validates every run first
    n_layers = n_layers_of(str(model_path))
    for _, cfg, _, _ in specs:
        models.check_layer(cfg.layer, n_layers, model=model_path)
    todo = list({rdir: run for run, _, rdir, key in specs if not is_cached(rdir / "result.json", key)}.values())
    workers = 1 if torch.cuda.is_available() else (workers or sc.workers)
    if todo:
        print(f"{len(todo)} run(s) to train and evaluate; {len({s[2] for s in specs}) - len(todo)} read back", flush=True)
        run_parallel(_soo_job, [(str(model_path), sc, str(run_dir), r) for r in todo], workers,
                     label=lambda job: job[3].name)
    return [soo_run(model_path, sc, run_dir, r) for r in runs]


def soo_jobs(sc: LLMConfig, conditions=None, sweep_layers=None, sweep_lrs=None) -> dict[str, list[SooRun]]:
    """The llm_soo notebook's runs: ``"main"`` every (condition, seed) at the configuration's layer and lr;
    ``"layers"`` SOO (MSE) with the first seed at each sweep layer; ``"lrs"`` SOO (MSE) with the first seed at the
    configuration's lr and each sweep lr (empty when ``sweep_lrs`` is). ``None``: the scale's conditions
    (``sc.conditions``) / sweeps. Checks every value before any compute."""
    conditions = sc.conditions if conditions is None else as_choices("conditions", conditions, tuple(CONDITIONS))
    layers = as_ints("sweep_layers", sc.sweep_layers if sweep_layers is None else sweep_layers)
    sweep_lrs = as_positive_floats("sweep_lrs", sc.sweep_lrs if sweep_lrs is None else sweep_lrs)
    n_layers = n_layers_of(sc.model)
    for L in layers:
        models.check_layer(L, n_layers, name="sweep_layers", model=sc.model, source="a sweep layer")
    seed0 = sc.seeds[0]
    lrs = sorted({sc.soo.lr, *sweep_lrs}) if sweep_lrs else []
    return {"main": [SooRun(c, s) for c in conditions for s in sc.seeds],
            "layers": [SooRun("soo_mse", seed0, L) for L in layers],
            "lrs": [SooRun("soo_mse", seed0, None, lr) for lr in lrs]}


def run_names(sc: LLMConfig, jobs: dict[str, list[SooRun]]) -> list[str]:
    """The distinct run folders of :func:`soo_jobs`' runs (a sweep point equal to the main run is the main run)."""
    return list(dict.fromkeys(r.resolved(sc).name for group in jobs.values() for r in group))


def run_jobs(model_path, sc: LLMConfig, run_dir, jobs: dict[str, list[SooRun]], **kwargs) -> dict[str, list[dict]]:
    """All runs of :func:`soo_jobs` in one :func:`soo_runs` call (one pool), results grouped as given."""
    flat = [r for group in jobs.values() for r in group]
    out, res = soo_runs(model_path, sc, run_dir, flat, **kwargs), {}
    for name, group in jobs.items():
        res[name], out = out[:len(group)], out[len(group):]
    return res


# ----------------------------------------------------------------------------- generalization
def generalization_scenarios(sc: LLMConfig, orders=S.ORDERS):
    return [s for v in S.VARIANTS for o in orders for s in S.variant(v, sc.n_generalization, order=o, suffix=sc.suffix)]


GENERALIZATION_CONDITIONS = ("soo_mse", "lm")
"""The fine-tunes the generalization notebook evaluates besides the start model."""


def generalization_run(model_path, sc: LLMConfig, run_dir, soo_dir, condition: str, seed) -> dict:
    """Deceptive rate on the 9 generalization scenarios for the start model ('base') or a trained
    (condition, seed) adapter from the llm_soo notebook (trained here if missing)."""
    name = "base" if condition == "base" else SooRun(condition, seed).name

    def compute():
        model, tok = load_as_configured(sc, model_path, quantization=sc.soo.quantization)
        if condition != "base":
            soo_run(model_path, sc, soo_dir, SooRun(condition, seed))  # read back if finished
            model, tok, _ = load_trained(Path(soo_dir) / name, model=model, tok=tok)
        model = eval_ready(model, sc)
        recs = score_as_configured(model, tok, sc, generalization_scenarios(sc), "logprob")
        gen = score_as_configured(model, tok, sc, generalization_scenarios(sc, orders=("paper",)),
                                  "generate")  # the paper's way
        return {"condition": condition, "seed": seed, "records": recs, "generate_records": gen,
                "by_variant": {v: scoring.summarize_orders([r for r in recs if r["kind"] == v]) for v in S.VARIANTS},
                "generate_by_variant": {v: scoring.summarize([r["label"] for r in gen if r["kind"] == v])
                                        for v in S.VARIANTS}}
    key = eval_key(sc, organism=_model_id(model_path), n_generalization=sc.n_generalization,
                   soo=dataclasses.asdict(sc.soo), n_pairs=sc.n_pairs, gen_tokens=sc.gen_tokens)
    return cached(Path(run_dir) / f"{name}.json", key, compute)


def generalization_runs(nb: Notebook, start) -> list[dict]:
    """The start model and every (condition, seed) of :data:`GENERALIZATION_CONDITIONS` on the 9 scenarios."""
    sc, soo_dir = nb.cfg, nb.dir_of("llm_soo")
    return ([generalization_run(start, sc, nb.run_dir, soo_dir, "base", None)]
            + [generalization_run(start, sc, nb.run_dir, soo_dir, c, s) for c in GENERALIZATION_CONDITIONS
               for s in sc.generalization_seeds])


# ----------------------------------------------------------------------------- MT-Bench judging (optional)
MT_BENCH_TOKENS = 512  # max new tokens per MT-Bench answer (FastChat's default is 1024)


def mt_bench_judged(model_path, sc: LLMConfig, run_dir, condition: str, seed, *, judge_url: str,
                    judge_model: str = "gpt-4", api_key_env: str = "OPENAI_API_KEY",
                    max_new_tokens: int = MT_BENCH_TOKENS) -> dict:
    """Greedy first-turn answers to the first ``sc.n_capability`` MT-Bench questions from the
    start model (``condition="base"``) or a trained (condition, seed) adapter, graded 1-10 by a
    user-supplied OpenAI-compatible judge (:func:`soo.llm.judge.judge_mt_bench`). Cached per
    (model, judge): ``{"answers", "judged", "scores"}``. The judge's URL and key are checked first
    (:func:`soo.llm.judge.check_judge_url`), before any model is loaded or any answer generated."""
    from . import judge

    judge.check_judge_url(judge_url, api_key_env)
    if not isinstance(judge_model, str) or not judge_model.strip():
        raise ValueError(f"judge_model={judge_model!r}: name the judge model, e.g. 'gpt-4'")
    name = "base" if condition == "base" else SooRun(condition, seed).name  # checks the condition

    def compute():
        model, tok = load_as_configured(sc, model_path, quantization=sc.soo.quantization)
        if condition != "base":
            model, tok, _ = load_trained(Path(run_dir) / name, model=model, tok=tok)
        model = eval_ready(model, sc)
        qs = list(S.mt_bench_questions()[:sc.n_capability])
        with models.autocast(sc.bf16):
            ans = E.generate(model, tok, [q["turns"][0] for q in qs], max_new_tokens=max_new_tokens, batch_size=8)
        judged = judge.judge_mt_bench({q["question_id"]: a for q, a in zip(qs, ans)}, base_url=judge_url,
                                      model=judge_model, api_key_env=api_key_env)
        return {"answers": ans, "judged": judged, "scores": judge.mt_bench_category_scores(judged)}
    key = eval_key(sc, organism=_model_id(model_path), n_capability=sc.n_capability, tokens=max_new_tokens,
                   judge_url=judge_url, judge_model=judge_model, condition=condition, seed=seed)
    return cached(Path(run_dir) / "mt_bench" / f"{name}__{judge_model.replace('/', '_')}.json", key, compute)
