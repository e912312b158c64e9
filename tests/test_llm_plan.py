"""soo.llm.plan: one copy of the weights in every notebook, the GPU sizes each plan fits, the sweeps it lists
(checked on the models built on the meta device: no weights)."""
import pytest

from soo.llm import models
from soo.llm import experiment as X
from soo.llm import plan as P
from soo.llm.scales import llm_config
from soo.llm.config import SooRun

PAPER = ("mistral-7b-instruct-v0.2", "gemma-2-27b-it", "calmerys-78b-orpo-v0.1")
NOTEBOOKS = ("llm_baseline", "llm_soo", "llm_generalization")


def _plan(sc, notebook: str) -> dict:
    if notebook != "llm_soo":
        return P.plan(sc, notebook, n_eval=sc.n_eval)
    runs = X.run_names(sc, X.soo_jobs(sc))
    return P.plan(sc, notebook, n_eval=sc.n_soo_eval, runs=runs, objectives=list(X.CONDITIONS))


@pytest.mark.parametrize("name", PAPER)
def test_every_notebook_holds_one_copy_of_the_weights(name):
    sc = llm_config("full", name)
    for nb in NOTEBOOKS:
        p = _plan(sc, nb)
        assert p["mem_weight_copies"] == 1, nb
        parts = p["mem_weights_gib"] + p["mem_lora_optimizer_gib"] + p["mem_activations_gib"]
        assert p["mem_total_gib"] == pytest.approx(parts, abs=2e-3), nb
        assert p["fits_gpu_gib"] == [g for g in P.GPU_GIB if p["mem_total_gib"] <= (1 - P.GPU_HEADROOM) * g], nb


def test_the_paper_models_fit_one_80_gib_gpu():
    """With one copy, Gemma-2-27B in bf16 and CalmeRys-78B in 4-bit fit one 80 GiB GPU; Mistral-7B in 4-bit one of
    24 GiB."""
    fits = {m: _plan(llm_config("full", m), "llm_soo")["fits_gpu_gib"] for m in PAPER}
    assert fits == {"mistral-7b-instruct-v0.2": [24, 40, 80, 141], "gemma-2-27b-it": [80, 141],
                    "calmerys-78b-orpo-v0.1": [80, 141]}


def test_fits_gpu_leaves_headroom():
    assert P.fits_gpu(21.6) == [24, 40, 80, 141] and P.fits_gpu(21.7) == [40, 80, 141]
    assert P.fits_gpu(200.0) == [] and P.fits_gpu(0.0) == list(P.GPU_GIB)


@pytest.mark.parametrize("name", [*PAPER, models.EMBEDDED])
def test_the_soo_plan_lists_its_sweeps(name):
    sc = llm_config("full", name)
    p = _plan(sc, "llm_soo")
    assert p["sweep_layers"] == list(sc.sweep_layers)  # the SOO layer is among them
    assert p["sweep_lrs"] == pytest.approx(sorted({sc.soo.lr, *sc.sweep_lrs}))  # the main lr joins the sweep
    assert list(p)[:len(P.PLAN_KEYS)] == list(P.PLAN_KEYS)
    assert {"sweep_layers", "sweep_lrs", "fits_gpu_gib", "mem_weight_copies"} <= set(P.PLAN_KEYS)
    assert _plan(sc, "llm_baseline")["sweep_layers"] == [] == _plan(sc, "llm_baseline")["sweep_lrs"]


def test_the_plan_lists_the_sweeps_that_run():
    """The notebook's sweep_layers / sweep_lrs parameters replace the scale's: the plan shows what runs."""
    sc = llm_config("full", "mistral-7b-instruct-v0.2")
    none = P.plan(sc, "llm_soo", n_eval=1, runs=X.run_names(sc, X.soo_jobs(sc, ["soo_mse"], [], [])))
    assert none["sweep_layers"] == [] and none["sweep_lrs"] == [] and none["n_runs"] == len(sc.seeds)
    some = P.plan(sc, "llm_soo", n_eval=1, runs=X.run_names(sc, X.soo_jobs(sc, ["soo_mse"], [5, 19], [3e-4])))
    assert some["sweep_layers"] == [5, 19] and some["sweep_lrs"] == [1e-4, 3e-4]


def test_run_names_read_back():
    for run in (SooRun("soo_mse", 0), SooRun("lm", 12, 6), SooRun("soo_mse_shuffled", 3, None, 3e-5),
                SooRun("soo_kl_logits", 0, 19, 0.001), SooRun("soo_mse", 0, -2)):
        assert SooRun.from_name(run.name) == run
    for other in ("organism", "base", "telepathy__seed0", "soo_mse__seed0__layerx", "soo_mse__seedA"):
        assert SooRun.from_name(other) is None
