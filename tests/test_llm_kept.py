"""The LLM paper protocol kept with the book (``soo.llm.full``, ``make llm-full``): what a kept run holds, that a
second sitting computes nothing, and the staleness check (on a smoke set and on the kept set itself)."""
import json

import pytest

from soo.llm import full as F
from soo.llm import config as C
from soo.utils import read_json


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    root = tmp_path_factory.mktemp("llm_full")
    argv = ["--scale", "smoke", "--only", "soo_mse", "generic", "--seeds", "0", "--precision", "fp32",
            "--out-dir", str(root / "work"), "--kept-dir", str(root / "kept"), "--workers", "1"]
    assert F.main(argv) == 0
    return root, argv


def test_a_kept_run_holds_per_item_records_and_a_manifest(kept):
    root, _ = kept
    k = root / "kept"
    assert sorted(p.name for p in k.iterdir() if p.is_dir()) == ["base", "generic__seed0", "soo_mse__seed0"]
    res = F.kept_result("soo_mse__seed0", k)
    sc = F.full_config("fp32", seeds=[0], scale="smoke")
    assert len(res["records"]) == 2 * sc.n_soo_eval and len(res["generate_records"]) == 2 * sc.n_generate
    assert {"label", "logp_deceptive", "logp_honest", "order", "index"} <= set(res["records"][0])
    assert {"label", "response"} <= set(res["generate_records"][0])
    man = F.kept_manifest("soo_mse__seed0", k)
    assert {"settings_key", "git_commit", "precision", "machine", "wall_s", "condition", "seed"} <= set(man)
    assert man["precision"] == "fp32" and man["condition"] == "soo_mse" and man["seed"] == 0
    assert "<start model>" == man["settings_key"]["config"]["model"]  # no machine folder in a kept key
    assert str(root) not in json.dumps(man["settings_key"])
    prot = read_json(k / "protocol.json")
    assert prot["runs_computed"] == 3 and prot["wall_time_s"] > 0 and prot["machine"]["cpu_count"] >= 1


def test_a_second_sitting_computes_nothing_even_without_its_work_folder(kept, capsys, monkeypatch):
    """Every run kept and current: the command reads nothing and trains nothing (not even the organism)."""
    import shutil

    from soo.llm import experiment as X

    root, argv = kept
    shutil.rmtree(root / "work")
    monkeypatch.setattr(X, "start_model", lambda *a, **k: pytest.fail("the organism was built again"))
    assert F.main(argv) == 0
    assert "all 3 runs are kept and current" in capsys.readouterr().out


def test_staleness_is_found_for_a_changed_setting(kept, monkeypatch):
    """Current: no stale run. A changed evaluation size (planted in the smoke preset) makes every kept run stale;
    a changed SOO lr only the SOO runs and not the start model's row."""
    import dataclasses

    root, _ = kept
    assert F.stale_runs(root / "kept") == []
    smoke = C.PRESETS["smoke"]
    monkeypatch.setitem(C.PRESETS, "smoke", dataclasses.replace(smoke, n_soo_eval=smoke.n_soo_eval + 1))
    assert F.stale_runs(root / "kept") == ["base", "generic__seed0", "soo_mse__seed0"]
    monkeypatch.setitem(C.PRESETS, "smoke", smoke)
    tiny = C.MODEL_PRESETS["tiny-random"]
    monkeypatch.setitem(C.MODEL_PRESETS, "tiny-random", dataclasses.replace(tiny, soo=dataclasses.replace(tiny.soo, lr=0.5)))
    assert F.stale_runs(root / "kept") == ["generic__seed0", "soo_mse__seed0"]


def test_bad_arguments_are_refused_before_any_compute(tmp_path):
    with pytest.raises(ValueError, match="only"):
        F.main(["--scale", "smoke", "--only", "soo", "--out-dir", str(tmp_path), "--kept-dir", str(tmp_path)])
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(not F.KEPT_DIR.exists(), reason="no LLM protocol kept yet (make llm-full)")
def test_the_kept_set_matches_the_code():
    """Every run kept in book/data/llm_full holds the settings key the current code computes for it."""
    assert F.stale_runs() == []
