"""The optional MT-Bench judge: FastChat's single-answer grading by a user-supplied OpenAI-compatible model.

Only this module talks to a network, and only when a notebook is given ``judge_url``; it grades the answers it is
handed and writes nothing to disk (:func:`soo.llm.experiment.mt_bench_judged` generates the answers and caches).
"""
from __future__ import annotations

import ipaddress
import re
from typing import Sequence
from urllib.parse import urlsplit

NEED_REFERENCE = ("math", "reasoning", "coding")
"""MT-Bench categories judged against GPT-4's reference answer (FastChat's NEED_REF_CATS)."""
_RATING = (re.compile(r"\[\[(\d+\.?\d*)\]\]"), re.compile(r"\[(\d+\.?\d*)\]"))
def judge_messages(question: dict, answer: str) -> list[dict]:
    """FastChat's single-answer grading prompt for one first-turn answer (``single-v1``, or
    ``single-math-v1`` with the reference answer for math, reasoning and coding)."""
    from .scenarios import mt_bench_judge_prompts, mt_bench_reference_answers

    kw = {"question": question["turns"][0], "answer": answer}
    if question["category"] in NEED_REFERENCE:
        jp = mt_bench_judge_prompts()["single-math-v1"]
        kw["ref_answer_1"] = mt_bench_reference_answers()[question["question_id"]]
    else:
        jp = mt_bench_judge_prompts()["single-v1"]
    return [{"role": "system", "content": jp["system_prompt"]}, {"role": "user", "content": jp["prompt_template"].format(**kw)}]


def parse_rating(judgment: str) -> float | None:
    """The ``[[rating]]`` in a judge's reply (FastChat's rule, falling back to ``[rating]``);
    ``None`` when there is none."""
    for pat in _RATING:
        m = pat.search(judgment)
        if m:
            return float(m.group(1))
    return None


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (a URL's host name) is this machine: ``localhost``, 127.0.0.0/8 or ::1."""
    if not host:
        return False
    host = host.lower().rstrip(".")
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:  # a name other than localhost: where it points is not this module's to trust
        return False
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


def http_proxy_for(url: str) -> str | None:
    """The proxy ``requests`` would send ``url`` through, read from the environment as it reads it (``$HTTP_PROXY``,
    ``$ALL_PROXY``, lower case too, less the hosts of ``$NO_PROXY``), or None."""
    from requests.utils import get_environ_proxies, select_proxy

    return select_proxy(url, get_environ_proxies(url))


def check_key_transport(base_url: str, api_key_env: str | None, key: str | None) -> None:
    """A ``ValueError`` naming ``base_url`` when an API key would go over plain http to a host other than this
    machine, or through a proxy (even to this machine: the proxy, and anyone on the way to it, could read it);
    https, a loopback host reached directly, or no key are fine."""
    parts = urlsplit(base_url)
    if not key or parts.scheme != "http":
        return
    if not is_loopback(parts.hostname):
        raise ValueError(f"base_url={base_url!r}: the API key in ${api_key_env} would be sent in clear text over "
                         f"plain http to {parts.hostname!r}, which is not this machine. Use an https:// URL, a "
                         "server on localhost / 127.0.0.1 / [::1], or send no key (api_key_env=None, or unset "
                         f"${api_key_env}) for a server that needs none.")
    proxy = http_proxy_for(base_url)
    if proxy:
        raise ValueError(f"base_url={base_url!r}: the API key in ${api_key_env} would be sent in clear text over "
                         f"plain http through the proxy {urlsplit(proxy).hostname!r} ($HTTP_PROXY / $ALL_PROXY in "
                         f"the environment). Add {parts.hostname!r} to $NO_PROXY, unset the proxy, or use https://.")


def check_judge_url(base_url, api_key_env: str | None = "OPENAI_API_KEY") -> None:
    """Everything about the judge's endpoint that can be checked without sending anything: an http(s) URL, the name of
    the key's environment variable, and the key's way there (:func:`check_key_transport`). A ``ValueError`` naming
    what is wrong; :func:`soo.llm.experiment.mt_bench_judged` calls it before it loads a model."""
    import os

    if not isinstance(base_url, str) or not re.match(r"^https?://\S+$", base_url):
        raise ValueError(f"base_url={base_url!r} must be an http(s) URL of an OpenAI-compatible API, e.g. "
                         "'https://api.openai.com/v1'")
    if api_key_env is not None and (not isinstance(api_key_env, str) or not api_key_env.strip()):
        raise ValueError(f"api_key_env={api_key_env!r}: name the environment variable holding the API key, e.g. "
                         "'OPENAI_API_KEY', or None to send no key")
    check_key_transport(base_url, api_key_env, os.environ.get(api_key_env) if api_key_env else None)


def judge_mt_bench(answers: dict, *, base_url: str, model: str, api_key_env: str | None = "OPENAI_API_KEY",
                   timeout: float = 120.0, max_tokens: int = 2048, retries: int = 3) -> list[dict]:
    """Grade first-turn MT-Bench answers (1-10) with an OpenAI-compatible chat endpoint.

    ``answers``: ``{question_id: answer}``. ``base_url``: the endpoint's base, e.g.
    ``"https://api.openai.com/v1"`` or a local vLLM server; ``model``: the judge (the paper: GPT-4).
    The API key is read from the environment variable ``api_key_env`` (``None``: send no key; not needed by local
    servers) and never stored; it is sent only over https or to a loopback host (localhost, 127.0.0.0/8, ::1) reached
    without a proxy: plain http to another host or through a proxy with a key raises ``ValueError`` before any
    request (:func:`check_judge_url`). Greedy (temperature 0), as
    FastChat. One record per answer: question_id, category, score (``None`` when the reply holds no rating) and the
    judge's full reply.
    """
    import os
    import time

    import requests

    check_judge_url(base_url, api_key_env)
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"model={model!r}: name the judge model, e.g. 'gpt-4'")
    from .scenarios import mt_bench_questions

    questions = {q["question_id"]: q for q in mt_bench_questions()}
    unknown = sorted(set(answers) - set(questions))
    if unknown or not answers:
        raise ValueError(f"answers: question ids must be MT-Bench ids 81-160 (got unknown {unknown[:5]})"
                         if unknown else "answers is empty")
    key = os.environ.get(api_key_env) if api_key_env else None
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    url = base_url.rstrip("/") + "/chat/completions"
    out = []
    with requests.Session() as session:
        for qid, ans in answers.items():
            q = questions[qid]
            body = {"model": model, "messages": judge_messages(q, ans), "temperature": 0.0, "max_tokens": max_tokens}
            for attempt in range(retries):
                try:
                    r = session.post(url, json=body, headers=headers, timeout=timeout)
                    r.raise_for_status()
                    text = r.json()["choices"][0]["message"]["content"]
                    break
                except (requests.RequestException, KeyError, IndexError, ValueError) as e:
                    if attempt == retries - 1:
                        raise RuntimeError(f"judge request to {url} failed for question {qid}: {e}") from e
                    time.sleep(2 ** attempt)
            out.append({"question_id": qid, "category": q["category"], "score": parse_rating(text), "judgment": text})
    return out


def mt_bench_category_scores(judged: Sequence[dict]) -> dict[str, float]:
    """Mean score per MT-Bench category and overall (``"all"``), ignoring unparsed ratings."""
    import pandas as pd

    df = pd.DataFrame([j for j in judged if j["score"] is not None])
    if df.empty:
        return {}
    return {**df.groupby("category")["score"].mean().to_dict(), "all": float(df["score"].mean())}
