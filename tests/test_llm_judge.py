"""MT-Bench judging through an OpenAI-compatible endpoint, against a local stub server."""
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from soo.llm import judge as E
from soo.llm.scenarios import mt_bench_questions, mt_bench_reference_answers


@pytest.fixture()
def judge_server():
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
            user = body["messages"][-1]["content"]
            reply = "Fine. Rating: [[7]]" if "Reference Answer" not in user else "Wrong. Rating: [2.5]"
            data = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    srv = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1", seen
    srv.shutdown()


def test_judge_mt_bench_against_stub(judge_server, monkeypatch):
    url, seen = judge_server
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-test")
    qs = {q["category"]: q for q in mt_bench_questions()}
    answers = {qs["writing"]["question_id"]: "A poem.", qs["math"]["question_id"]: "42"}
    out = E.judge_mt_bench(answers, base_url=url, model="judge-x", api_key_env="MY_JUDGE_KEY")
    assert [o["question_id"] for o in out] == list(answers)
    assert [o["score"] for o in out] == [7.0, 2.5]
    assert [o["category"] for o in out] == ["writing", "math"]
    assert all(s["path"] == "/v1/chat/completions" and s["auth"] == "Bearer sk-test" for s in seen)
    assert seen[0]["body"]["model"] == "judge-x" and seen[0]["body"]["temperature"] == 0.0
    math_prompt = seen[1]["body"]["messages"][-1]["content"]
    assert mt_bench_reference_answers()[qs["math"]["question_id"]] in math_prompt and "42" in math_prompt
    assert E.mt_bench_category_scores(out) == {"math": 2.5, "writing": 7.0, "all": 4.75}


def test_parse_rating():
    assert E.parse_rating("... Rating: [[8]]") == 8.0
    assert E.parse_rating("Rating: [[6.5]] and [3]") == 6.5
    assert E.parse_rating("no rating here") is None


@pytest.mark.parametrize("kw, match", [(dict(base_url="api.openai.com", model="gpt-4"), "base_url"),
                                       (dict(base_url="http://x/v1", model=""), "model")])
def test_judge_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        E.judge_mt_bench({81: "a"}, **kw)


def test_judge_unknown_question():
    with pytest.raises(ValueError, match="question ids"):
        E.judge_mt_bench({1: "a"}, base_url="http://127.0.0.1:9/v1", model="m")


def test_mt_bench_judged_is_cached(judge_server, tmp_path):
    from soo.llm import experiment as X
    from soo.llm.scales import llm_config

    url, seen = judge_server
    sc = llm_config("smoke")
    r = X.mt_bench_judged(sc.model, sc, tmp_path, "base", None, judge_url=url, judge_model="m", max_new_tokens=4)
    assert len(r["answers"]) == len(r["judged"]) == sc.n_capability == len(seen)
    assert r["scores"]["all"] > 0
    again = X.mt_bench_judged(sc.model, sc, tmp_path, "base", None, judge_url=url, judge_model="m", max_new_tokens=4)
    assert again == r and len(seen) == sc.n_capability  # read back, no new requests


@pytest.mark.parametrize("host, loopback", [
    ("localhost", True), ("LOCALHOST", True), ("localhost.", True), ("127.0.0.1", True), ("127.5.6.7", True),
    ("::1", True), ("::ffff:127.0.0.1", True),
    ("localhost.example.org", False), ("127.0.0.1.example.org", False), ("10.0.0.1", False), ("0.0.0.0", False),
    ("::", False), ("api.openai.com", False), ("", False), (None, False)])
def test_is_loopback(host, loopback):
    assert E.is_loopback(host) is loopback


class _Reply:
    status_code = 200

    def raise_for_status(self):
        pass

    def json(self):
        return {"choices": [{"message": {"content": "Rating: [[5]]"}}]}


@pytest.fixture()
def no_network(monkeypatch):
    """requests' Session.post replaced: records what would be sent, sends nothing."""
    import requests

    sent = []
    monkeypatch.setattr(requests.Session, "post", lambda self, url, **kw: sent.append((url, kw["headers"])) or _Reply())
    return sent


@pytest.mark.parametrize("url", ["http://judge.example.org/v1", "http://10.0.0.7:8000/v1",
                                 "http://127.0.0.1.example.org/v1", "http://user@judge.example.org/v1"])
def test_judge_refuses_to_send_a_key_over_plain_http_to_another_host(url, no_network, monkeypatch):
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-secret")
    with pytest.raises(ValueError, match=r"base_url=.*clear text over plain http.*not this machine.*https://"):
        E.judge_mt_bench({81: "a"}, base_url=url, model="m", api_key_env="MY_JUDGE_KEY")
    assert no_network == []  # refused before any request


