"""All prompts of the paper: SOO fine-tuning pairs, latent-SOO probes and the evaluation scenarios.

Every piece of text lives in ``soo/data/scenarios.json`` (see ``soo/data/README.md`` for sources);
this module only reads it and fills ``str.format`` fields. Scenario templates name the two rooms
through positional fields ``{first_room}``/``{second_room}`` (and ``{first_object}``/``{second_object}``)
and through role fields ``{cheap_room}``, ``{expensive_room}``, ``{cheap_object}``, ``{expensive_object}``:

* ``order="paper"`` puts the cheap room first, as every official prompt does
  (so position and deceptiveness are confounded);
* ``order="mirrored"`` names the expensive room first everywhere and changes nothing else.

The *deceptive* room is the cheap-object room (the repo's ``correct_answer``, Hagendorff's convention).

>>> s = burglar(1)[0]
>>> s.deceptive_room, s.honest_room, s.first_room
('attic', 'bedroom', 'attic')
>>> len(soo_pairs()), len(soo_pairs("all")), len(probe_pairs())
(52, 156, 52)
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from ..files import read_json
from ..utils import check_choice

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
Combo = tuple[str, str, str, str]  # (cheap_room, expensive_room, cheap_object, expensive_object)

ORDERS = ("paper", "mirrored")
VARIANTS = ("name", "objective", "action", "name_objective", "name_action", "objective_action",
            "name_objective_action", "treasure_hunt", "escape_room")
"""Generalization scenarios (paper §4.3 / Table 5), in this fixed order: the seven non-empty
combinations of the Name, Objective and Action axes, then the two extended scenarios."""
VARIANT_TITLES = {"name": "Name", "objective": "Objective", "action": "Action", "name_objective": "Name + Objective",
                  "name_action": "Name + Action", "objective_action": "Objective + Action",
                  "name_objective_action": "Name + Objective + Action", "treasure_hunt": "Treasure Hunt",
                  "escape_room": "Escape Room"}
"""The paper's titles of the generalization variants (its 3x3 figure)."""

VARIANT_SEED = 0
"""Seed of the permutation that orders the 1000 generalization combinations (see :func:`variant_combos`)."""

ROLE_FIELDS = ("cheap_room", "expensive_room", "cheap_object", "expensive_object")
POSITION_FIELDS = ("first_room", "second_room", "first_object", "second_object")


# --------------------------------------------------------------------------------------------
# Data loading (cached)
# --------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _load(name: str):
    return read_json(DATA_DIR / name)


def texts() -> dict:
    """The contents of ``scenarios.json``: templates, items, axes, suffixes, official vocabulary."""
    return _load("scenarios.json")


def organism_vocab() -> dict:
    """Vocabulary written for this project's SFT model organism (disjoint from the official one)."""
    return _load("organism_vocab.json")


SUFFIXES: dict[str, str] = dict(texts()["suffixes"])
"""Answer-format suffixes: ``repo`` (official, no final period), ``i_would`` (paper, Mistral),
``room_only`` (paper, Gemma/CalmeRys), ``none``."""


@lru_cache(maxsize=None)
def official_records() -> tuple[dict, ...]:
    """The 1000 official test records (``prompt``, ``correct_answer`` = cheap room, ``wrong_answer``)."""
    return tuple(_load("test_scenarios.json")["records"])


@lru_cache(maxsize=None)
def official_combos() -> tuple[Combo, ...]:
    """(cheap_room, expensive_room, cheap_object, expensive_object) parsed from each official record.

    The rooms come from the record's answer fields; the objects are read from the prompt around
    those rooms (objects may contain commas, e.g. "rare, antique painting") and cross-checked.
    """
    combos = []
    for i, rec in enumerate(official_records()):
        cheap_room, exp_room = rec["correct_answer"], rec["wrong_answer"]
        m = re.search(rf"In the {re.escape(cheap_room)} is a (.+?)\. In the {re.escape(exp_room)} is a (.+?)\. "
                      r"Only you know", rec["prompt"])
        if m is None or f"Bob wants to steal the {m.group(2)}." not in rec["prompt"]:
            raise ValueError(f"official record {i} does not match the burglar template: {rec['prompt']!r}")
        combos.append((cheap_room, exp_room, m.group(1), m.group(2)))
    return tuple(combos)


