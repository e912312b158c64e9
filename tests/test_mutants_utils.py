"""The atomic writers of ``soo.utils`` beyond ``tests/test_utils.py``: what an interrupted or failed text write leaves
behind, the files' encoding and JSON layout, and which folder moved aside a commit puts back."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import soo
from soo.files import atomic_directory, atomic_write_json, atomic_write_text

PACKAGE_PARENT = str(Path(soo.__file__).resolve().parents[1])  # the soo these tests import, for child processes


def _child(code: str, *args, **env) -> subprocess.CompletedProcess:
    """Runs ``code`` in a child process. The tests that use it call the writer in this process too: ``make mutate``
    maps each test to the functions it calls in its own process."""
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": PACKAGE_PARENT, **env})


def test_atomic_write_text_creates_missing_folders(tmp_path):
    f = tmp_path / "a" / "b" / "c.txt"
    assert atomic_write_text(f, "x") == f and f.read_text() == "x"
    assert [p.name for p in f.parent.iterdir()] == ["c.txt"]


_KILLED_WRITE = r"""
import os, signal, sys
from soo.files import atomic_write_text

os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)  # killed once the new text is written, before the swap
atomic_write_text(sys.argv[1], "v2")
"""


def test_a_killed_text_write_leaves_the_old_file_and_a_hidden_temporary_beside_it(tmp_path):
    """A process killed (SIGKILL, no clean-up) after writing the new text but before the swap leaves the old file
    whole, and the new text in one hidden sibling ``.{name}.*.tmp`` in the same folder (where ``os.replace`` is a
    rename), which no reader of ``*.json`` or ``{name}`` picks up."""
    dst = atomic_write_text(tmp_path / "out.json", "v1")
    proc = _child(_KILLED_WRITE, dst)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert dst.read_text() == "v1"
    (left,) = [p for p in tmp_path.iterdir() if p != dst]
    assert left.name.startswith(".out.json.") and left.name.endswith(".tmp") and left.read_text() == "v2"
    assert list(tmp_path.glob("*.json")) == [dst]


def test_a_failed_text_write_raises_its_error_and_leaves_nothing_but_the_old_file(tmp_path, monkeypatch):
    dst = tmp_path / "out.txt"
    dst.write_text("v1")

    def failing_fsync(fd):
        raise OSError("planted: disk full")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="planted"):
        atomic_write_text(dst, "v2")
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"] and dst.read_text() == "v1"


_WRITE_TEXT = r"""
import locale, sys
from soo.files import atomic_write_text

assert locale.getpreferredencoding(False).upper() in ("ANSI_X3.4-1968", "ASCII", "US-ASCII"), locale.getpreferredencoding(False)
atomic_write_text(sys.argv[1], "caf\u00e9 \u00b1 5 \u00b0C")
"""


def test_text_files_are_utf8_whatever_the_locale(tmp_path):
    """Written from a process whose locale encoding is ASCII (the C locale without Python's UTF-8 coercion), a
    non-ASCII text is stored as UTF-8."""
    here, there = tmp_path / "here.txt", tmp_path / "there.txt"
    proc = _child(_WRITE_TEXT, there, LC_ALL="C", LANG="C", PYTHONCOERCECLOCALE="0", PYTHONUTF8="0")
    assert proc.returncode == 0, proc.stderr
    atomic_write_text(here, "caf\u00e9 \u00b1 5 \u00b0C")  # and from this process, whatever its locale
    assert there.read_bytes() == here.read_bytes() == "caf\u00e9 \u00b1 5 \u00b0C".encode("utf-8")


def test_atomic_write_json_writes_numpy_values_and_paths_as_indented_json(tmp_path):
    """Result files are JSON indented by two spaces with a final newline (diffable where kept in git), and numpy
    integers, floats and arrays and paths are written as plain JSON values."""
    dst = tmp_path / "r.json"
    obj = {"n": np.int64(3), "x": np.float32(0.5), "a": np.arange(3), "p": Path("runs") / "a", "l": [1, {"f": 2.5}]}
    atomic_write_json(dst, obj)
    plain = {"n": 3, "x": 0.5, "a": [0, 1, 2], "p": "runs/a", "l": [1, {"f": 2.5}]}
    assert dst.read_text() == json.dumps(plain, indent=2) + "\n"
    assert type(json.loads(dst.read_text())["n"]) is int


def test_atomic_write_json_refuses_what_json_cannot_hold_and_writes_nothing(tmp_path):
    dst = tmp_path / "r.json"
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        atomic_write_json(dst, {"x": object()})
    assert not list(tmp_path.iterdir())


def _tree(d):
    return {str(p.relative_to(d)): p.read_text() for p in sorted(Path(d).rglob("*")) if p.is_file()}


def test_the_newest_folder_moved_aside_is_the_one_put_back(tmp_path):
    """Two folders moved aside and none in place (a commit whose clean-up failed, then one killed between its two
    renames): the newest is the last whole version and goes back, whatever the names' order; the older one (half
    removed) is removed."""
    dst = tmp_path / "run"
    older, newer = tmp_path / ".run.old-zzzz", tmp_path / ".run.old-aaaa"
    older.mkdir()
    (older / "b.txt").write_text("v1, half removed")
    time.sleep(0.05)
    newer.mkdir()
    (newer / "a.txt").write_text("v2")
    (newer / "b.txt").write_text("v2")
    with pytest.raises(RuntimeError):
        with atomic_directory(dst):
            raise RuntimeError("the next writer gives up")
    assert _tree(dst) == {"a.txt": "v2", "b.txt": "v2"} and [p.name for p in tmp_path.iterdir()] == ["run"]


def test_a_leftover_that_cannot_be_removed_does_not_stop_a_commit(tmp_path, monkeypatch):
    """A folder left aside by an earlier commit that cannot be removed now stays for a later commit to remove; the
    commit goes on."""
    dst = tmp_path / "run"
    with atomic_directory(dst) as tmp:
        (tmp / "a.txt").write_text("v1")
    left = tmp_path / ".run.old-0123456789ab"
    left.mkdir()
    (left / "a.txt").write_text("v0")
    rmdir = os.rmdir

    def stuck_rmdir(path, *a, **kw):
        if ".old-" in str(path):
            raise OSError("planted: busy")
        return rmdir(path, *a, **kw)

    monkeypatch.setattr(os, "rmdir", stuck_rmdir)
    with atomic_directory(dst) as tmp:
        (tmp / "a.txt").write_text("v2")
    assert _tree(dst) == {"a.txt": "v2"}
    monkeypatch.setattr(os, "rmdir", rmdir)
    with atomic_directory(dst) as tmp:
        (tmp / "a.txt").write_text("v3")
    assert _tree(dst) == {"a.txt": "v3"} and [p.name for p in tmp_path.iterdir()] == ["run"]
