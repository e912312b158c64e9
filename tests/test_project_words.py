"""The project speaks of itself only: no words about how it was developed (sessions, issues, a team, "today",
targets met) in the README, the book, the notebooks, the package, the tests, the benchmarks, the scripts or the
book's configuration. Raw device logs and third-party data files are kept as they came and are not read.
"""
import re

import pytest

from soo.utils import project_root

ROOT = project_root()
SCANNED = ["README.md", "Makefile", "_config.yml", "_toc.yml", "requirements.txt", "book/*.md", "book/*.bib",
           "notebooks/*.md", "soo/**/*.py", "soo/**/*.md", "tests/**/*.py", "benchmarks/**/*.py",
           "benchmarks/**/*.md", "benchmarks/**/*.sh", "scripts/*"]
PROCESS_WORDS = re.compile(
    r"\bsessions?\b|\blent\b|\bissues? ?#? ?\d+|#\d+\b(?=[^\n]{0,20}\b(?:issue|part)\b)|\bthe team\b|"
    r"\btoday\b|\btarget (?:is |was )?met\b|\breproduction team\b|\bdevice time\b", re.I)
# Code that merely contains such a word (a pytest fixture scope, an HTTP session, the date function), and this
# file's own pattern.
CODE = re.compile(r'scope="session"|requests(?:\.|\' )Session\b|\bas session\b|\bsession\.post\b|\bdate\.today\(\)')


def scanned_files():
    seen = set()
    for pattern in SCANNED:
        for p in sorted(ROOT.glob(pattern)):
            if p.is_file() and "_build" not in p.parts and p.name != "test_project_words.py":
                seen.add(p)
    return sorted(seen)


def process_words(text: str) -> list[str]:
    """The lines of ``text`` that speak of how the project was developed (with their numbers)."""
    hits = []
    for i, line in enumerate(text.splitlines(), 1):
        m = PROCESS_WORDS.search(CODE.sub("", line))
        if m:
            hits.append(f"{i}: ...{line[max(0, m.start() - 30):m.end() + 30]}...")
    return hits


def test_the_scan_covers_every_place():
    names = {str(p.relative_to(ROOT)).split("/")[0] for p in scanned_files()}
    assert {"README.md", "book", "notebooks", "soo", "tests", "benchmarks", "scripts", "_config.yml"} <= names


@pytest.mark.parametrize("text", [
    "This session measured it.", "as the last session found", "see issue #12", "Issue 3, part 8", "the team ran",
    "measured today", "the target is met", "a GPU machine lent to us", "(part 8 of #12 issue)",
    "one seed, to fit the device time", "a GPU with more device time"])
def test_each_kind_of_process_word_is_caught(text):
    assert process_words(text), text


@pytest.mark.parametrize("text", [
    '@pytest.fixture(scope="session")', "with requests.Session() as session:", "r = session.post(url)",
    "requests' Session.post replaced", 'monkeypatch.setattr(requests.Session, "post", f)',
    "date=str(date.today())", "a talented agent", "the issues of bf16 rounding", "1 # 2 cores"])
def test_code_and_ordinary_words_pass(text):
    assert not process_words(text), text


def test_no_process_words_in_the_project():
    hits = {str(p.relative_to(ROOT)): h for p in scanned_files() if (h := process_words(p.read_text(errors="replace")))}
    assert not hits, "words about how the project was developed:\n" + "\n".join(
        f"{f}:{line}" for f, h in hits.items() for line in h)