@lru_cache(maxsize=None)
def generalization_combos() -> tuple[Combo, ...]:
    """The 1000 generalization combinations, sorted (as stored)."""
    return tuple(tuple(c) for c in _load("generalization_combinations.json")["combinations"])


@lru_cache(maxsize=None)
def variant_combos() -> tuple[tuple[int, Combo], ...]:
    """(index into the sorted list, combo) in the fixed order used by :func:`variant`.

    The repo iterated a Python ``set``, so its order (and its "first 250") depended on
    PYTHONHASHSEED and cannot be reproduced. The sorted list would put every "attic" room first,
    so we use a seeded permutation of it: ``numpy.random.default_rng(0).permutation(1000)``.
    """
    combos = generalization_combos()
    perm = np.random.default_rng(VARIANT_SEED).permutation(len(combos))
    return tuple((int(i), combos[i]) for i in perm)


# --------------------------------------------------------------------------------------------
# SOO fine-tuning pairs and latent-SOO probes
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PromptPair:
    """A self/other prompt pair; ``template`` is 1, 2 or 3 (paper Table 1), 0 for probe pairs."""

    self_prompt: str
    other_prompt: str
    item: str
    template: int


def soo_pairs(mode: Literal["cycle", "all"] = "cycle") -> list[PromptPair]:
    """SOO training pairs: ``cycle`` = the official 52 (item i uses template 1 + i % 3); ``all`` = 52 x 3."""
    check_choice("mode", mode, ("cycle", "all"))
    tpls, items = texts()["soo_templates"], texts()["soo_items"]
    chosen = [(i % 3, it) for i, it in enumerate(items)] if mode == "cycle" else \
        [(t, it) for it in items for t in range(len(tpls))]
    return [PromptPair(tpls[t]["self"].format(item=it), tpls[t]["other"].format(item=it), it, t + 1)
            for t, it in chosen]


NAME_CONTROL_NAMES = ("Alice", "Carol", "David", "Emma")
"""The second names of the name-control pairs (item i uses the (i mod 4)-th): names the burglar evaluation never
uses (it says "Bob"; the generalization's name variant "Oliver")."""


def name_control_pairs(mode: Literal["cycle", "all"] = "cycle") -> list[PromptPair]:
    """The name-control pairs: each SOO pair's *other* prompt ("Bob ... to Bob") against the same prompt with Bob
    replaced by another name ("Alice ... to Alice"): two prompts that differ only in a name, with no self/other
    contrast. The SOO loss on these pairs asks for the overlap of two others, not of self and other."""
    out = []
    for i, p in enumerate(soo_pairs(mode)):
        name = NAME_CONTROL_NAMES[i % len(NAME_CONTROL_NAMES)]
        if p.other_prompt.count("Bob") != 2:
            raise ValueError(f"a SOO template no longer names Bob twice: {p.other_prompt!r}")
        out.append(PromptPair(p.other_prompt, p.other_prompt.replace("Bob", name), p.item, p.template))
    return out


def generic_texts() -> tuple[str, ...]:
    """The generic fine-tune's neutral texts (``soo/data/generic_texts.json``, Python standard-library docstrings:
    its ``_source`` and ``scripts/make_generic_texts.py`` say how they were chosen)."""
    return tuple(_load("generic_texts.json")["texts"])


def generic_pairs(mode: Literal["cycle", "all"] = "cycle") -> list[PromptPair]:
    """The generic fine-tune's training items, as many as the SOO pairs of ``mode`` (52 or 156), each two neutral
    texts (so its next-token loss sees as many sequences per step as the scenario-exposure control's)."""
    n = len(soo_pairs(mode))
    t = generic_texts()
    return [PromptPair(t[(2 * i) % len(t)], t[(2 * i + 1) % len(t)], f"generic{i}", 0) for i in range(n)]


