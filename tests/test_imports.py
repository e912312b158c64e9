"""The house's import rules, read from the package's own source (every ``import`` statement, at any depth):

* the two wings, ``soo.llm`` and ``soo.rl``, never import each other;
* the ground floor (the modules directly in ``soo/``) imports no wing;
* a wing's figures import only the style and their own wing's configuration;
* statistics have one home, ``soo.stats``: both wings import it, and no other module imports ``scipy.stats`` or
  defines a function of its name.
"""
import ast
from pathlib import Path

import pytest

import soo

PACKAGE = Path(soo.__file__).parent
WINGS = ("soo.llm", "soo.rl")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str | None = None) -> set[str]:
    """The ``soo`` modules a source file imports (relative imports resolved), wherever the import stands. ``name``:
    the file's module name (default: from its place in the package)."""
    name = module_name(path) if name is None else name
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)  # `from . import plots` names a module
    return {m for m in out if m == "soo" or m.startswith("soo.")}


def wing_of(module: str) -> str | None:
    return next((w for w in WINGS if module == w or module.startswith(w + ".")), None)


MODULES = {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def violations(modules: dict[str, set[str]]) -> list[str]:
    out = []
    for mod, imported in modules.items():
        wing = wing_of(mod)
        for target in imported:
            other = wing_of(target)
            if wing and other and other != wing:
                out.append(f"{mod} (wing {wing}) imports {target} (wing {other})")
            if wing is None and other:
                out.append(f"{mod} (ground floor) imports {target} (wing {other})")
        if mod.endswith(".figures") and wing:
            allowed = {"soo", "soo.style", f"{wing}", f"{wing}.config"}
            extra = {t for t in imported if t not in allowed and not t.startswith(("soo.style.", f"{wing}.config."))}
            out += [f"{mod} (figures) imports {t}: figures import only soo.style and {wing}.config" for t in extra]
    return out


def test_the_walk_sees_the_package():
    assert {"soo", "soo.utils", "soo.llm.experiment", "soo.rl.experiment"} <= set(MODULES)
    assert "soo.utils" in MODULES["soo.rl.config"]


@pytest.mark.parametrize("module, init, source, expected", [
    ("soo.rl.experiment", False, "from .config import RLConfig", {"soo.rl.config", "soo.rl.config.RLConfig"}),
    ("soo.rl.experiment", False, "from . import figures", {"soo.rl", "soo.rl.figures"}),
    ("soo.rl.experiment", False, "from ..utils import check_choice", {"soo.utils", "soo.utils.check_choice"}),
    ("soo.rl.experiment", False, "from .. import style", {"soo", "soo.style"}),
    ("soo.rl.experiment", False, "def f():\n    from ..llm.models import load", {"soo.llm.models", "soo.llm.models.load"}),
    ("soo.rl", True, "from .config import AGENTS", {"soo.rl.config", "soo.rl.config.AGENTS"}),
    ("soo.rl", True, "from . import env", {"soo.rl", "soo.rl.env"}),
    ("soo.rl", True, "from ..utils import seed_everything", {"soo.utils", "soo.utils.seed_everything"}),
    ("soo", True, "from .utils import check_choice", {"soo.utils", "soo.utils.check_choice"}),
    ("soo.utils", False, "from .llm import train", {"soo.llm", "soo.llm.train"}),
    ("soo.rl.overlap", False, "import numpy as np\nfrom numpy import pi\nimport soo.llm.models", {"soo.llm.models"}),
])
def test_imports_of_resolves_relative_imports(tmp_path, module, init, source, expected):
    """Relative imports one and two levels up, from a module and from a package's ``__init__`` (whose ``.`` is the
    package itself), inside a function too, resolve to the modules they name. Checked once each with the level
    counted one too far and with an ``__init__`` read as a module of its parent: the cases of each failed."""
    path = tmp_path / ("__init__.py" if init else "m.py")
    path.write_text(source + "\n")
    assert imports_of(path, module) == expected


def test_a_relative_import_across_the_wings_is_caught(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("from ..llm import train\n")
    assert any("soo.rl.experiment (wing soo.rl) imports soo.llm.train" in v
               for v in violations({"soo.rl.experiment": imports_of(path, "soo.rl.experiment")}))
    assert {"soo.utils", "soo.rl.config", "soo.rl.training"} <= MODULES["soo.rl.runs"]  # the real file's `..`, `.`
    assert "soo.rl.config" in MODULES["soo.rl"]  # the package's own __init__


def test_the_house_keeps_its_import_rules():
    assert not violations(MODULES), "\n".join(violations(MODULES))


@pytest.mark.parametrize("planted, what", [
    ({"soo.llm.experiment": {"soo.rl.config"}}, "wing soo.llm) imports soo.rl.config"),
    ({"soo.plots": {"soo.llm.train"}}, "ground floor) imports soo.llm.train"),
    ({"soo.rl.figures": {"soo.rl.experiment"}}, "figures) imports soo.rl.experiment"),
])
def test_each_rule_catches_a_planted_import(planted, what):
    assert any(what in v for v in violations(planted))


STATISTICS = "soo.stats"


def scipy_stats_users(root: Path = PACKAGE) -> set[str]:
    """The package's modules that import ``scipy.stats`` (``import scipy.stats``, ``from scipy import stats``, ...)."""
    out = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [f"{node.module}.{a.name}" for a in node.names] if isinstance(node, ast.ImportFrom) and node.module
                     else [])
            if any(n == "scipy.stats" or n.startswith("scipy.stats.") for n in names):
                out.add(module_name(path) if root == PACKAGE else path.stem)
    return out


def statistics_violations(modules: dict[str, set[str]], scipy_users: set[str], defined: dict[str, set[str]],
                          stats_names: set[str]) -> list[str]:
    """Where the one home of statistics is not the only one: a wing that does not import it, another module that
    imports ``scipy.stats``, or a module that defines a function named like one of ``soo.stats``'s."""
    out = [f"{w} imports nothing from {STATISTICS}" for w in WINGS
           if not any(wing_of(m) == w and any(t == STATISTICS or t.startswith(STATISTICS + ".") for t in imp)
                      for m, imp in modules.items())]
    out += [f"{m} imports scipy.stats (statistics live in {STATISTICS})" for m in sorted(scipy_users - {STATISTICS})]
    out += [f"{m} defines {n} (a function of {STATISTICS})" for m, names in sorted(defined.items()) if m != STATISTICS
            for n in sorted(names & stats_names)]
    return out


def defined_functions(path: Path) -> set[str]:
    return {n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef)}


