"""``distilforge serve [PRESET|MODEL]``: a local teacher behind an OpenAI-compatible server.

vLLM's server, or llama.cpp's on CPUs where it is the faster engine (``--backend``, see
:mod:`distilforge.plugins.teachers.backend`).

A built-in plugin like any other: it adds its command through the ``register_commands`` hook.
The server gets the settings that suit the machine (on a CPU: every usable core bound, a KV cache
of 10% of the free RAM, float32 where the CPU has no fast bfloat16; on a GPU: ``--tensor-parallel-
size`` and ``--gpu-memory-utilization`` as given), the command waits until it answers ``/health``,
prints the ``teacher:`` block to paste into a config and serves until Ctrl-C or SIGTERM, then
stops the server and its engine process.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from distilforge.engine.api.hookspecs import CommandParsers, hookimpl


def teacher_block(base_url: str, served_name: str) -> str:
    return f"teacher:\n  type: openai\n  base_url: {base_url}\n  model: {served_name}\n"


def server_arguments(args: argparse.Namespace, on_cpu: bool) -> list[str]:
    """vLLM flags beyond the launcher's own: the GPU settings (the CPU ones go through the environment)."""
    if on_cpu:
        return []
    return ["--tensor-parallel-size", str(args.tensor_parallel_size), "--gpu-memory-utilization", str(args.gpu_memory)]


def cmd_serve_llamacpp(args: argparse.Namespace) -> int:
    """The model's GGUF behind llama.cpp's own OpenAI-compatible server, in this process."""
    import xllamacpp

    from distilforge.engine.api.toolkit import make_console
    from distilforge.plugins.models.packaged import teacher_gguf_path
    from distilforge.plugins.teachers.llamacpp_teacher import available_cores

    console = make_console()
    gguf = teacher_gguf_path(args.model)
    name = args.name or (args.model if args.model and "/" not in args.model else gguf.stem)
    params = xllamacpp.CommonParams()
    params.model.path = str(gguf)
    params.model_alias = name
    params.n_parallel = args.parallel
    params.n_ctx = args.max_model_len * args.parallel
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = available_cores()
    params.hostnames = [args.host]
    params.port = args.port
    params.verbosity = -1
    console.print(f"starting llama.cpp for {gguf} ({args.parallel} slots)", highlight=False, markup=False)
    server = xllamacpp.Server(params)
    base_url = f"http://{args.host}:{args.port}/v1"
    console.print(f"serving {name} at {base_url}; paste into a config:", highlight=False, markup=False)
    print(teacher_block(base_url, name), flush=True)
    console.print("Ctrl-C stops the server", highlight=False, markup=False)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("stopping the server ...", highlight=False, markup=False)
        return 0
    finally:
        del server


def cmd_serve(args: argparse.Namespace) -> int:
    from distilforge.plugins.teachers.backend import choose_backend

    if choose_backend(args.backend, args.model) == "llamacpp":
        return cmd_serve_llamacpp(args)
    from vllm.platforms import current_platform

    from distilforge.engine.api.toolkit import make_console
    from distilforge.plugins.models.packaged import teacher_model_path
    from distilforge.plugins.teachers.vllm_server import VLLMServer
    from distilforge.plugins.teachers.vllm_teacher import default_cpu_kv_cache_bytes

    console = make_console()
    model_dir = teacher_model_path(args.model)  # a preset that is not set up names its setup command
    on_cpu = current_platform.is_cpu()
    kv_gib = args.kv_cache_gib or max(1, math.floor(default_cpu_kv_cache_bytes() / 2**30))
    name = args.name or (args.model if args.model and "/" not in args.model else Path(model_dir).name)
    server = VLLMServer(
        model_dir,
        served_name=name,
        log_path=Path(args.log),
        port=args.port,
        host=args.host,
        max_model_len=args.max_model_len,
        kv_cache_gib=kv_gib,
        extra_args=server_arguments(args, on_cpu),
        startup_timeout_s=args.startup_timeout,
    )
    where = f"CPU, KV cache {kv_gib} GiB, dtype {server.resolved_dtype()}" if on_cpu else "GPU"
    console.print(f"starting vLLM for {model_dir} ({where}); log: {args.log}", highlight=False, markup=False)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.start()
        console.print(f"serving {name} at {server.base_url}; paste into a config:", highlight=False, markup=False)
        print(teacher_block(server.base_url, name), flush=True)
        console.print("Ctrl-C stops the server", highlight=False, markup=False)
        while server.process is not None and server.process.poll() is None:
            time.sleep(0.5)
        console.print(f"the server exited; log: {args.log}\n{server.log_tail(20)}", highlight=False, markup=False)
        return 1
    except KeyboardInterrupt:
        console.print("stopping the server ...", highlight=False, markup=False)
        return 0
    finally:
        server.stop()
        sys.stdout.flush()


@hookimpl
def register_commands(subparsers: CommandParsers) -> None:
    p = subparsers.add_parser(
        "serve", help="serve a teacher preset or model directory with vLLM's OpenAI-compatible server"
    )
    p.add_argument(
        "model", nargs="?", help="a preset (`distilforge setup --list`) or a model directory; none = SmolLM2"
    )
    p.add_argument(
        "--backend",
        choices=["auto", "vllm", "llamacpp"],
        default="auto",
        help="the engine: auto = llama.cpp on CPUs without AMX or AVX-512 BF16 (given a GGUF), else vLLM",
    )
    p.add_argument("--parallel", type=int, default=8, help="llama.cpp: sequences served at once")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to accept other machines (no authentication!)")
    p.add_argument("--name", help="the model name clients send (default: the preset's name)")
    p.add_argument("--max-model-len", type=int, default=2048)
    p.add_argument("--kv-cache-gib", type=int, help="CPU: KV cache size (default: 10%% of the free RAM, at least 1)")
    p.add_argument("--tensor-parallel-size", type=int, default=1, help="GPU: GPUs to split the model over")
    p.add_argument("--gpu-memory", type=float, default=0.9, help="GPU: fraction of its memory vLLM may take")
    p.add_argument("--startup-timeout", type=float, default=600.0, help="seconds to wait for /health")
    p.add_argument("--log", default="runs/serve.log", help="the server's output (default runs/serve.log)")
    p.set_defaults(func=cmd_serve)