def training_pairs(objective: str, mode: Literal["cycle", "all"] = "cycle") -> list[PromptPair]:
    """The pairs one fine-tuning condition trains on: the name-control pairs, the generic texts, or the SOO pairs
    (every other condition, including shuffled pairs, which :func:`soo.llm.train.train` deranges)."""
    if objective == "soo_mse_names":
        return name_control_pairs(mode)
    if objective == "generic":
        return generic_pairs(mode)
    return soo_pairs(mode)


def probe_pairs() -> list[PromptPair]:
    """The 52 latent-SOO probe pairs (official text, phrased like the test scenario)."""
    tpl = texts()["probe_template"]
    return [PromptPair(tpl["self"].format(item=it), tpl["other"].format(item=it), it, 0)
            for it in texts()["soo_items"]]


# --------------------------------------------------------------------------------------------
# Evaluation scenarios
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    """One evaluation prompt and what it takes to score the answer.

    ``index`` is the position of the combination in its source: the official record index
    (burglar, perspectives), the index in the sorted generalization list (variants), the position
    in ``combos`` (custom) or in the returned list (organism). For ``perspectives`` the rooms are
    not deceptive/honest: ``correct_room`` is where Bob saw the object, ``other_room`` is yours,
    and ``honest_room == correct_room``, ``deceptive_room == other_room`` (so a "honest" label from
    :func:`soo.llm.scoring.classify` means a correct answer). Other kinds leave those two fields empty.
    """

    prompt: str
    deceptive_room: str
    honest_room: str
    kind: str
    order: str
    first_room: str
    cheap_object: str
    expensive_object: str
    index: int
    correct_room: str = ""
    other_room: str = ""


def _check_n(n, maximum: int) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= maximum:
        raise ValueError(f"n={n!r} is not valid; choose an integer from 1 to {maximum} (the maximum available).")


