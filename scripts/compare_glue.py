"""Compare the glued values of two sets of executed notebooks (a refactor must not change what the book shows).

    python scripts/compare_glue.py BEFORE_DIR AFTER_DIR [NAME ...]

BEFORE_DIR and AFTER_DIR hold executed notebooks (``book/executed`` of two builds). For every notebook (or the
NAMEs given) it reads each ``glue`` output (myst-nb/scrapbook records) and compares the text a page shows
(``text/plain``, tables by their HTML; figures by their image bytes are not compared, only their presence). Prints one line per
notebook and every difference; exits 1 if any value differs or a key is missing on one side.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def glue_values(path: Path) -> dict[str, str]:
    """``{glue name: text/plain}`` of an executed notebook (images as ``<image>``)."""
    out = {}
    for cell in json.loads(path.read_text())["cells"]:
        for o in cell.get("outputs", []):
            rec = o.get("metadata", {}).get("scrapbook")
            if not rec:
                continue
            prefix = rec.get("mime_prefix", "")
            data = {k[len(prefix):]: v for k, v in o.get("data", {}).items() if k.startswith(prefix)}
            text = data.get("text/plain", "")
            if "image/png" in data:
                text = "<image>"
            elif "text/html" in data:  # tables (a Styler's text/plain is its object id): compare what the page shows
                html = "".join(data["text/html"]) if isinstance(data["text/html"], list) else data["text/html"]
                text = re.sub(r"T_[0-9a-f]{5}", "T_", html)  # pandas' random table id
            out[rec["name"]] = "".join(text) if isinstance(text, list) else text
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        print(__doc__)
        return 2
    before, after = Path(argv[0]), Path(argv[1])
    names = argv[2:] or sorted(p.stem for p in before.glob("*.ipynb") if not p.name.startswith("."))
    bad = same = 0
    for name in names:
        b, a = glue_values(before / f"{name}.ipynb"), glue_values(after / f"{name}.ipynb")
        diff = [k for k in sorted(set(b) | set(a)) if b.get(k) != a.get(k)]
        same += len(b) - len([k for k in diff if k in b])
        print(f"{name}: {len(b)} glued before, {len(a)} after, {len(diff)} differ")
        for k in diff:
            print(f"  {k}: {b.get(k, '<missing>')[:120]!r} -> {a.get(k, '<missing>')[:120]!r}")
        bad += len(diff)
    print(f"identical: {same}; differing or missing: {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