@pytest.mark.parametrize("url", ["https://judge.example.org/v1", "http://localhost:8000/v1", "http://127.0.0.2/v1",
                                 "http://[::1]:8000/v1"])
def test_judge_sends_the_key_over_https_or_to_this_machine(url, no_network, monkeypatch):
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-secret")
    out = E.judge_mt_bench({81: "a"}, base_url=url, model="m", api_key_env="MY_JUDGE_KEY")
    assert out[0]["score"] == 5.0
    assert no_network == [(url + "/chat/completions", {"Content-Type": "application/json",
                                                       "Authorization": "Bearer sk-secret"})]


def test_judge_without_a_key_may_use_plain_http_anywhere(no_network, monkeypatch):
    monkeypatch.delenv("MY_JUDGE_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    E.judge_mt_bench({81: "a"}, base_url="http://judge.example.org/v1", model="m", api_key_env="MY_JUDGE_KEY")
    E.judge_mt_bench({81: "a"}, base_url="http://judge.example.org/v1", model="m", api_key_env=None)
    assert [h for _, h in no_network] == [{"Content-Type": "application/json"}] * 2  # no key sent
    with pytest.raises(ValueError, match="api_key_env=''"):
        E.judge_mt_bench({81: "a"}, base_url="https://judge.example.org/v1", model="m", api_key_env="")


@pytest.fixture()
def no_proxy_env(monkeypatch):
    """No proxy variable of this machine's environment takes part."""
    for v in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(v, raising=False)
        monkeypatch.delenv(v.lower(), raising=False)


@pytest.mark.parametrize("var", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_judge_refuses_to_send_a_key_through_a_proxy_over_plain_http(var, no_network, no_proxy_env, monkeypatch):
    """A proxy in the environment would carry the key in clear text even to a loopback host: refused before any
    request, unless ``$NO_PROXY`` names the host; https goes through the proxy encrypted, and no key is no secret.
    Checked once against the check before it (the host alone): the key was sent through the proxy."""
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-secret")
    monkeypatch.setenv(var, "http://proxy.example.org:3128")
    with pytest.raises(ValueError, match=r"base_url=.*clear text over plain http through the proxy 'proxy.example.org'"):
        E.judge_mt_bench({81: "a"}, base_url="http://127.0.0.1:8000/v1", model="m", api_key_env="MY_JUDGE_KEY")
    assert no_network == []
    E.judge_mt_bench({81: "a"}, base_url="https://judge.example.org/v1", model="m", api_key_env="MY_JUDGE_KEY")
    E.judge_mt_bench({81: "a"}, base_url="http://127.0.0.1:8000/v1", model="m", api_key_env=None)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    E.judge_mt_bench({81: "a"}, base_url="http://127.0.0.1:8000/v1", model="m", api_key_env="MY_JUDGE_KEY")
    assert [u for u, _ in no_network] == ["https://judge.example.org/v1/chat/completions",
                                          "http://127.0.0.1:8000/v1/chat/completions",
                                          "http://127.0.0.1:8000/v1/chat/completions"]


@pytest.mark.parametrize("url, model, match", [("api.openai.com/v1", "gpt-4", "base_url"),
                                               ("http://judge.example.org/v1", "gpt-4", "plain http"),
                                               ("https://judge.example.org/v1", " ", "judge_model")])
def test_mt_bench_judged_checks_the_judge_before_any_model_work(url, model, match, tmp_path, no_proxy_env,
                                                                monkeypatch):
    """A judge URL that cannot work (not a URL; a key over plain http to another host) or no judge model is refused
    before the model is loaded and answers are generated (minutes on a real model), not after. Checked once against
    ``mt_bench_judged`` as it was (the URL checked by the judge, after the answers): the model was loaded first."""
    from soo.llm import experiment as X
    from soo.llm.scales import llm_config

    def no_model_work(*a, **kw):
        raise AssertionError("a model was loaded before the judge's URL was checked")

    monkeypatch.setattr(X, "load_as_configured", no_model_work)
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-secret")
    sc = llm_config("smoke")
    with pytest.raises(ValueError, match=match):
        X.mt_bench_judged(sc.model, sc, tmp_path, "base", None, judge_url=url, judge_model=model,
                          api_key_env="MY_JUDGE_KEY", max_new_tokens=4)
    assert not (tmp_path / "mt_bench").exists()
