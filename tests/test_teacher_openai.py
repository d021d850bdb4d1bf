"""The ``openai`` teacher against a scripted, fault-injecting local server and a real vLLM server.

The fault server (stdlib ``http.server`` on 127.0.0.1, ephemeral port) answers each attempt of
each request from a script keyed by the request's prompt text, and records every attempt's
start/end time, path, body and headers, plus the largest number of requests in flight.
Everything is bounded: few requests, short timeouts, hangs of a few seconds at most.
"""

from __future__ import annotations

import base64
import email.utils
import io
import json
import logging
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import httpx2
import plugin_majority
import pytest
from helpers import loop_config, read_lines, write_config
from pydantic import BaseModel, ValidationError
from rich.console import Console

from distilforge.engine.api.errors import DistilforgeError, TeacherUnavailable
from distilforge.engine.api.toolkit.secrets import secret_forms
from distilforge.engine.build import Engine
from distilforge.engine.runner import start_run
from distilforge.plugins.teachers.openai_config import register_teachers
from distilforge.plugins.teachers.openai_response import parse_retry_after
from distilforge.plugins.teachers.openai_retry import Backoff
from distilforge.plugins.teachers.openai_teacher import OpenAITeacher, OpenAITeacherConfig
from distilforge.schemas import ChatMessage, Completion, SamplingParams, TeacherRequest
from distilforge.testing.vllm_server import VLLMServer

# --------------------------------------------------------------------------- the fault server

# An action is a tuple: ("ok", delay_s) | ("429", retry_after_header | None)
# (the Retry-After value may be a callable, evaluated when the answer is sent)
# | ("status", code, body, retry_after_header | None) | ("garbage",) | ("hang", seconds)
# | ("few",) (one choice fewer than asked).
Action = tuple[Any, ...]
OK: Action = ("ok", 0.0)


@dataclass
class Attempt:
    key: str
    path: str
    body: dict[str, Any]
    headers: httpx.Headers  # names are case-insensitive (the SDK sends them in lower case)
    action: Action
    start: float
    end: float = 0.0


@dataclass
class FaultServer:
    """A scripted OpenAI-compatible server: ``script[key][k]`` answers the k-th attempt of ``key``.

    The last action of a script repeats; keys without a script always succeed.
    """

    script: dict[str, list[Action]] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    inflight: int = 0
    max_inflight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    base_url: str = ""
    default: Action = OK  # the action for keys without a script

    def next_action(self, key: str) -> tuple[Action, int]:
        done = sum(1 for a in self.attempts if a.key == key)
        actions = self.script.get(key) or [self.default]
        return actions[min(done, len(actions) - 1)], done

    def tries(self, key: str) -> list[Attempt]:
        with self.lock:
            return [a for a in self.attempts if a.key == key]


def _key(body: dict[str, Any]) -> str:
    if "messages" in body:
        return str(body["messages"][-1]["content"])
    return str(body.get("prompt"))


def _ok_body(path: str, body: dict[str, Any], key: str, choices: int) -> dict[str, Any]:
    chat = path.endswith("/chat/completions")
    out: list[dict[str, Any]] = []
    for i in range(choices):
        text = f"answer:{key}:{i}"
        choice: dict[str, Any] = {"index": i, "finish_reason": "stop"}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
            if body.get("logprobs"):
                choice["logprobs"] = {
                    "content": [
                        {
                            "token": tok,
                            "logprob": -0.5,
                            "top_logprobs": [{"token": tok, "logprob": -0.5}],
                        }
                        for tok in ("answer", ":", key)
                    ]
                }
        else:
            choice["text"] = text
            if body.get("logprobs") is not None:
                choice["logprobs"] = {
                    "tokens": ["answer", ":"],
                    "token_logprobs": [-0.25, -1.0],
                    "top_logprobs": [{"answer": -0.25}, {":": -1.0}],
                    "text_offset": [0, 6],
                }
        out.append(choice)
    return {
        "id": "x",
        "object": "chat.completion" if chat else "text_completion",
        "model": body.get("model"),
        "choices": out,
        "usage": {"prompt_tokens": 11, "completion_tokens": 4 * choices, "total_tokens": 0},
    }


