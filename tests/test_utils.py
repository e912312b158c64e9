"""The ground floor's parameter checks, as both wings see them."""
import pytest

from soo.llm.config import llm_config
from soo.rl.config import scale_config
from soo.utils import MAX_SEED, as_seeds


@pytest.mark.parametrize("bad", [[-1], "[-1]", [0, MAX_SEED + 1], [2**40]])
def test_seeds_out_of_range_fail_naming_seeds_in_both_wings(bad):
    for build in (as_seeds, lambda s: llm_config("smoke", seeds=s), lambda s: scale_config("smoke", s)):
        with pytest.raises(ValueError, match=r"seeds=.*out of range.*0 to 4294967295"):
            build(bad)


def test_seeds_at_the_ends_of_the_range_pass():
    assert as_seeds([0, MAX_SEED]) == (0, MAX_SEED)
    assert as_seeds("[155, 714]") == (155, 714)


def test_written_with_is_the_one_settings_test(tmp_path):
    from soo.utils import atomic_write_json, cached, is_cached, written_with

    f = tmp_path / "r.json"
    assert not written_with(f, {"a": 1})  # nothing there
    cached(f, {"a": 1, "p": tmp_path}, lambda: 3)
    assert written_with(f, {"a": 1, "p": tmp_path}) and is_cached(f, {"a": 1, "p": tmp_path})
    assert not written_with(f, {"a": 2, "p": tmp_path})
    atomic_write_json(f, {"settings_key": "abc", "config": {"lr": 0.1}})
    assert written_with(f, "abc", field="settings_key") and written_with(f, {"lr": 0.1}, field="config")
    assert not written_with(f, "abd", field="settings_key") and not written_with(f, "abc")  # no "_key" field


def test_run_parallel_gives_each_job_its_threads_and_restores_ours():
    import torch

    from soo.utils import run_parallel

    seen, ours = [], torch.get_num_threads()
    run_parallel(lambda job: seen.append(torch.get_num_threads()), [0, 1], 1, threads=1, log=False)
    assert seen == [1, 1] and torch.get_num_threads() == ours


def test_atomic_file_replaces_whole_or_leaves_the_old_file(tmp_path):
    from soo.utils import atomic_file

    f = tmp_path / "a.bin"
    with atomic_file(f) as tmp:
        tmp.write_bytes(b"new")
    assert f.read_bytes() == b"new"
    with pytest.raises(RuntimeError):
        with atomic_file(f) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert f.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["a.bin"]
