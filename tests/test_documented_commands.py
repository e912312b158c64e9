"""Every ``papermill`` command printed in README.md and book/*.md runs as written, and none writes under ``book/``.

Each command is read from the page's ``bash`` blocks and parsed by papermill's own command line
(:func:`soo.pages.page_commands`, :func:`soo.pages.papermill_parameters`: ``-p seeds "[0]"`` reaches the
notebook as the string papermill makes of it). Every LLM command then runs its notebook's parameter cell and
validation exactly as papermill would, with ``dry_run True`` added, from a checkout-like scratch folder (the
commands' relative paths land there): the plan must be written and, for the paper's models, carry the paper's
settings. The README's dry-run command also runs through papermill itself, offline, in under a minute. The
workshop's commands, and the README's commands on the embedded model, run for real at the smoke scale (RL
notebooks have no dry run: they always run). Around each command, every file under ``book/`` (the project's and
the scratch checkout's) is hashed: a reader's or a workshop's command must leave the book as it is.
"""
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from soo.llm import models
from soo.pages import page_commands, papermill_parameters
from soo.utils import project_root

ROOT = project_root()
DOCS = [ROOT / "README.md", *sorted((ROOT / "book").glob("*.md"))]
PAPERMILL = str(Path(sys.executable).parent / "papermill")
PAPER_LAYERS = {"mistral": 19, "gemma": 20, "calmerys": 57}


def documented_commands() -> list[tuple[str, list[str]]]:
    """``(page, argv)`` of every papermill command in a ``bash`` block of the README and the book's pages."""
    return [(doc.name, argv) for doc in DOCS for argv in page_commands(doc)]


COMMANDS = documented_commands()
LLM_COMMANDS = [c for c in COMMANDS if Path(c[1][1]).stem.startswith("llm_")]
parameters_of = papermill_parameters


def book_files(*roots: Path) -> dict[str, str]:
    """sha256 of every file under each root's ``book/`` (the built HTML, ``book/_build``, aside)."""
    out = {}
    for root in roots:
        for p in sorted((root / "book").rglob("*")):
            if p.is_file() and "_build" not in p.relative_to(root).parts:
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def assert_book_untouched(before: dict, after: dict, what: str):
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"{what} changed files under book/: {changed[:5]}"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A folder with the notebooks' .ipynb pairs and the book's trained organism stood in by a tiny model."""
    import jupytext

    root = tmp_path_factory.mktemp("commands")
    (root / "notebooks").mkdir()
    shutil.copytree(ROOT / "book", root / "book", ignore=shutil.ignore_patterns("_build"))
    for f in (ROOT / "notebooks").glob("*.md"):
        jupytext.write(jupytext.read(f), root / "notebooks" / f"{f.stem}.ipynb")
    shutil.copytree(models.tiny_path("tiny-random-llama"), root / "results" / "default" / "llm_organism" / "model")
    return root


def run_until_plan(root: Path, notebook: str, params: dict) -> dict:
    """Run the notebook's cells in order, as papermill does (parameters injected after the parameters cell), until
    the dry run has written its plan; return the plan."""
    import jupytext

    nb = jupytext.read(ROOT / "notebooks" / f"{notebook}.md")
    cells = [c for c in nb.cells if c.cell_type == "code"]
    ns = {"__name__": "__main__"}
    for old in root.rglob("plan.json"):  # an earlier command's plan
        old.unlink()
    for c in cells:
        exec(compile(c.source, f"<{notebook}>", "exec"), ns)
        if "parameters" in c.metadata.get("tags", []):
            ns.update(params)
        if ".dry_run(" in c.source:  # the dry run's cell: the notebook stops here
            break
    new = list(root.rglob("plan.json"))
    assert len(new) == 1, f"{notebook}: expected one new plan.json, found {new}"
    return json.loads(new[0].read_text())


def test_every_documented_command_is_found():
    names = {Path(a[1]).stem for _, a in COMMANDS}
    assert {"llm_baseline", "llm_soo", "llm_organism"} <= names
    assert {d for d, _ in COMMANDS} >= {"README.md", "reproduce.md", "workshop.md"}


@pytest.mark.parametrize("doc,argv", LLM_COMMANDS, ids=[f"{d}:{' '.join(a[1:])[:70]}" for d, a in LLM_COMMANDS])
def test_llm_command_validates_and_plans(doc, argv, scratch, monkeypatch):
    params = parameters_of(argv + ["-p", "dry_run", "True"])
    monkeypatch.chdir(scratch)
    before = book_files(ROOT, scratch)
    plan = run_until_plan(scratch, Path(argv[1]).stem, params)
    assert_book_untouched(before, book_files(ROOT, scratch), f"{doc}: {' '.join(argv)}")
    model = str(params.get("model") or "").lower()
    paper = [k for k in PAPER_LAYERS if k in model]
    if paper and params.get("scale") == "full":  # the paper's models: the paper's settings (PAPER_SPEC §3.1)
        want = {"mistral": dict(lora_r=8, lora_alpha=32, lr=1e-4, epochs=15, quantization="4bit", suffix="i_would"),
                "gemma": dict(lora_r=4, lora_alpha=8, lr=9e-4, epochs=8, quantization=None, suffix="room_only"),
                "calmerys": dict(lora_r=8, lora_alpha=32, lr=1e-4, epochs=15, quantization="4bit", suffix="room_only")}
        assert {k: plan[k] for k in want[paper[0]]} == want[paper[0]]
        assert plan["layer"] == PAPER_LAYERS[paper[0]] and plan["start_from"] is None
        assert plan["max_new_tokens"] == 75 and plan["n_eval"] == 250 and len(plan["seeds"]) == 5
    for k in ("layer", "seeds"):
        if k in params and params[k] is not None:
            assert plan[k] == (params[k] if k == "layer" else json.loads(params[k]))


def test_readme_dry_run_through_papermill_offline(tmp_path):
    """The README's Mistral dry run, run by papermill itself, offline, writes only plan.json (no wall-time bound: on a
    busy machine the kernel's start alone can take most of a minute; the subprocess timeout only guards a hang)."""
    (doc, argv), = [(d, a) for d, a in COMMANDS if d == "README.md" and "dry_run" in a and "mistral-7b-instruct-v0.2" in a]
    out = tmp_path / "OUT"
    argv = [PAPERMILL, str(ROOT / argv[1]).replace(".ipynb", ".ipynb"), str(tmp_path / "out.ipynb"),
            *[str(out) if a == "OUT" else a for a in argv[3:]]]
    import jupytext

    jupytext.write(jupytext.read(ROOT / "notebooks" / "llm_soo.md"), tmp_path / "llm_soo.ipynb")
    argv[1] = str(tmp_path / "llm_soo.ipynb")
    proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = [p.relative_to(out) for p in out.rglob("*") if p.is_file()]
    assert [str(f) for f in files] == ["full/llm_soo/plan.json"]
    plan = json.loads((out / files[0]).read_text())
    assert (plan["layer"], plan["lora_r"], plan["lora_alpha"], plan["lr"], plan["epochs"], plan["quantization"],
            plan["max_new_tokens"], plan["n_eval"], plan["start_from"]) == (19, 8, 32, 1e-4, 15, "4bit", 75, 250, None)