def _handler(server: FaultServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def _send(self, code: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            body = json.loads(raw)
            key = _key(body)
            with server.lock:
                action, _ = server.next_action(key)
                attempt = Attempt(key, self.path, body, httpx.Headers(self.headers.items()), action, time.monotonic())
                server.attempts.append(attempt)
                server.inflight += 1
                server.max_inflight = max(server.max_inflight, server.inflight)
            try:
                self._answer(action, body, key)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout): expected for "hang"
            finally:
                with server.lock:
                    server.inflight -= 1
                    attempt.end = time.monotonic()

        def _answer(self, action: Action, body: dict[str, Any], key: str) -> None:
            kind = action[0]
            n = int(body.get("n", 1))
            if kind == "ok":
                time.sleep(action[1])
                self._send(200, json.dumps(_ok_body(self.path, body, key, n)).encode())
            elif kind == "few":
                self._send(200, json.dumps(_ok_body(self.path, body, key, n - 1)).encode())
            elif kind == "429":
                hint = action[1]() if callable(action[1]) else action[1]
                headers = {"Retry-After": hint} if hint is not None else {}
                self._send(429, b'{"error": "slow down"}', headers)
            elif kind == "status":
                headers = {"Retry-After": action[3]} if len(action) > 3 and action[3] else {}
                self._send(action[1], action[2].encode(), headers)
            elif kind == "empty":  # choices without any content or finish reason
                choices = [{"index": i, "message": {"role": "assistant"}} for i in range(n)]
                self._send(200, json.dumps({"choices": choices}).encode())
            elif kind == "garbage":
                self._send(200, b'{"choices": [ this is not json')
            elif kind == "hang":
                time.sleep(action[1])
                self._send(200, json.dumps(_ok_body(self.path, body, key, n)).encode())
            else:  # pragma: no cover - a broken script
                raise AssertionError(f"unknown action {action}")

    return Handler


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    state = FaultServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def make_teacher(server: FaultServer, **overrides: Any) -> OpenAITeacher:
    settings: dict[str, Any] = {
        "base_url": server.base_url,
        "model": "scripted",
        "api_key_env": None,
        "concurrency": 4,
        "timeout_s": 2.0,
        "max_retries": 3,
        "backoff_base_s": 0.05,
        "backoff_max_s": 0.2,
    }
    settings.update(overrides)
    return OpenAITeacher(OpenAITeacherConfig(**settings))


def chat(text: str, **sampling: Any) -> TeacherRequest:
    return TeacherRequest(
        id=f"id-{text}",
        messages=[ChatMessage(role="user", content=text)],
        sampling=SamplingParams(**sampling),
    )


def plain(text: str, **sampling: Any) -> TeacherRequest:
    return TeacherRequest(id=f"id-{text}", prompt=text, sampling=SamplingParams(**sampling))


def collect(teacher: OpenAITeacher, requests: list[TeacherRequest]) -> list[Completion]:
    return list(teacher.sample(requests))


def assert_exactly_once(completions: list[Completion], requests: list[TeacherRequest]) -> None:
    got = Counter((c.request_id, c.sample_index) for c in completions)
    want = Counter((r.id, i) for r in requests for i in range(r.sampling.n))
    assert got == want


def by_id(completions: list[Completion]) -> dict[str, Completion]:
    return {c.request_id: c for c in completions if c.sample_index == 0}


# --------------------------------------------------------------------------- registration, config


def test_registers_openai_teacher() -> None:
    registered: list[tuple[type, Any]] = []
    register_teachers(register=lambda cls, factory: registered.append((cls, factory)))
    [(config_cls, factory)] = registered
    assert config_cls is OpenAITeacherConfig
    teacher = factory(OpenAITeacherConfig(model="tiny", base_url="http://127.0.0.1:8123/v1/"))
    assert isinstance(teacher, OpenAITeacher)
    assert teacher.model_id == "openai:127.0.0.1/tiny"
    assert teacher.config.base_url == "http://127.0.0.1:8123/v1"


def test_config_never_echoes_suspected_secrets() -> None:
    class Outer(BaseModel):  # like the run config: the teacher config is a nested field
        teacher: OpenAITeacherConfig

    secret = "sk-live-DO-NOT-LEAK-123"
    for bad in (
        {"api_key": secret},
        {"api_key_env": secret},
        {"base_url": f"https://user:{secret}@api.example.com/v1"},
        {"base_url": f"https://api.example.com/v1?key={secret}"},
    ):
        for validate in (
            lambda b=bad: OpenAITeacherConfig(model="m", **b),
            lambda b=bad: Outer(teacher={"model": "m", **b}),
        ):
            with pytest.raises(ValidationError) as info:
                validate()
            assert secret not in str(info.value)
            assert secret not in repr(info.value.errors())


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after(httpx.Headers({"Retry-After": "3"})) == 3.0
    assert parse_retry_after(httpx.Headers({"Retry-After": "1.5"})) == 1.5
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "250", "Retry-After": "9"})) == 0.25
    now = time.time()
    date = email.utils.formatdate(now + 10, usegmt=True)
    assert 8.5 <= (parse_retry_after(httpx.Headers({"Retry-After": date}), now=now) or 0) <= 10.0
    past = email.utils.formatdate(now - 100, usegmt=True)
    assert parse_retry_after(httpx.Headers({"Retry-After": past}), now=now) == 0.0
    assert parse_retry_after(httpx.Headers({"Retry-After": "soon"})) is None
    assert parse_retry_after(httpx.Headers({})) is None


