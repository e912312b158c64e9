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


def _html_build(root: Path) -> subprocess.CompletedProcess:
    """``make html``'s own ``jupyter-book build`` command (read from the Makefile), run in ``root``."""
    recipe = next(line for line in (ROOT / "Makefile").read_text().splitlines() if "jupyter-book build" in line)
    args = recipe.split("jupyter-book", 1)[1].split()
    jb = Path(sys.executable).parent / "jupyter-book"
    return subprocess.run([str(jb), *args], cwd=root, capture_output=True, text=True, timeout=900)


def test_book_builds_without_warnings_and_a_rerun_notebook_reaches_every_page(smoke_book):
    """The book builds ``-W`` clean with ``make html``'s command; and built again after a notebook ran again with a
    new result, a page that only glues from it (the discussion, unchanged itself) shows the new value, not the old."""
    root, _ = smoke_book
    proc = _html_build(root)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    page = root / "book" / "_build" / "html" / "book" / "discussion.html"
    assert page.exists()
    executed = root / "book" / "executed" / "llm_soo.ipynb"
    original = executed.read_text()
    nb = json.loads(original)
    glued = [o for c in nb["cells"] for o in c.get("outputs", [])
             if o.get("metadata", {}).get("scrapbook", {}).get("name") == "llm_full_bottom"]
    assert len(glued) == 1 and "llm_full_bottom" in (root / "book" / "discussion.md").read_text()
    glued[0]["data"] = {"application/papermill.record/text/plain": "'STALE-CHECK a new result'"}
    try:
        executed.write_text(json.dumps(nb))
        proc = _html_build(root)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        assert "STALE-CHECK a new result" in page.read_text()
    finally:
        executed.write_text(original)


def test_bad_scale_and_notebook_fail_before_running(tmp_path):
    with pytest.raises(ValueError, match="scale='huge'.*'smoke'"):
        notebooks.run_all(scale="huge", root=ROOT)
    with pytest.raises(ValueError, match="notebook='nope'"):
        notebooks.run_all(scale="smoke", root=ROOT, names=["nope"])


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


PAPER_SECTIONS = {"base_comparison": ("llm_main_scenario",), "soo_comparison": ("llm_main_scenario",),
                  "gen_comparison": ("llm_generalization", "paper_seven_variant_average"),
                  "gen_extended_comparison": ("llm_generalization", "paper_extended"),
                  "soo_capability_comparison": {"latent SOO": ("latent_soo",), "MT-Bench": ("mt_bench",),
                                                "Perspectives": ("perspectives_accuracy_after_soo",)}}
"""Where in ``soo/data/paper_results.json`` each book table's paper and repository rows come from (the capability
table: by the start of the row's ``measure``)."""
PAPER_COLUMNS = {"baseline": ("baseline",), "honesty_prompt": ("honesty_prompt",), "soo": ("soo_mean", "soo_sd"),
                 "baseline_mean": ("baseline_mean",), "soo_mean": ("soo_mean",), "before": ("baseline",),
                 "after SOO": ("soo_mean", "soo_sd")}
"""The record fields each numeric column of a paper row shows, in the order of its numbers (``"17.27 ± 1.88"``)."""


def _section_records(table: str, row: dict, records: dict) -> list[dict]:
    """The records a row of ``table`` may show: its section's per-model records (not a list's notes), or the
    section itself where it is one record."""
    where = PAPER_SECTIONS.get(table)
    if isinstance(where, dict):
        where = next((v for k, v in where.items() if row.get("measure", "").startswith(k)), None)
    if where is None:
        return []
    out = records
    for k in where:
        out = out[k]
    return [r for r in out if "model" in r] if isinstance(out, list) else [out]


def _same_row(row: dict, rec: dict) -> bool:
    """Whether a table row shows the record ``rec``: the same source, model, scenario and measure, where the record
    names them."""
    return (rec.get("source") == row.get("source")
            and ("model" not in rec or rec["model"] == row.get("model"))
            and ("scenario" not in rec or rec["scenario"].replace("_", " ") == row.get("scenario"))
            and ("metric" not in rec or rec["metric"] in row.get("measure", "")))


def paper_cells_not_in_the_record(tables: dict, records: dict) -> list[str]:
    """The paper's and the repository's rows of the book tables that are not their record of ``records`` (the
    content of ``soo/data/paper_results.json``) cell by cell: each such row must match exactly one record of its
    table's section (:data:`PAPER_SECTIONS`: same source, model, scenario and measure), and each numeric cell must
    give that record's fields of its column (:data:`PAPER_COLUMNS`), in order, at the cell's own precision; a field
    the record has must be shown."""
    bad = []
    for name, rows in tables.items():
        for row in rows:
            if row.get("source") not in ("paper", "repo"):
                continue
            what = f"{name}: {row.get('model')} ({row.get('source')})"
            found = [r for r in _section_records(name, row, records) if _same_row(row, r)]
            if len(found) != 1:
                bad.append(f"{what}: {len(found)} records match the row")
                continue
            rec = found[0]
            for col, cell in row.items():
                numeric = bool(re.fullmatch(r"[\d.\s±%-]+", cell) and re.search(r"\d", cell))
                fields = [f for f in PAPER_COLUMNS.get(col, ()) if rec.get(f) is not None]
                if not numeric:
                    if fields:
                        bad.append(f"{what} {col}={cell!r}: the record's {fields} not shown")
                    continue
                nums = re.findall(r"\d+(?:\.\d+)?", cell)
                if len(nums) != len(fields):
                    bad.append(f"{what} {col}={cell}: the record has {fields}")
                    continue
                for num, field in zip(nums, fields):
                    places = len(num.split(".")[1]) if "." in num else 0
                    if abs(round(rec[field], places) - float(num)) >= 1e-9:
                        bad.append(f"{what} {col}={cell}: {field} is {rec[field]}")
    return bad


