"""The ground floor's parameter checks, as both wings see them."""
import pytest

from soo.llm.scales import llm_config
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
    from soo.files import atomic_write_json, cached, is_cached, written_with

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
    from soo.files import atomic_file

    f = tmp_path / "a.bin"
    with atomic_file(f) as tmp:
        tmp.write_bytes(b"new")
    assert f.read_bytes() == b"new"
    with pytest.raises(RuntimeError):
        with atomic_file(f) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert f.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["a.bin"]


# ----------------------------------------------------------------------------- atomic files and folders
def _write_tree(d, tag):
    (d / "a.txt").write_text(tag)
    (d / "sub").mkdir()
    (d / "sub" / "b.txt").write_text(tag)


def _tree(d) -> dict:
    from pathlib import Path

    return {str(p.relative_to(d)): p.read_text() for p in sorted(Path(d).rglob("*")) if p.is_file()}


def _whole(tag) -> dict:
    return {"a.txt": tag, "sub/b.txt": tag}


def test_atomic_directory_replaces_whole_or_leaves_the_old_folder(tmp_path):
    from soo.files import atomic_directory

    dst = tmp_path / "run"
    with atomic_directory(dst) as tmp:
        _write_tree(tmp, "v1")
    assert _tree(dst) == _whole("v1") and [p.name for p in tmp_path.iterdir()] == ["run"]
    with pytest.raises(RuntimeError):
        with atomic_directory(dst) as tmp:
            _write_tree(tmp, "v2")
            raise RuntimeError("interrupted")
    assert _tree(dst) == _whole("v1") and [p.name for p in tmp_path.iterdir()] == ["run"]
    with atomic_directory(dst) as tmp:
        (tmp / "c.txt").write_text("v3")
    assert _tree(dst) == {"c.txt": "v3"} and [p.name for p in tmp_path.iterdir()] == ["run"]


@pytest.mark.parametrize("step", [1, 2, 3])
def test_atomic_directory_leaves_a_whole_folder_when_a_commit_step_fails(tmp_path, monkeypatch, step):
    """Planted: the commit's step 1 (the old folder moved aside), 2 (the new one renamed in) or 3 (the old one
    removed, which fails after deleting part of it) raises. Steps 1 and 2: ``dst`` is the old folder, whole, and the
    error is raised; step 3: ``dst`` is the new folder, whole, and the next commit removes what was left aside.
    Checked once against the commit that removed the old folder before renaming the new one in: a failed rename
    left no folder at all (or, step 3, none was moved aside), and all three cases failed."""
    import os
    import shutil

    from soo.files import atomic_directory

    dst = tmp_path / "run"
    with atomic_directory(dst) as tmp:
        _write_tree(tmp, "v1")
    moves, real = [], {"rename": os.rename, "replace": os.replace, "rmtree": shutil.rmtree}

    def move(kind):
        def f(src, to):
            moves.append((src, to))
            if len(moves) == step < 3:
                raise OSError(f"planted failure of move {step}")
            return real[kind](src, to)
        return f

    def rmtree(path, *a, **kw):
        if ".old-" in str(path) and step == 3:
            os.remove(os.path.join(path, "a.txt"))  # half deleted
            raise OSError("planted failure of the removal")
        return real["rmtree"](path, *a, **kw)

    monkeypatch.setattr(os, "rename", move("rename"))
    monkeypatch.setattr(os, "replace", move("replace"))
    monkeypatch.setattr(shutil, "rmtree", rmtree)
    if step < 3:
        with pytest.raises(OSError, match="planted"):
            with atomic_directory(dst) as tmp:
                _write_tree(tmp, "v2")
        assert _tree(dst) == _whole("v1") and [p.name for p in tmp_path.iterdir()] == ["run"]
        return
    with atomic_directory(dst) as tmp:
        _write_tree(tmp, "v2")
    assert _tree(dst) == _whole("v2")
    left = [p.name for p in tmp_path.iterdir() if p.name != "run"]
    assert len(left) == 1 and left[0].startswith(".run.old-")
    monkeypatch.setattr(shutil, "rmtree", real["rmtree"])
    with atomic_directory(dst) as tmp:
        _write_tree(tmp, "v3")
    assert _tree(dst) == _whole("v3") and [p.name for p in tmp_path.iterdir()] == ["run"]


_KILLED_CHILD = r"""
import os, signal, sys
from pathlib import Path
from soo.files import atomic_directory, atomic_file

what, where, dst = sys.argv[1], sys.argv[2], Path(sys.argv[3])
if where == "commit":  # killed between moving the old folder aside and renaming the new one in
    rename = os.rename
    def dying_rename(src, to):
        rename(src, to)
        os.kill(os.getpid(), signal.SIGKILL)
    os.rename = dying_rename
if what == "file":
    with atomic_file(dst) as tmp:
        tmp.write_text("half of v2")
        os.kill(os.getpid(), signal.SIGKILL)
with atomic_directory(dst) as tmp:
    (tmp / "a.txt").write_text("v2")
    if where == "block":
        os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("what, where", [("file", "block"), ("folder", "block"), ("folder", "commit")])
def test_atomic_writers_survive_a_killed_process(tmp_path, what, where):
    """A child process is killed (SIGKILL: no cleanup runs) while it writes through :func:`atomic_file` or
    :func:`atomic_directory`, or, for a folder, between the commit's two renames. The file or folder is the old one,
    whole: at once, or (killed between the renames) when the next ``atomic_directory`` of it starts. Checked once
    each: an ``atomic_file`` that wrote in place failed the file case; the commit that removed the old folder before
    renaming the new one in (no rename aside to die after) failed the commit case."""
    import signal
    import subprocess
    import sys

    from soo.files import atomic_directory

    dst = tmp_path / "out"
    if what == "file":
        dst.write_text("v1")
    else:
        with atomic_directory(dst) as tmp:
            _write_tree(tmp, "v1")
    proc = subprocess.run([sys.executable, "-c", _KILLED_CHILD, what, where, str(dst)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    if what == "file":
        assert dst.read_text() == "v1"
        return
    if where == "block":
        assert _tree(dst) == _whole("v1")
        return
    assert not dst.exists()  # the moment between the two renames: the old folder is aside, whole
    (aside,) = [p for p in tmp_path.iterdir() if ".old-" in p.name]
    assert _tree(aside) == _whole("v1")
    with pytest.raises(RuntimeError):
        with atomic_directory(dst):
            raise RuntimeError("the next writer gives up")
    assert _tree(dst) == _whole("v1") and not [p for p in tmp_path.iterdir() if ".old-" in p.name]