# --------------------------------------------------------------------------- request mapping


def test_chat_and_plain_requests_map_to_the_right_endpoints(fault_server: FaultServer) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    requests = [
        chat("c1", temperature=0.3, top_p=0.9, max_tokens=7, stop=["\n"], logprobs=2),
        chat("c2", json_schema=schema, n=2),
        plain("p1", logprobs=1, choice=["yes", "no"]),
        plain("p2", prompt_logprobs=1),
    ]
    completions = collect(make_teacher(fault_server), requests)
    assert_exactly_once(completions, requests)
    assert all(c.ok for c in completions)

    sent = {a.key: a for a in fault_server.attempts}
    assert sent["c1"].path == "/v1/chat/completions"
    assert sent["p1"].path == "/v1/completions"
    c1 = sent["c1"].body
    assert c1["model"] == "scripted"
    assert c1["messages"] == [{"role": "user", "content": "c1"}]
    assert (c1["temperature"], c1["top_p"], c1["max_tokens"], c1["n"]) == (0.3, 0.9, 7, 1)
    assert c1["stop"] == ["\n"]
    assert (c1["logprobs"], c1["top_logprobs"]) == (True, 2)
    assert "response_format" not in c1 and "structured_outputs" not in c1
    c2 = sent["c2"].body
    assert c2["n"] == 2
    assert c2["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }
    p1 = sent["p1"].body
    assert p1["prompt"] == "p1" and p1["logprobs"] == 1 and "top_logprobs" not in p1
    assert p1["structured_outputs"] == {"choice": ["yes", "no"]}
    assert sent["p2"].body["prompt_logprobs"] == 1

    got = {(c.request_id, c.sample_index): c for c in completions}
    first = got[("id-c1", 0)]
    assert first.text == "answer:c1:0" and first.finish_reason == "stop"
    assert first.prompt_tokens == 11 and first.completion_tokens == 3  # from the logprobs
    assert first.logprobs is not None and [t.token for t in first.logprobs] == ["answer", ":", "c1"]
    assert first.logprobs[0].top == {"answer": -0.5}
    # n=2 from the server: usage (8 completion tokens) is split over the choices
    assert [got[("id-c2", i)].text for i in (0, 1)] == ["answer:c2:0", "answer:c2:1"]
    assert [got[("id-c2", i)].completion_tokens for i in (0, 1)] == [4, 4]
    assert got[("id-c2", 0)].logprobs is None
    p1c = got[("id-p1", 0)]
    assert p1c.logprobs is not None and [t.logprob for t in p1c.logprobs] == [-0.25, -1.0]
    assert all(c.model == "openai:127.0.0.1/scripted" for c in completions)


def test_choice_param_for_older_vllm(fault_server: FaultServer) -> None:
    teacher = make_teacher(fault_server, choice_param="guided_choice", extra_body={"top_k": 5})
    collect(teacher, [chat("g", choice=["a", "b"])])
    body = fault_server.attempts[0].body
    assert body["guided_choice"] == ["a", "b"] and "structured_outputs" not in body
    assert body["top_k"] == 5


def test_extra_body_merges_into_structured_outputs(fault_server: FaultServer) -> None:
    extra = {"structured_outputs": {"disable_any_whitespace": True}, "top_k": 3}
    collect(make_teacher(fault_server, extra_body=extra), [chat("m", choice=["a"]), chat("k")])
    sent = {a.key: a.body for a in fault_server.attempts}
    assert sent["m"]["structured_outputs"] == {"choice": ["a"], "disable_any_whitespace": True}
    assert sent["k"]["structured_outputs"] == {"disable_any_whitespace": True}
    assert sent["k"]["top_k"] == 3


def test_fan_out_mode_sends_one_sample_per_request(fault_server: FaultServer) -> None:
    requests = [chat("f", n=3)]
    completions = collect(make_teacher(fault_server, n_mode="fan_out"), requests)
    assert_exactly_once(completions, requests)
    assert [a.body["n"] for a in fault_server.attempts] == [1, 1, 1]
    assert all(c.ok and c.text == "answer:f:0" for c in completions)


def test_missing_choices_become_error_completions(fault_server: FaultServer) -> None:
    fault_server.script["few"] = [("few",)]
    requests = [chat("few", n=3)]
    completions = collect(make_teacher(fault_server), requests)
    assert_exactly_once(completions, requests)
    errors = [c for c in completions if not c.ok]
    assert [c.sample_index for c in errors] == [2]
    assert "2 choices for n=3" in (errors[0].error or "")


# --------------------------------------------------------------------------- faults


def test_every_request_ends_answered_or_with_its_reason(fault_server: FaultServer) -> None:
    hang = ("hang", 2.5)
    fault_server.script.update(
        {
            "r429": [("429", "0.2"), OK],
            "r500": [("status", 500, '{"error": "boom"}'), ("status", 502, ""), OK],
            "garbage": [("garbage",), OK],
            "hang": [hang, OK],
            "dead500": [("status", 500, '{"error": "always"}')],
            "bad400": [("status", 400, '{"error": "bad request"}')],
            "garbage-forever": [("garbage",)],
            "hang-forever": [hang],
        }
    )
    keys = [*fault_server.script, "fine1", "fine2", "fine3"]
    requests = [chat(k, n=2 if k == "fine2" else 1) for k in keys]
    started = time.monotonic()
    completions = collect(make_teacher(fault_server, timeout_s=1.0, max_retries=2), requests)
    elapsed = time.monotonic() - started

    assert_exactly_once(completions, requests)
    result = by_id(completions)
    for key in ("r429", "r500", "garbage", "hang", "fine1", "fine2", "fine3"):
        assert result[f"id-{key}"].ok, (key, result[f"id-{key}"].error)
        assert result[f"id-{key}"].text == f"answer:{key}:0"
    assert "HTTP 500" in (result["id-dead500"].error or "")
    assert "after 3 attempts" in (result["id-dead500"].error or "")
    assert "HTTP 400" in (result["id-bad400"].error or "")
    assert "bad JSON" in (result["id-garbage-forever"].error or "")
    assert "timeout" in (result["id-hang-forever"].error or "")

    assert len(fault_server.tries("r500")) == 3
    assert len(fault_server.tries("dead500")) == 3  # 1 + max_retries
    assert len(fault_server.tries("bad400")) == 1  # a 4xx is not retried
    assert len(fault_server.tries("garbage-forever")) == 3
    assert len(fault_server.tries("hang-forever")) == 3
    assert elapsed < 10


def test_connection_refused_is_an_error_completion() -> None:
    teacher = OpenAITeacher(
        OpenAITeacherConfig(
            base_url="http://127.0.0.1:9/v1",
            model="nobody",
            api_key_env=None,
            max_retries=1,
            backoff_base_s=0.01,
            timeout_s=2,
        )
    )
    [completion] = collect(teacher, [chat("x")])
    assert not completion.ok and "connection error" in (completion.error or "")


def test_retry_after_seconds_and_http_date_are_honoured(fault_server: FaultServer) -> None:
    # An HTTP date made when the 429 is sent; whole seconds, so the client waits 1-2 s.
    def date() -> str:
        return email.utils.formatdate(time.time() + 2, usegmt=True)

    fault_server.script.update(
        {
            "secs": [("429", "1"), OK],
            "date": [("429", date), OK],
            "busy503": [("status", 503, "busy", "0.8"), OK],
        }
    )
    requests = [chat("secs"), chat("date"), chat("busy503")]
    completions = collect(make_teacher(fault_server, concurrency=1), requests)
    assert all(c.ok for c in completions)

    for key, at_least in (("secs", 1.0), ("date", 0.9), ("busy503", 0.8)):
        first, second = fault_server.tries(key)
        gap = second.start - first.end
        assert gap >= at_least - 0.02, (key, gap)
        assert gap < at_least + 5.0, (key, gap)  # generous: the machine may be busy


def test_429_cools_down_every_worker_and_spares_the_retry_budget(
    fault_server: FaultServer,
) -> None:
    fault_server.script["limited"] = [("429", "2"), OK]
    for k in range(6):
        fault_server.script[f"w{k}"] = [("ok", 0.3)]
    requests = [chat("limited")] + [chat(f"w{k}") for k in range(6)]
    # max_retries=0: a 429 must not spend the budget meant for real failures.
    completions = collect(make_teacher(fault_server, concurrency=3, max_retries=0, timeout_s=60), requests)
    assert_exactly_once(completions, requests)
    assert all(c.ok for c in completions), [c.error for c in completions]

    limited = fault_server.tries("limited")[0]
    pause_start, pause_end = limited.end, limited.end + 2.0
    with fault_server.lock:
        starts = [a.start for a in fault_server.attempts if a is not limited]
    # Without the cooldown, the three workers would start a request every ~0.1 s of the pause.
    # The window leaves 0.5 s for requests the client sent before it saw the 429.
    in_pause = [s for s in starts if pause_start + 0.5 < s < pause_end - 0.05]
    assert in_pause == [], "a worker started a request during the 429 cooldown"
    assert any(s >= pause_end - 0.05 for s in starts), "work resumed after the cooldown"


def test_rate_limit_budget_is_finite(fault_server: FaultServer) -> None:
    fault_server.script["forever429"] = [("429", "0.05")]
    fault_server.script["nohint429"] = [("429", None)]
    teacher = make_teacher(fault_server, max_rate_limit_retries=2, concurrency=1)
    completions = collect(teacher, [chat("forever429"), chat("nohint429")])
    result = by_id(completions)
    for key in ("forever429", "nohint429"):
        assert "429" in (result[f"id-{key}"].error or "")
        assert len(fault_server.tries(key)) == 3


def test_concurrency_is_bounded(fault_server: FaultServer) -> None:
    for k in range(18):
        fault_server.script[f"c{k}"] = [("ok", 0.15)]
    requests = [chat(f"c{k}") for k in range(18)]
    # A long timeout: a request the client abandons still counts on the server.
    completions = collect(make_teacher(fault_server, concurrency=3, timeout_s=60), requests)
    assert_exactly_once(completions, requests)
    assert fault_server.max_inflight == 3


def test_completions_are_yielded_as_soon_as_they_finish(fault_server: FaultServer) -> None:
    fault_server.script["slow"] = [("ok", 2.0)]
    stream = make_teacher(fault_server, timeout_s=60).sample([chat("slow"), chat("fast")])
    first = next(stream)
    first_at = time.monotonic()
    rest = list(stream)
    assert first.request_id == "id-fast"
    assert [c.request_id for c in rest] == ["id-slow"]
    # The fast answer reached the caller before the server even sent the slow one.
    assert first_at < fault_server.tries("slow")[0].end


def test_closing_the_stream_early_stops_the_workers(fault_server: FaultServer) -> None:
    for k in range(10):
        fault_server.script[f"s{k}"] = [("ok", 0.3)]
    stream = make_teacher(fault_server, concurrency=2).sample([chat(f"s{k}") for k in range(10)])
    next(stream)
    stream.close()
    time.sleep(0.4)
    alive = [t for t in threading.enumerate() if t.name == "distilforge-openai-teacher"]
    assert alive == []
    assert len(fault_server.attempts) < 10


# --------------------------------------------------------------------------- the API key


def test_api_key_is_sent_as_bearer_and_never_leaks(
    fault_server: FaultServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-test-SECRET-0123456789"
    monkeypatch.setenv("DF_TEST_OPENAI_KEY", secret)
    echo = json.dumps({"error": f"invalid key Bearer {secret}"})
    fault_server.script.update({"denied": [("status", 401, echo)], "flaky": [("status", 500, echo), OK]})
    config = OpenAITeacherConfig(
        base_url=fault_server.base_url,
        model="scripted",
        api_key_env="DF_TEST_OPENAI_KEY",
        backoff_base_s=0.01,
    )
    teacher = OpenAITeacher(config)
    caplog.set_level(logging.DEBUG)
    completions = collect(teacher, [chat("hello"), chat("denied"), chat("flaky")])

    assert all(a.headers.get("Authorization") == f"Bearer {secret}" for a in fault_server.attempts)
    result = by_id(completions)
    assert result["id-hello"].ok and result["id-flaky"].ok
    assert "HTTP 401" in (result["id-denied"].error or "")
    surfaces = [
        repr(config),
        str(config),
        json.dumps(config.model_dump(mode="json")),
        config.model_dump_json(),
        repr(teacher),
        teacher.model_id,
        caplog.text,
        *[c.model_dump_json() for c in completions],
    ]
    for text in surfaces:
        assert secret not in text
    assert "***" in (result["id-denied"].error or "")  # the echoed key was scrubbed


def test_a_key_with_a_trailing_newline_is_sent_stripped_and_no_form_of_it_leaks(
    fault_server: FaultServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    core = "sk-test-NEWLINE-0123456789"
    monkeypatch.setenv("DF_TEST_OPENAI_KEY", core + "\n")
    echoes = [
        f"bad header {('Bearer ' + core + chr(10)).encode()!r}",  # what httpx's error showed
        f"token={quote(core + chr(10), safe='')}",
        "basic " + base64.b64encode(f":{core}".encode()).decode(),
    ]
    fault_server.script.update({"denied": [("status", 401, json.dumps({"error": " | ".join(echoes)}))]})
    teacher = make_teacher(fault_server, api_key_env="DF_TEST_OPENAI_KEY")
    caplog.set_level(logging.DEBUG)
    completions = collect(teacher, [chat("hello"), chat("denied")])
    assert {a.headers.get("Authorization") for a in fault_server.attempts} == {f"Bearer {core}"}
    result = by_id(completions)
    assert result["id-hello"].ok and "HTTP 401" in (result["id-denied"].error or "")
    assert len(fault_server.tries("denied")) == 1  # a 401 is not retried
    text = caplog.text + "".join(c.model_dump_json() for c in completions)
    for form in secret_forms(core + "\n"):
        assert form not in text, form
    assert "whitespace around the API key was removed" in caplog.text


def test_a_key_with_whitespace_inside_is_refused_by_name_before_any_request(
    fault_server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DF_TEST_OPENAI_KEY", "sk-test-half\nother-half")
    with pytest.raises(DistilforgeError, match=r"\$DF_TEST_OPENAI_KEY has whitespace") as caught:
        collect(make_teacher(fault_server, api_key_env="DF_TEST_OPENAI_KEY"), [chat("hello")])
    assert "sk-test" not in str(caught.value) and "half" not in str(caught.value)
    assert fault_server.attempts == []


def test_a_request_that_cannot_be_sent_is_not_retried(
    fault_server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []

    async def refuse(self: httpx2.AsyncClient, request: httpx2.Request, **kwargs: Any) -> httpx2.Response:
        sent.append(str(request.url))
        raise httpx2.LocalProtocolError("Illegal header value")

    monkeypatch.setattr(httpx2.AsyncClient, "send", refuse)  # the SDK's transport
    (completion,) = collect(make_teacher(fault_server, max_retries=5), [chat("hello")])
    assert len(sent) == 1 and not completion.ok
    assert "request not sent: LocalProtocolError" in (completion.error or "")


def _engine() -> Engine:
    return Engine.load(extra_plugins=[plugin_majority])


def _openai_run_config(tmp: Path, server: FaultServer, **teacher: Any) -> dict[str, Any]:
    config = loop_config(tmp, name="remote", method={"type": "llm2llm", "rounds": 1, "k": 3})
    config["teacher"] = {
        "type": "openai",
        "base_url": server.base_url,
        "model": "scripted",
        "api_key_env": None,
        "max_retries": 1,
        "backoff_base_s": 0.01,
        **teacher,
    }
    config["teacher_baseline"] = {"enabled": False}
    return config


def test_a_newline_key_reaches_no_file_of_the_run_nor_the_console(
    tmp_path: Path, fault_server: FaultServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    core = "sk-test-RUNLEVEL-9876543210"
    monkeypatch.setenv("DF_TEST_OPENAI_KEY", core + "\n")
    fault_server.default = ("status", 401, json.dumps({"error": f"bad key {('Bearer ' + core + chr(10)).encode()!r}"}))
    config = _openai_run_config(tmp_path, fault_server, api_key_env="DF_TEST_OPENAI_KEY")
    path = write_config(tmp_path / "remote.yaml", config)
    screen = io.StringIO()
    console = Console(file=screen, width=200)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TeacherUnavailable) as refused:  # every sample refused: the round is not committed
        start_run(_engine(), path, console=console)
    fault_server.default = OK
    start_run(_engine(), path, console=console)
    surfaces = [screen.getvalue(), caplog.text, str(refused.value)]
    surfaces += [f.read_bytes().decode("utf-8", "replace") for f in tmp_path.rglob("*") if f.is_file()]
    assert "HTTP 401" in str(refused.value) and "***" in str(refused.value)
    for form in secret_forms(core + "\n"):
        assert not any(form in text for text in surfaces), form


def test_a_round_whose_every_sample_failed_commits_nothing_and_resumes(
    tmp_path: Path, fault_server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path / "remote.yaml", _openai_run_config(tmp_path, fault_server))
    fault_server.default = ("status", 503, "down for maintenance")
    with pytest.raises(TeacherUnavailable, match=r"round 0: all \d+ teacher samples failed, the first with: HTTP 503"):
        start_run(_engine(), path, console=Console(quiet=True))
    run = tmp_path / "runs" / "remote"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "generate" not in manifest["rounds"].get("0", {})
    assert manifest["error"].startswith("TeacherUnavailable: round 0")
    assert read_lines(run / "rejects.jsonl") == []
    fault_server.default = OK
    metrics = start_run(_engine(), path, console=Console(quiet=True))
    assert metrics[0]["accepted"] > 0 and all(x["stage"] != "sample" for x in read_lines(run / "rejects.jsonl"))
    assert json.loads((run / "manifest.json").read_text())["status"] == "completed"


def test_a_reply_with_no_content_is_retried_and_never_delivered_as_an_answer(fault_server: FaultServer) -> None:
    fault_server.script.update({"hollow": [("empty",), OK], "void": [("empty",)]})
    completions = by_id(collect(make_teacher(fault_server, max_retries=2), [chat("hollow"), chat("void")]))
    assert completions["id-hollow"].ok and completions["id-hollow"].text == "answer:hollow:0"
    assert not completions["id-void"].ok and "empty completion" in (completions["id-void"].error or "")
    assert len(fault_server.tries("void")) == 3


def test_no_key_no_authorization_header(fault_server: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    collect(make_teacher(fault_server, api_key_env="OPENAI_API_KEY"), [chat("anon")])
    assert "Authorization" not in fault_server.attempts[0].headers


def test_the_sdk_takes_no_key_or_header_from_the_environment(
    fault_server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SDK alone would send $OPENAI_API_KEY when given no key, and let these variables add or
    # replace headers: only the teacher's config decides what reaches the server.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-NOT-FOR-THIS-SERVER")
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-admin-NOT-FOR-THIS-SERVER")
    monkeypatch.setenv("OPENAI_CUSTOM_HEADERS", "Authorization: Bearer sk-custom-NOT-FOR-THIS-SERVER")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-env")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-env")
    monkeypatch.setenv("DF_TEST_OPENAI_KEY", "sk-test-CONFIGURED")
    collect(make_teacher(fault_server, api_key_env=None), [chat("anon")])
    collect(make_teacher(fault_server, api_key_env="DF_TEST_OPENAI_KEY"), [chat("keyed")])
    (anon,) = fault_server.tries("anon")
    (keyed,) = fault_server.tries("keyed")
    assert "Authorization" not in anon.headers
    assert keyed.headers.get("Authorization") == "Bearer sk-test-CONFIGURED"
    for attempt in (anon, keyed):
        assert "OpenAI-Organization" not in attempt.headers and "OpenAI-Project" not in attempt.headers
        assert "NOT-FOR-THIS-SERVER" not in str(list(attempt.headers.items()))


def test_retry_after_beyond_the_sdks_limit_is_capped_and_425_is_retried(fault_server: FaultServer) -> None:
    # The SDK's own retries give up on a Retry-After over two minutes and never retry a 425.
    fault_server.script.update(
        {"patient": [("429", "100000"), OK], "early": [("status", 425, "too early", "100000"), OK]}
    )
    started = time.monotonic()
    completions = by_id(collect(make_teacher(fault_server, retry_after_max_s=0.3), [chat("patient"), chat("early")]))
    assert completions["id-patient"].ok and completions["id-early"].ok
    assert len(fault_server.tries("patient")) == 2 and len(fault_server.tries("early")) == 2
    assert time.monotonic() - started < 10


def test_backoff_grows_from_base_to_max_within_the_upper_half() -> None:
    backoff = Backoff(base_s=0.5, max_s=4.0, retry_after_max_s=10.0)
    for attempt, ceiling in ((0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (10, 4.0)):
        for _ in range(20):
            assert ceiling / 2 <= backoff.delay(attempt) <= ceiling
    assert backoff.cap(60.0) == 10.0 and backoff.cap(2.0) == 2.0


def test_building_the_teacher_imports_no_http_stack() -> None:
    code = (
        "import sys\n"
        "from distilforge.plugins.teachers.openai_config import OpenAITeacherConfig, register_teachers\n"
        "built = []\n"
        "register_teachers(register=lambda cls, factory: built.append(factory(cls(model='m'))))\n"
        "assert built[0].model_id == 'openai:127.0.0.1/m', built[0].model_id\n"
        "bad = [n for n in ('openai', 'httpx2', 'httpx') if n in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- a real vLLM server


@pytest.mark.slow
def test_real_vllm_server_chat_prompts_n_and_json_schema(vllm_server: str) -> None:
    teacher = OpenAITeacher(
        OpenAITeacherConfig(
            base_url=vllm_server,
            model="tiny",
            api_key_env=None,
            concurrency=8,
        )
    )
    schema = {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": ["good", "bad"]}},
        "required": ["label"],
        "additionalProperties": False,
    }
    requests = [
        *[chat(f"Say something about item {k}.", max_tokens=12, temperature=0.0) for k in range(6)],
        *[plain(f"Once upon a time {k}", max_tokens=12, temperature=0.0) for k in range(4)],
        chat("Give three variants.", n=3, temperature=1.0, max_tokens=8),
        plain("Many endings:", n=2, temperature=1.0, max_tokens=8),
        chat("Rate it.", json_schema=schema, max_tokens=24, temperature=0.0),
        chat("Pick one.", choice=["yes", "no"], max_tokens=4),
        chat("With logprobs.", logprobs=2, max_tokens=5, temperature=0.0),
        plain("Prompt logprobs for this text", prompt_logprobs=1, max_tokens=2),
        chat("Chat prompt logprobs", prompt_logprobs=0, max_tokens=2),
    ]
    completions = collect(teacher, requests)

    assert_exactly_once(completions, requests)
    assert all(c.ok for c in completions), [c.error for c in completions if not c.ok]
    assert all(c.prompt_tokens > 0 and c.completion_tokens > 0 for c in completions)
    got = {(c.request_id, c.sample_index): c for c in completions}
    rated = json.loads(got[("id-Rate it.", 0)].text)
    assert rated in ({"label": "good"}, {"label": "bad"})
    assert got[("id-Pick one.", 0)].text in ("yes", "no")
    with_lp = got[("id-With logprobs.", 0)]
    assert with_lp.logprobs is not None and len(with_lp.logprobs) == with_lp.completion_tokens
    assert all(len(t.top) >= 1 for t in with_lp.logprobs)
    for key in ("id-Prompt logprobs for this text", "id-Chat prompt logprobs"):
        scored = got[(key, 0)]
        assert scored.prompt_logprobs is not None, key
        assert len(scored.prompt_logprobs) == scored.prompt_tokens
        assert scored.prompt_logprobs[0] is None  # the first token has no context
        assert all(isinstance(x, float) and x <= 0 for x in scored.prompt_logprobs[1:])


def test_local_server_avoids_slow_bf16_on_cpus_without_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    pytest.importorskip("vllm")
    from vllm.platforms import current_platform

    from distilforge.plugins.teachers import vllm_teacher

    server = VLLMServer("model-dir", log_path=tmp_path / "log")
    monkeypatch.setattr(vllm_teacher, "cpu_has_fast_bf16", lambda: False)
    expected = "float32" if current_platform.is_cpu() else "auto"
    assert server.command()[server.command().index("--dtype") + 1] == expected
    monkeypatch.setattr(vllm_teacher, "cpu_has_fast_bf16", lambda: True)
    assert server.resolved_dtype() == "auto"
    assert VLLMServer("m", log_path=tmp_path / "log", dtype="bfloat16").resolved_dtype() == "bfloat16"


def test_a_run_that_failed_before_any_teacher_work_restarts_with_a_corrected_config(
    tmp_path: Path, fault_server: FaultServer
) -> None:
    config = _openai_run_config(tmp_path, fault_server)
    path = write_config(tmp_path / "remote.yaml", config)
    fault_server.default = ("status", 404, "no such model")
    with pytest.raises(TeacherUnavailable):
        start_run(_engine(), path, console=Console(quiet=True))
    fault_server.default = OK
    config["teacher"]["model"] = "the-right-model"  # the fix: a changed config, no --force needed
    write_config(path, config)
    start_run(_engine(), path, console=Console(quiet=True))
    manifest = json.loads((tmp_path / "runs/remote/manifest.json").read_text())
    assert manifest["status"] == "completed" and "forced_changes" not in manifest


@pytest.mark.slow
def test_ctrl_c_while_answers_hang_stops_within_seconds(fault_server: FaultServer, tmp_path: Path) -> None:
    """Ctrl-C while every request waits on a server that answers in a minute: the workers are
    cancelled, the process ends as interrupted at once, nothing half-answered is written."""
    import signal

    fault_server.default = ("hang", 60.0)
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"slow {i}"}) + "\n" for i in range(8)))
    cfg = tmp_path / "gen.yaml"
    teacher = {"type": "openai", "base_url": fault_server.base_url, "model": "scripted", "api_key_env": None}
    cfg.write_text(json.dumps({"teacher": {**teacher, "timeout_s": 120.0}, "teacher_cache": str(tmp_path / "c.db")}))
    cmd = [sys.executable, "-m", "distilforge.engine.cli", "generate", str(prompts), "-o", str(tmp_path / "o.jsonl")]
    proc = subprocess.Popen([*cmd, "-c", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while len(fault_server.attempts) < 4 and time.time() < deadline:
            time.sleep(0.05)
        assert len(fault_server.attempts) >= 4, "the requests never reached the server"
        proc.send_signal(signal.SIGINT)
        sent = time.time()
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "interrupted: stopping cleanly" in err
    assert time.time() - sent < 10
    assert not (tmp_path / "o.jsonl").exists() or not (tmp_path / "o.jsonl").read_text().strip()