def test_paper_cells_are_checked_against_their_own_row_and_column():
    """The check of the paper's rows, on planted tables: the records themselves pass; a number of another row
    (Gemma's baseline showing Mistral's), of another column (Mistral's baseline showing its honesty-prompt rate), a
    mean and its SD swapped, a changed digit, a row no record matches and a record's value left out are each caught.
    Checked once against the check this replaced (every number of a paper row must be some number of the file,
    whatever its row and column): the first three passed it."""
    from soo.llm.scenarios import paper_results

    rec = paper_results()
    mistral, gemma = "mistralai/Mistral-7B-Instruct-v0.2", "google/gemma-2-27b-it"
    good = {"soo_comparison": [{"model": mistral, "baseline": "73.6", "soo": "17.27 ± 1.88", "source": "paper"}],
            "soo_capability_comparison": [
                {"measure": "latent SOO (paper)", "model": "Mistral-7B-Instruct-v0.2", "before": "0.107",
                 "after SOO": "0.078", "source": "paper"},
                {"measure": "MT-Bench score (GPT-4 judge, 1-10)", "model": "Mistral-7B-Instruct-v0.2",
                 "before": "7.26", "after SOO": "7.3", "source": "paper"}],
            "gen_extended_comparison": [{"scenario": "treasure hunt", "model": "Gemma-2-27b-it", "baseline": "",
                                         "soo": "0.00", "source": "paper"}]}
    assert paper_cells_not_in_the_record(good, rec) == []
    planted = {
        "other row": {"base_comparison": [{"model": gemma, "baseline": "73.6", "source": "paper"}]},
        "other column": {"base_comparison": [{"model": mistral, "baseline": "73.2", "source": "paper"}]},
        "swapped": {"soo_comparison": [{"model": mistral, "soo": "1.88 ± 17.27", "source": "paper"}]},
        "digit": {"base_comparison": [{"model": mistral, "baseline": "73.7", "source": "paper"}]},
        "no record": {"base_comparison": [{"model": "Mistral", "baseline": "73.6", "source": "paper"}]},
        "left out": {"gen_extended_comparison": [{"scenario": "treasure hunt", "model": "Mistral-7B-Instruct-v0.2",
                                                  "baseline": "", "soo": "99.68", "source": "paper"}]},
    }
    for what, tables in planted.items():
        assert paper_cells_not_in_the_record(tables, rec), what


def test_paper_numbers_in_the_book_tables_are_the_records(smoke_book):
    """Every paper or official-repository row of a book table is its record of ``soo/data/paper_results.json``,
    cell by cell (:func:`paper_cells_not_in_the_record`: the row's own record, each column's own field, at the
    precision the table shows), and such rows exist for every paper-vs-ours table; a number typed into a table,
    taken from another row or column, or a changed record, fails here."""
    from soo.llm.scenarios import paper_results

    root, times = smoke_book
    tables = {}
    for name in ("llm_baseline", "llm_soo", "llm_generalization"):
        tables.update(html_tables(root / "book" / "executed" / f"{name}.ipynb"))
    assert set(PAPER_SECTIONS) <= set(tables)
    for name in PAPER_SECTIONS:
        assert any(r.get("source") in ("paper", "repo") for r in tables[name]), f"{name} has no paper row"
    assert not paper_cells_not_in_the_record(tables, paper_results())


def test_replication_rows_are_their_records():
    """The replications' rows of the SOO table show the numbers of ``soo/data/replications.json`` at the fields they
    name (read here by their own paths), with the repository as the source: a typed or swapped number fails."""
    from soo.llm.book import replication_rows
    from soo.llm.scenarios import replications

    rep = replications()
    bm = rep["marcobaumann/paper-soo-overlap"]["control_ladder"]
    untrained = bm["untrained baseline"]
    full = bm["full SOO (pairs + SOO loss)"]
    dr = rep["DRAGNLabs/self-concept-experiments"]
    expected = {"marcobaumann/paper-soo-overlap": ([untrained["mean"], untrained["sd"]], [full["mean"], full["sd"]]),
                "DRAGNLabs/self-concept-experiments": ([dr["mistral_baseline"]["main_n250"]],
                                                       [dr["mistral_L16_lasttok"]["mean"], dr["mistral_L16_lasttok"]["sd"]])}
    rows = replication_rows()
    assert {r["source"] for r in rows} == set(expected)
    for r in rows:
        for col, want in zip(("baseline", "soo"), expected[r["source"]]):
            got = [float(x) for x in re.findall(r"\d+(?:\.\d+)?", r[col])]
            assert got == pytest.approx(want, abs=0.051), (r["source"], col)
