"""Fixtures that start real servers: a vLLM OpenAI-compatible api_server on the tiny Llama.

The server is started once per session (20-30 s on an idle two-core machine, over two minutes
on a busy one), logs to a file under the session's temporary directory, and is stopped by PID
(SIGTERM, then SIGKILL of its own process group). When a test that used it fails, the tail of
its log is attached to the report.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures_models import require_vllm

from distilforge.testing.vllm_server import VLLMServer

SERVED_NAME = "tiny"
_LOGS: list[VLLMServer] = []


@pytest.fixture(scope="session")
def vllm_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (``http://127.0.0.1:PORT/v1``) of a vLLM server serving the tiny Llama as "tiny"."""
    require_vllm()
    log_path = tmp_path_factory.mktemp("vllm-server") / "server.log"
    server = VLLMServer(
        tiny_model_dir,
        served_name=SERVED_NAME,
        log_path=log_path,
        # A random model loves whitespace, which JSON grammars allow between any two tokens;
        # vLLM 0.32 takes this setting only as a server flag, not per request.
        extra_args=[
            "--seed",
            "0",
            "--structured-outputs-config",
            '{"backend": "xgrammar", "disable_any_whitespace": true}',
        ],
        startup_timeout_s=300.0,  # a loaded 2-core machine has needed 140 s
    )
    _LOGS.append(server)
    server.start()
    try:
        yield server.base_url
    finally:
        server.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[Any]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.failed and "vllm_server" in getattr(item, "fixturenames", ()):
        for server in _LOGS:
            report.sections.append((f"vLLM server log {server.log_path}", server.log_tail(80)))
    return report