DEFINED = {module_name(p): defined_functions(p) for p in sorted(PACKAGE.rglob("*.py"))}
STATS_NAMES = {n for n in DEFINED[STATISTICS] if not n.startswith("_")}


def test_statistics_have_one_home():
    assert {"paired_t_verdict", "wilson_interval", "two_level_bootstrap"} <= STATS_NAMES
    assert not statistics_violations(MODULES, scipy_stats_users(), DEFINED, STATS_NAMES)


def test_each_statistics_rule_catches_a_planted_breach(tmp_path):
    (tmp_path / "m.py").write_text("from scipy import stats as st\n")
    (tmp_path / "n.py").write_text("import scipy.stats\n")
    assert scipy_stats_users(tmp_path) == {"m", "n"}
    modules = {"soo.llm.book": {"soo.stats"}, "soo.rl.book": {"soo.rl.config"}}
    assert statistics_violations(modules, set(), {}, STATS_NAMES) == ["soo.rl imports nothing from soo.stats"]
    both = {**modules, "soo.rl.screen": {"soo.stats.paired_t_verdict"}}
    assert statistics_violations(both, {"soo.stats", "soo.rl.metrics"}, {"soo.rl.metrics": {"paired_t_verdict", "f"}},
                                 STATS_NAMES) == ["soo.rl.metrics imports scipy.stats (statistics live in soo.stats)",
                                                  "soo.rl.metrics defines paired_t_verdict (a function of soo.stats)"]


def test_the_readme_layout_names_every_module():
    """The README's layout table names every module of the package (ground floor by path, wings by room name)."""
    readme = (PACKAGE.parent / "README.md").read_text()
    layout = readme[readme.index("## Layout"):readme.index("## Citing")]
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent)
        if path.name == "__init__.py":
            continue
        if len(rel.parts) == 2 and f"`{rel}`" not in layout:
            missing.append(str(rel))
        if len(rel.parts) == 3 and f"`{path.stem}`" not in layout.split(f"| `soo/{rel.parts[1]}/` |", 1)[1].split("\n")[0]:
            missing.append(str(rel))
    assert not missing, f"README's layout table does not name: {missing}"


def missing_names(path: Path) -> list[str]:
    """The ``soo`` modules and names a script imports (at any depth) that the package does not have."""
    import importlib
    import importlib.util

    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            targets = [(node.module, a.name) for a in node.names]
        else:
            continue
        for mod, name in targets:
            if mod != "soo" and not mod.startswith("soo."):
                continue
            if importlib.util.find_spec(mod) is None:
                out.append(mod)
            elif name and not hasattr(importlib.import_module(mod), name) \
                    and importlib.util.find_spec(f"{mod}.{name}") is None:
                out.append(f"{mod}.{name}")
    return out


SCRIPTS = sorted([*(PACKAGE.parent / "benchmarks").glob("*.py"), *(PACKAGE.parent / "scripts").glob("*.py")])


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_benchmarks_and_scripts_import_what_the_package_has(path):
    """The benchmarks and scripts run outside the test suite; what they import from ``soo`` must exist (a module
    moved between floors leaves them behind otherwise)."""
    assert not missing_names(path)


def test_missing_names_catches_a_planted_import(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("from soo.llm import models, notebooks\nimport soo.nowhere\nfrom soo import notebooks\n")
    assert missing_names(script) == ["soo.llm.notebooks", "soo.nowhere"]