def runs_for_real(doc: str, argv: list[str]) -> bool:
    """Whether a command runs for real at the smoke scale: the workshop's, and the README's on the embedded model
    (the paper's models need their weights: their commands run as dry runs above)."""
    if doc == "workshop.md":
        return True
    params = parameters_of(argv)
    return doc == "README.md" and not params.get("model") and not params.get("dry_run")


SMOKE = [(d, a) for d, a in COMMANDS if runs_for_real(d, a)]


def test_the_commands_run_for_real_include_the_workshop_and_the_readme():
    assert {d for d, _ in SMOKE} == {"README.md", "workshop.md"}
    assert len([1 for d, _ in SMOKE if d == "workshop.md"]) == 6  # five exercises, the fifth with two commands


@pytest.mark.slow
@pytest.mark.parametrize("doc,argv", SMOKE, ids=[f"{d}:" + Path(a[1]).stem + ":" + " ".join(a[3:])[:50]
                                                 for d, a in SMOKE])
def test_command_runs_at_smoke_scale_and_leaves_the_book_alone(doc, argv, scratch, tmp_path):
    """The command, run for real by papermill at the smoke scale (a layer beyond the smoke model's 2 layers at
    layer 1), as written otherwise, from the checkout-like scratch folder: its figures land in its own ``out_dir``,
    and no file under ``book/`` changes (the book's figures and results stay the book's)."""
    argv = [PAPERMILL, argv[1], str(tmp_path / "out.ipynb"), *argv[3:], "-p", "scale", "smoke"]
    if "layer" in argv:
        argv += ["-p", "layer", "1"]
    out_dir = argv[argv.index("out_dir") + 1] if "out_dir" in argv else "results"
    before = book_files(ROOT, scratch)
    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(argv, cwd=scratch, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_book_untouched(before, book_files(ROOT, scratch), f"{doc}: {' '.join(argv)}")
    assert any((scratch / out_dir / "figures").glob("*.png")), f"no figure in {out_dir}/figures"


def test_book_untouched_check_fails_on_a_planted_write(scratch):
    """The check above sees a command that writes a figure under book/ (planted here, then undone)."""
    before = book_files(ROOT, scratch)
    planted = scratch / "book" / "figures" / "planted.png"
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_bytes(b"x")
    try:
        with pytest.raises(AssertionError, match="planted.png"):
            assert_book_untouched(before, book_files(ROOT, scratch), "a planted write")
    finally:
        planted.unlink()


def test_workshop_times_table_is_made_from_its_record():
    """The workshop page's table is the rendering of ``benchmarks/workshop_times.json``, which holds one time per
    exercise on the page (every command, measured in one run), each with its machine, precision and date."""
    from soo.pages import WORKSHOP_TABLE, WORKSHOP_TIMES, workshop_times_table

    times = json.loads((ROOT / WORKSHOP_TIMES).read_text())
    names = {Path(parameters_of(a)["out_dir"]).name for d, a in COMMANDS if d == "workshop.md"}
    assert set(times) == names
    assert len({t["run"] for t in times.values()}) == 1, "the times come from more than one run"
    for t in times.values():
        assert t["machine"] and t["precision"] in ("bf16", "fp32") and t["date"] == t["run"][:10]
    assert (ROOT / WORKSHOP_TABLE).read_text() == workshop_times_table(times)
