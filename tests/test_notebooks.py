"""The notebooks at smoke scale, nbval on the executed notebooks, the resume path, and the book build.

A copy of the book's sources is made in a temporary folder, so the working tree's results,
figures and executed notebooks are never touched.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from soo import notebooks
from soo.utils import project_root

pytestmark = pytest.mark.slow
ROOT = project_root()


def _copy_sources(dst: Path) -> None:
    for f in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / f, dst / f)
    (dst / "notebooks").mkdir()
    for f in (ROOT / "notebooks").glob("*.md"):
        shutil.copy(f, dst / "notebooks" / f.name)
    shutil.copytree(ROOT / "book", dst / "book", ignore=shutil.ignore_patterns("executed", "figures", "_build"))


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke_book")
    _copy_sources(root)
    times = notebooks.run_all(scale="smoke", root=root)
    return root, times


def _result_files(root: Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in (root / "results").rglob("*.json")}


def test_every_notebook_ran(smoke_book):
    root, times = smoke_book
    avail = notebooks.available(ROOT)
    assert list(times)[:len(avail)] == avail
    assert list(times)[len(avail):] == [f"{n}_{s}" for s in notebooks.BOOK_RL_SETTINGS[1:] for n in notebooks.RL_NOTEBOOKS]
    for name in times:
        assert (root / "book" / "executed" / f"{name}.ipynb").exists()
    assert any((root / "book" / "figures").glob("*.png"))


GLUE_REF = re.compile(r"executed/(\w+)\.ipynb::([\w]+)")


def glued_names(path: Path) -> set[str]:
    """The names a executed notebook glued (myst-nb's scrapbook records)."""
    nb = json.loads(path.read_text())
    return {o["metadata"]["scrapbook"]["name"] for c in nb["cells"] for o in c.get("outputs", [])
            if "scrapbook" in o.get("metadata", {})}


def test_every_glue_key_of_the_book_is_glued(smoke_book):
    """Every ``{glue:...}`executed/NB.ipynb::key``` of a book page names a value NB glues (from its one
    ``glue_<notebook>`` function), so a renamed key cannot leave a page quoting nothing."""
    root, times = smoke_book
    glued = {name: glued_names(root / "book" / "executed" / f"{name}.ipynb") for name in times}
    refs = [(page.name, nb, key) for page in sorted((ROOT / "book").glob("*.md"))
            for nb, key in GLUE_REF.findall(page.read_text())]
    assert refs, "no glue reference found in book/*.md"
    missing = [r for r in refs if r[2] not in glued.get(r[1], set())]
    assert not missing, f"book pages quote keys their notebook does not glue: {missing[:10]}"


def test_every_glue_text_reference_has_a_format():
    """myst-nb reads the last ``:`` of ``{glue:text}`path::key:fmt``` as the format's start: a reference without a
    format (``::key``) is read as key ``path:`` and the page quotes nothing (the -W build fails, late)."""
    refs = [(page.name, ref) for page in sorted((ROOT / "book").glob("*.md"))
            for ref in re.findall(r"\{glue:text\}`([^`]*)`", page.read_text())]
    assert refs, "no {glue:text} reference found in book/*.md"
    bad = [r for r in refs if not re.fullmatch(r"[\w/.]+::\w+:[^:`]+", r[1])]
    assert not bad, f"{{glue:text}} references without a format (add :s for text, :.1f for numbers): {bad[:10]}"


def test_nbval_and_resume(smoke_book):
    """nbval re-executes every executed notebook; finished runs must be read back, not recomputed."""
    root, times = smoke_book
    before = _result_files(root)
    assert before, "the notebooks wrote no results"
    copies = []
    for name in times:  # nbval runs a notebook in its own folder: put copies at the root
        dst = root / f"nbval_{name}.ipynb"
        shutil.copy(root / "book" / "executed" / f"{name}.ipynb", dst)
        copies.append(str(dst.name))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", *copies],
                          cwd=root, capture_output=True, text=True, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    after = _result_files(root)
    rewritten = [str(p.relative_to(root)) for p, t in before.items() if after.get(p) != t]
    assert not rewritten, f"finished runs were recomputed instead of read back: {rewritten[:5]}"


def test_book_builds_without_warnings(smoke_book):
    root, _ = smoke_book
    jb = Path(sys.executable).parent / "jupyter-book"
    proc = subprocess.run([str(jb), "build", str(root), "--path-output", str(root / "book"), "-W", "--keep-going"],
                          cwd=root, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert (root / "book" / "_build" / "html" / "index.html").exists()


def test_bad_scale_and_notebook_fail_before_running(tmp_path):
    with pytest.raises(ValueError, match="scale='huge'.*'smoke'"):
        notebooks.run_all(scale="huge", root=ROOT)
    with pytest.raises(ValueError, match="notebook='nope'"):
        notebooks.run_all(scale="smoke", root=ROOT, names=["nope"])


def paper_numbers() -> list[float]:
    """Every numeric value in ``soo/data/paper_results.json`` (the paper's and the official repository's; numbers
    inside its prose, such as model names, do not count)."""
    from soo.llm.scenarios import paper_results

    out = []

    def walk(x):
        if isinstance(x, bool):
            return
        if isinstance(x, (int, float)):
            out.append(float(x))
        elif isinstance(x, dict):
            for k, v in x.items():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(paper_results())
    return out


def html_tables(path: Path) -> dict[str, list[dict]]:
    """``{glued name: rows as {column: cell text}}`` of every table a notebook glued as HTML."""
    nb = json.loads(path.read_text())
    out = {}
    for c in nb["cells"]:
        for o in c.get("outputs", []):
            html = o.get("data", {}).get("application/papermill.record/text/html")
            if html and "scrapbook" in o.get("metadata", {}):
                head = [re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r"<th[^>]*>(.*?)</th>", html, re.S)]
                rows = [[re.sub(r"<[^>]+>", "", d).strip() for d in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
                        for tr in re.findall(r"<tr>(.*?)</tr>", html, re.S)]
                out[o["metadata"]["scrapbook"]["name"]] = [dict(zip(head[-len(r):], r)) for r in rows if r]
    return out


def paper_cells_not_in_the_record(tables: dict, numbers: list[float]) -> list[str]:
    """The numeric cells of the paper's and the repository's rows that no number of paper_results.json gives at
    the cell's own precision."""
    bad = []
    for name, rows in tables.items():
        for row in rows:
            if row.get("source") not in ("paper", "repo"):
                continue
            for col, cell in row.items():
                if not re.fullmatch(r"[\d.\s±%-]+", cell) or not re.search(r"\d", cell):
                    continue
                for num in re.findall(r"\d+(?:\.\d+)?", cell):
                    places = len(num.split(".")[1]) if "." in num else 0
                    if not any(abs(round(v, places) - float(num)) < 1e-9 for v in numbers):
                        bad.append(f"{name}: {row.get('model')} {col}={cell}")
    return bad


def test_paper_numbers_in_the_book_tables_are_the_records(smoke_book):
    """Every number in a paper or official-repository row of a book table equals a number of
    ``soo/data/paper_results.json`` (at the precision the table shows), and such rows exist for every
    paper-vs-ours table; a number typed into a table, or a changed record, fails here."""
    root, times = smoke_book
    numbers = paper_numbers()
    tables = {}
    for name in ("llm_baseline", "llm_soo", "llm_generalization"):
        tables.update(html_tables(root / "book" / "executed" / f"{name}.ipynb"))
    assert {"base_comparison", "soo_comparison", "soo_capability_comparison", "gen_comparison",
            "gen_extended_comparison"} <= set(tables)
    for name, rows in tables.items():
        assert any(r.get("source") in ("paper", "repo") for r in rows), f"{name} has no paper row"
    assert not paper_cells_not_in_the_record(tables, numbers)
    planted = {"t": [{"model": "Mistral", "source": "paper", "baseline": "73.7"}]}
    assert paper_cells_not_in_the_record(planted, numbers) == ["t: Mistral baseline=73.7"]
