"""Result files: every one is written through :func:`atomic_write_json` / :func:`atomic_write_text` (a folder through
:func:`atomic_directory`), so an interrupted run never leaves a half-written file that a later run would mistake for
a finished one; :func:`cached` is the one cache of results on disk, and :func:`written_with` the one test of "was this
result made with these settings" (the cache, a trained LLM adapter, an RL run's kept copy).
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


_ASIDE = ".old-"
"""Infix of the name a replaced folder has between :func:`atomic_directory`'s first and last step."""


def _aside_of(dst: Path) -> list[Path]:
    """Folders a commit of ``dst`` moved aside (``.{name}.old-*`` siblings), newest first."""
    import glob

    found = [Path(p) for p in glob.glob(str(dst.parent / f".{glob.escape(dst.name)}{_ASIDE}*"))]
    return sorted(found, key=lambda p: p.lstat().st_ctime, reverse=True)


def _recover_aside(dst: Path) -> None:
    """Finish the commit of a process that died inside :func:`atomic_directory`'s commit: with ``dst`` missing, the
    folder moved aside is the last whole version and goes back; with ``dst`` there, what was moved aside is removed."""
    import shutil

    aside = _aside_of(dst)
    if aside and not os.path.lexists(dst):
        os.rename(aside.pop(0), dst)
    for p in aside:
        shutil.rmtree(p, ignore_errors=True)


@contextmanager
def atomic_directory(dst: str | os.PathLike):
    """``with atomic_directory(dst) as tmp:`` — fill the folder ``tmp`` (a fresh sibling of ``dst``); when the block
    ends without an error, ``tmp`` replaces ``dst`` whole, so a reader never sees half a folder. On an error ``dst``
    is left as it was and ``tmp`` is removed.

    The commit is three steps, each of which leaves a whole folder behind if it fails: the old ``dst`` is renamed
    aside (to the hidden sibling ``.{name}.old-*``), ``tmp`` is renamed to ``dst`` (on a failure the old folder is
    renamed back), then the old folder is removed (a failure leaves only that hidden sibling). A process killed in
    the block leaves ``dst`` as it was (and its hidden ``tmp``); one killed between the two renames leaves ``dst``
    aside, whole, and the next ``atomic_directory(dst)`` puts it back before it starts (and removes any leftover
    aside)."""
    import secrets
    import shutil

    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    _recover_aside(dst)
    tmp = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}.tmp"))
    tmp.chmod(0o755)
    try:
        yield tmp
        old = None
        if os.path.lexists(dst):
            old = dst.parent / f".{dst.name}{_ASIDE}{secrets.token_hex(6)}"
            os.rename(dst, old)  # 1. the old folder aside
        try:
            os.rename(tmp, dst)  # 2. the new one in
        except BaseException:
            if old is not None:
                os.rename(old, dst)
            raise
        if old is not None:  # 3. the old one removed
            try:
                shutil.rmtree(old)
            except OSError:  # dst is whole; the next commit of dst removes what is left aside
                pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def atomic_file(path: str | os.PathLike):
    """``with atomic_file(path) as tmp:`` — write the file ``tmp`` (e.g. with ``torch.save``); when the block ends
    without an error it replaces ``path`` whole; on an error ``path`` is left as it was and ``tmp`` is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _jsonable(obj, default=_json_default):
    return json.loads(json.dumps(obj, default=default))


def cache_key(key: Any) -> Any:
    """``key`` as it is stored and compared by :func:`cached` (JSON types; anything else by its ``str``)."""
    return _jsonable(key, default=str)


def written_with(path: str | os.PathLike, key: Any, *, field: str = "_key") -> bool:
    """True if the JSON file ``path`` exists and its ``field`` holds ``key`` (compared as :func:`cache_key` stores
    it): the one test of "was this result made with these settings", for the disk cache (:func:`is_cached`), a
    trained LLM adapter's manifest and an RL run's training log alike."""
    path = Path(path)
    if not path.exists():
        return False
    stored = read_json(path)
    return isinstance(stored, dict) and field in stored and stored[field] == cache_key(key)


def is_cached(path: str | os.PathLike, key: Any) -> bool:
    """True if ``path`` holds a :func:`cached` result computed with ``key``."""
    return written_with(path, key)


def cached(path: str | os.PathLike, key: Any, compute: Callable[[], Any]) -> Any:
    """The one disk cache of the project (LLM and RL results alike).

    Read ``path`` if it holds a result computed with the same ``key`` (the settings that produced it: a
    JSON-able dict); otherwise call ``compute()``, write ``{"_key": key, "value": result}`` atomically and
    return the result as read back (JSON types). A result computed with other settings is recomputed, never
    silently reused; an interrupted computation leaves no file."""
    path = Path(path)
    if is_cached(path, key):
        return read_json(path)["value"]
    out = compute()
    atomic_write_json(path, {"_key": cache_key(key), "value": out})
    return _jsonable(out)


def read_value(path: str | os.PathLike) -> Any:
    """The value of a result file written by :func:`cached` (whatever its key)."""
    stored = read_json(path)
    return stored["value"] if isinstance(stored, dict) and "_key" in stored else stored
