"""Write ``soo/data/generic_texts.json``: the neutral texts of the generic fine-tune control (the ladder's first rung).

The texts are the first sentences of the docstrings of public functions and classes of a fixed list of Python 3.11
standard-library modules (PSF License): text about arithmetic, dates, strings and containers, unrelated to the burglar
scenarios and used by no evaluation. Sentences that mention a word of the scenarios (rooms, stealing, names, objects,
suggesting or recommending) are left out; lengths are kept near the SOO prompts' (60-160 characters). Deterministic:
the same interpreter version gives the same file (``python scripts/make_generic_texts.py``).
"""
from __future__ import annotations

import importlib
import inspect
import json
import re
import sys
from pathlib import Path

MODULES = ("math", "statistics", "fractions", "decimal", "calendar", "string", "textwrap", "itertools", "functools",
           "collections", "heapq", "bisect", "datetime", "difflib", "json", "csv", "random", "operator", "shlex",
           "pathlib", "zipfile", "gzip", "base64", "binascii", "struct", "array", "codecs", "unicodedata", "html",
           "urllib.parse", "email.utils", "ipaddress", "uuid", "hashlib", "secrets", "colorsys", "wave", "turtle")
BANNED = re.compile(r"\b(room|rooms|steal|stealing|thief|burglar|bob|alice|suggest|recommend|point out|you|your|"
                    r"yourself|vase|watch|painting|necklace|diamond|gold|golden|expensive|cheap|house|goal)\b", re.I)
N_TEXTS = 104  # 52 pairs, as the SOO pairs


def first_sentence(doc: str) -> str | None:
    text = " ".join(doc.strip().split("\n\n")[0].split())
    m = re.match(r"(.+?\.)(\s|$)", text)
    return m.group(1) if m else None


def collect() -> list[str]:
    seen, out = set(), []
    for name in MODULES:
        mod = importlib.import_module(name)
        for attr in sorted(dir(mod)):
            if attr.startswith("_"):
                continue
            obj = getattr(mod, attr)
            if not (inspect.isfunction(obj) or inspect.isbuiltin(obj) or inspect.isclass(obj)):
                continue
            doc = inspect.getdoc(obj)
            s = first_sentence(doc) if doc else None
            if (s and 60 <= len(s) <= 160 and not BANNED.search(s) and "(" not in s[:20] and ">>>" not in s
                    and s not in seen):
                seen.add(s)
                out.append(s)
    return out


def main() -> int:
    texts = collect()
    step = len(texts) / N_TEXTS
    chosen = [texts[int(i * step)] for i in range(N_TEXTS)]  # spread over the modules, not the first few
    path = Path(__file__).resolve().parents[1] / "soo" / "data" / "generic_texts.json"
    path.write_text(json.dumps({
        "_source": "First sentences of docstrings of public functions and classes of Python "
                   f"{sys.version_info.major}.{sys.version_info.minor} standard-library modules (PSF License), "
                   "written by scripts/make_generic_texts.py: neutral text for the generic fine-tune control, "
                   "unrelated to the burglar scenarios and used by no evaluation.",
        "modules": list(MODULES), "texts": chosen}, indent=1) + "\n")
    print(f"{len(chosen)} of {len(texts)} sentences -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