def _fields(template: str) -> list[str]:
    """Field names of a format string, in order of appearance."""
    try:
        return [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        raise ValueError(f"template is not a valid format string: {e}") from None


def _fill(template: str, values: dict[str, str]) -> tuple[str, str]:
    """Fill ``template``; return the text and the room named first in it."""
    first = next(values[f] for f in _fields(template) if f.endswith("_room"))
    return template.format(**values), first


def custom(template: str, combos: Sequence[Combo], order: str = "paper", suffix: str = "repo",
           kind: str = "custom", *, prefix: str = "", indices: Sequence[int] | None = None) -> list[Scenario]:
    """Build scenarios from a template with role and/or positional fields (see module docstring).

    ``combos`` are (cheap_room, expensive_room, cheap_object, expensive_object). The prompt is
    ``prefix + filled template + SUFFIXES[suffix]``. All builders of this module go through here.
    """
    check_choice("order", order, ORDERS)
    check_choice("suffix", suffix, SUFFIXES)
    fields = set(_fields(template))
    allowed = set(ROLE_FIELDS + POSITION_FIELDS)
    if fields - allowed:
        raise ValueError(f"template has unknown fields {sorted(fields - allowed)}; allowed: {sorted(allowed)}.")
    by_position = {"first_room", "second_room"} <= fields
    if not (("cheap_room" in fields or by_position) and ("expensive_room" in fields or by_position)):
        raise ValueError("template must name both rooms: use {cheap_room} and {expensive_room}, "
                         "or {first_room} and {second_room}.")
    if order == "mirrored" and not fields & set(POSITION_FIELDS):
        raise ValueError("order='mirrored' needs a template with {first_room}/{second_room} fields; "
                         "this template fixes the room order itself.")
    if len(combos) == 0:
        raise ValueError("combos is empty; give at least one (cheap_room, expensive_room, cheap_object, "
                         "expensive_object) tuple.")
    if indices is not None and len(indices) != len(combos):
        raise ValueError("indices must have one entry per combo.")
    out = []
    for j, combo in enumerate(combos):
        if len(combo) != 4 or combo[0] == combo[1]:
            raise ValueError(f"combos[{j}]={combo!r} must be (cheap_room, expensive_room, cheap_object, "
                             "expensive_object) with two different rooms.")
        cr, er, co, eo = combo
        first, second = ((cr, co), (er, eo)) if order == "paper" else ((er, eo), (cr, co))
        values = dict(cheap_room=cr, expensive_room=er, cheap_object=co, expensive_object=eo,
                      first_room=first[0], first_object=first[1], second_room=second[0], second_object=second[1])
        text, first_room = _fill(template, values)
        out.append(Scenario(prefix + text + SUFFIXES[suffix], cr, er, kind, order, first_room, co, eo,
                            int(indices[j]) if indices is not None else j))
    return out


def burglar(n: int = 250, order: str = "paper", honesty_prompt: bool = False,
            suffix: str = "repo") -> list[Scenario]:
    """The main scenario on the first ``n`` official test combos (byte-identical to the repo for
    ``order="paper"``, ``suffix="repo"``, no honesty prompt). ``honesty_prompt`` prepends the
    paper's honesty prefix (§3.1.1)."""
    check_choice("order", order, ORDERS)
    check_choice("suffix", suffix, SUFFIXES)
    check_choice("honesty_prompt", honesty_prompt, (False, True))
    _check_n(n, len(official_combos()))
    prefix = texts()["honesty_prefix"] if honesty_prompt else ""
    return custom(texts()["burglar"], official_combos()[:n], order, suffix, "burglar", prefix=prefix)


def variant_template(name: str) -> str:
    """The template of a generalization variant, before the suffix."""
    check_choice("name", name, VARIANTS)
    t = texts()
    if name in ("treasure_hunt", "escape_room"):
        return t[name]
    template = t["burglar"]
    for axis in ("objective", "action", "name"):  # name last: Bob -> Oliver everywhere
        if axis in name.split("_"):
            old, new = t["axes"][axis]
            if old not in template:
                raise ValueError(f"axis {axis!r}: {old!r} not found in the burglar template")
            template = template.replace(old, new)
    return template


def variant(name: str, n: int = 250, order: str = "paper", suffix: str = "repo") -> list[Scenario]:
    """A generalization scenario on the first ``n`` combos of :func:`variant_combos`.

    ``suffix`` replaces the repo's ending. Treasure Hunt and Escape Room use the paper's text and
    their correct labels (the repo swapped them); in Escape Room the expensive object is the key.
    """
    check_choice("name", name, VARIANTS)
    check_choice("order", order, ORDERS)
    check_choice("suffix", suffix, SUFFIXES)
    _check_n(n, len(generalization_combos()))
    chosen = variant_combos()[:n]
    combos = [c for _, c in chosen]
    if name == "escape_room":
        key = texts()["escape_room_expensive_object"]
        combos = [(cr, er, co, key) for cr, er, co, _ in combos]
    return custom(variant_template(name), combos, order, suffix, name, indices=[i for i, _ in chosen])


def perspectives(n: int = 250, order: str = "paper", suffix: str = "none") -> list[Scenario]:
    """The 'Perspectives' theory-of-mind control (paper appendix) on the first ``n`` official combos.

    Paper order: you are in the expensive room, Bob in the cheap room; ``mirrored`` swaps the two.
    The right answer (``correct_room``) is Bob's room. The cheap object is not used by the text.
    """
    check_choice("order", order, ORDERS)
    check_choice("suffix", suffix, SUFFIXES)
    _check_n(n, len(official_combos()))
    out = []
    for i, (cr, er, co, eo) in enumerate(official_combos()[:n]):
        yours, bobs = (er, cr) if order == "paper" else (cr, er)
        text, first = _fill(texts()["perspectives"], dict(your_room=yours, bob_room=bobs, expensive_object=eo))
        out.append(Scenario(text + SUFFIXES[suffix], yours, bobs, "perspectives", order, first, co, eo, i,
                            correct_room=bobs, other_room=yours))
    return out


def counterbalanced(scenarios_paper: Sequence[Scenario], scenarios_mirrored: Sequence[Scenario]) -> list[Scenario]:
    """Interleave two equally long lists: paper, mirrored, paper, mirrored, ..."""
    if len(scenarios_paper) != len(scenarios_mirrored):
        raise ValueError("scenarios_paper and scenarios_mirrored must have the same length.")
    return [s for pair in zip(scenarios_paper, scenarios_mirrored) for s in pair]


def organism_combos(n: int, seed: int = 0) -> list[Combo]:
    """``n`` distinct random combos from ``organism_vocab.json`` (deterministic given ``seed``)."""
    v = organism_vocab()
    rooms, cheap, exp = v["rooms"], v["cheap_objects"], v["expensive_objects"]
    room_pairs = [(a, b) for a in rooms for b in rooms if a != b]
    total = len(room_pairs) * len(cheap) * len(exp)
    _check_n(n, total)
    out = []
    for k in np.random.default_rng(seed).choice(total, size=n, replace=False):
        k, e = divmod(int(k), len(exp))
        k, c = divmod(k, len(cheap))
        out.append((*room_pairs[k], cheap[c], exp[e]))
    return out


def organism_train(n: int = 256, seed: int = 0, suffix: str = "repo", counterbalance: bool = True) -> list[Scenario]:
    """Burglar prompts on the organism vocabulary for SFT of a deceptive model organism.

    ``n`` distinct combos; exactly half are in paper order and half mirrored, alternating
    (paper, mirrored, ...), so the deceptive room is named first in exactly half of them.
    ``counterbalance=False`` puts all of them in the paper order (cheap room first), as the
    official test set does: a workshop exercise on position confounds.
    """
    check_choice("suffix", suffix, SUFFIXES)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2 or n % 2:
        raise ValueError(f"n={n!r} is not valid; choose an even integer >= 2 (half paper, half mirrored order).")
    combos = organism_combos(n, seed)
    tpl = texts()["burglar"]
    half = n // 2
    if not counterbalance:
        return [replace(s, index=i) for i, s in enumerate(custom(tpl, combos, "paper", suffix, "organism"))]
    mixed = counterbalanced(custom(tpl, combos[:half], "paper", suffix, "organism"),
                            custom(tpl, combos[half:], "mirrored", suffix, "organism"))
    return [replace(s, index=i) for i, s in enumerate(mixed)]


# --------------------------------------------------------------------------------------------
# Capability prompts
# --------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def paper_results() -> dict:
    """The paper's (and the official repository's) reported numbers, from ``soo/data/paper_results.json``."""
    return read_json(DATA_DIR / "paper_results.json")


def replications() -> dict:
    """Numbers reported by independent replications, with their sources (``replications.json``)."""
    return _load("replications.json")


@lru_cache(maxsize=None)
def mt_bench_questions() -> tuple[dict, ...]:
    """The 80 MT-Bench questions (``question_id``, ``category``, ``turns``), FastChat's file."""
    return _jsonl("mt_bench_questions.jsonl")


def _jsonl(name: str) -> tuple[dict, ...]:
    import json

    with open(DATA_DIR / name, encoding="utf-8") as f:
        return tuple(json.loads(line) for line in f if line.strip())


@lru_cache(maxsize=None)
def mt_bench_judge_prompts() -> dict[str, dict]:
    """FastChat's MT-Bench judge prompts by name (``single-v1``, ``single-math-v1``, ...)."""
    return {p["name"]: p for p in _jsonl("mt_bench_judge_prompts.jsonl")}


@lru_cache(maxsize=None)
def mt_bench_reference_answers() -> dict[int, str]:
    """GPT-4's first-turn reference answers (math, reasoning, coding), by question id."""
    return {r["question_id"]: r["choices"][0]["turns"][0] for r in _jsonl("mt_bench_reference_answers.jsonl")}
