"""Roofline of the local teachers: how much of this CPU's compute and memory bandwidth they use.

The machine's ceilings come from microbenchmarks in this process (torch on the CPU, one thread per
core this process may use):

- compute: square matrix products (``--size`` M=N=K) in fp32 and bf16 (``torch.matmul``) and int8
  (``torch._int_mm``, int32 accumulation; "not supported" where torch refuses it), median of
  ``--reps`` after a warm-up, as GFLOP/s = 2·M·N·K / s (GOP/s for int8);
- memory: a copy of a ``--copy-mib`` tensor, median of ``--reps``, counted as bytes read + written.

Each teacher preset (``--presets``) then runs on each backend (``--backends``, built through the
project's plugins) twice:

- prefill: ``--prompts`` chat prompts of ~``--prompt-tokens`` random words, distinct from their first
  token (vLLM's prefix caching is off too), ``max_tokens=1``; FLOP/s = 2 · params · prompt tokens / s;
- decode: as many short prompts, ``--decode-tokens`` new tokens each at a fixed length (``ignore_eos``)
  where the backend allows; decode FLOP/s = 2 · params · generated tokens / (s - the prompts' prefill
  share at the prefill rate just measured). Decode is memory-bound: weight bytes/s = weight bytes ×
  decode steps / s (the weights are read once per step for the whole batch; KV-cache reads not counted).

params = the elements of the matrix (2-D) weights except the token embedding table (a lookup costs no
FLOPs; tied embeddings count once, as the output projection): from the GGUF for llama.cpp (the
``gguf`` package), from the model directory's safetensors for vLLM. Prefill is compared with the peak
of the dtype the backend computes in (vLLM: its engine dtype, bf16 on CPUs with native bf16;
llama.cpp Q4_K: int8 dot products, so int8, and fp32 for reference).

    .venv/bin/python bench/roofline.py --skip-teachers                     # ceilings only, seconds
    .venv/bin/python bench/roofline.py --presets qwen2.5-coder-0.5b --backends vllm
    .venv/bin/python bench/roofline.py --out bench/results/roofline     # both presets, both backends

``--out PATH`` also writes PATH.md (the command, the machine, the table) and PATH.json (every figure).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shlex
import statistics
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_WORD_TEXT = """river apple window quiet silver engine garden paper mountain orange yellow market winter basket
candle thunder pocket ladder violin forest bridge planet camera island pencil rocket summer coffee mirror blanket
harbor jacket lemon meadow needle palace rabbit saddle tunnel velvet wagon anchor"""
WORDS = _WORD_TEXT.split()
GIGA = 1e9


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def timed_median(run: Callable[[], object], reps: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_peaks(size: int, reps: int) -> dict[str, float | str]:
    """Median G(FL)OP/s of a size³ product per dtype, or why it could not run."""
    import torch

    peaks: dict[str, float | str] = {}
    ops = 2.0 * size**3
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
        peaks[name] = ops / timed_median(lambda a=a, b=b: torch.matmul(a, b), reps) / GIGA
    a8 = torch.randint(-128, 128, (size, size), dtype=torch.int8)
    b8 = torch.randint(-128, 128, (size, size), dtype=torch.int8)
    try:
        peaks["int8"] = ops / timed_median(lambda: torch._int_mm(a8, b8), reps) / GIGA
    except (RuntimeError, NotImplementedError, AttributeError) as exc:
        peaks["int8"] = f"not supported ({type(exc).__name__}: {str(exc).splitlines()[0][:80]})"
    return peaks


def copy_bandwidth(mib: int, reps: int) -> float:
    """Median GB/s of a tensor copy, bytes read + bytes written."""
    import torch

    src = torch.ones(mib << 20, dtype=torch.uint8)
    dst = torch.empty_like(src)
    return 2 * src.numel() / timed_median(lambda: dst.copy_(src), reps) / GIGA


# --------------------------------------------------------------------------- parameter counts


def safetensors_weights(model_dir: Path, element_bytes: int) -> tuple[int, int]:
    """(params, bytes at ``element_bytes`` each) of the 2-D non-embedding tensors, read from the headers."""
    tensors: dict[str, list[int]] = {}
    for file in sorted(model_dir.glob("*.safetensors")):
        with file.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        tensors.update({k: v["shape"] for k, v in header.items() if k != "__metadata__"})
    params = sum(math.prod(s) for k, s in tensors.items() if len(s) >= 2 and "embed_tokens" not in k)
    if not any("lm_head" in k for k in tensors):  # tied: the embedding table is also the output matmul
        params += sum(math.prod(s) for k, s in tensors.items() if "embed_tokens" in k)
    return params, params * element_bytes


def gguf_weights(path: Path) -> tuple[int, int]:
    """(params, bytes as stored) of the GGUF's 2-D tensors except ``token_embd`` (unless tied)."""
    from gguf import GGUFReader

    tensors = {t.name: t for t in GGUFReader(str(path)).tensors if len(t.shape) >= 2}
    kept = [t for name, t in tensors.items() if not name.startswith("token_embd")]
    if "output.weight" not in tensors and "token_embd.weight" in tensors:
        kept.append(tensors["token_embd.weight"])
    return sum(int(t.n_elements) for t in kept), sum(int(t.n_bytes) for t in kept)


# --------------------------------------------------------------------------- teachers


def build_teacher(backend: str, preset: str, args: argparse.Namespace) -> Any:
    if backend == "vllm":
        from distilforge.plugins.teachers.vllm_teacher import VLLMTeacher, VLLMTeacherConfig

        max_len = max(1024, 2 * args.prompt_tokens + args.decode_tokens + 64)
        config = VLLMTeacherConfig(
            model=preset, prefix_caching=False, max_model_len=max_len, kv_cache_memory_bytes=1 << 30
        )
        return VLLMTeacher(config)
    from distilforge.plugins.teachers.llamacpp_teacher import LlamaCppTeacher, LlamaCppTeacherConfig

    return LlamaCppTeacher(LlamaCppTeacherConfig(type="llamacpp", model=preset))


def force_fixed_length(teacher: Any, backend: str) -> bool:
    """Make every answer run to max_tokens (ignore_eos) where the plugin lets us; False if not."""
    if backend == "vllm":
        build = teacher.sampling_params

        def ignoring_eos(request: Any) -> Any:
            params = build(request)
            params.ignore_eos = True
            return params

        teacher.sampling_params = ignoring_eos
        return True
    body = teacher.body  # the dict the plugin sends the llama.cpp server

    def with_ignore_eos(*a: Any, **kw: Any) -> Any:
        return {**body(*a, **kw), "ignore_eos": True}

    teacher.body = with_ignore_eos
    return True


def make_requests(count: int, words: int, max_tokens: int, tag: str) -> list[Any]:
    """Chat requests distinct from their first token (a random word and number open the system line)."""
    from distilforge.schemas import ChatMessage, SamplingParams, TeacherRequest

    out = []
    for i in range(count):
        rng = random.Random(f"{tag}-{i}")
        text = " ".join(rng.choice(WORDS) for _ in range(words))
        messages = [
            ChatMessage(
                role="system", content=f"{rng.choice(WORDS)} {rng.randrange(10**6)} {tag}: continue the words."
            ),
            ChatMessage(role="user", content=text),
        ]
        out.append(TeacherRequest(messages=messages, sampling=SamplingParams(temperature=0.0, max_tokens=max_tokens)))
    return out


def run_batch(teacher: Any, batch: list[Any]) -> tuple[float, int, int, list[int]]:
    t0 = time.perf_counter()
    completions = list(teacher.sample(batch))
    seconds = time.perf_counter() - t0
    failed = [c.error for c in completions if not c.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(completions)} requests failed, e.g. {failed[0]}")
    return (
        seconds,
        sum(c.prompt_tokens for c in completions),
        sum(c.completion_tokens for c in completions),
        [c.completion_tokens for c in completions],
    )


def measure_teacher(backend: str, preset: str, args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    t0 = time.perf_counter()
    teacher = build_teacher(backend, preset, args)
    try:
        list(teacher.sample(make_requests(2, 16, 4, "warm-up")))  # starts the engine; not timed
        say(f"{preset} on {backend}: ready in {time.perf_counter() - t0:.1f} s")
        if backend == "vllm":
            dtype = str(teacher.llm.llm_engine.model_config.dtype).removeprefix("torch.")
            compute = "bf16" if dtype == "bfloat16" else "fp32"
            params, weight_bytes = safetensors_weights(Path(teacher.model_path), 2 if compute == "bf16" else 4)
            source = f"{teacher.model_path} safetensors, {dtype}"
        else:
            compute = "int8"
            gguf = Path(args.gguf.get(preset) or teacher.gguf_path)
            params, weight_bytes = gguf_weights(gguf)
            source = f"{gguf}"
        fixed = force_fixed_length(teacher, backend)
        pre_s, pre_prompt, _, _ = run_batch(teacher, make_requests(args.prompts, args.prompt_tokens, 1, "prefill"))
        prefill_rate = pre_prompt / pre_s
        dec_s, dec_prompt, generated, lengths = run_batch(
            teacher, make_requests(args.prompts, 8, args.decode_tokens, "decode")
        )
        batch = getattr(teacher.config, "parallel", None)  # llama.cpp slots; vLLM runs the whole batch at once
        steps = max(lengths) * (math.ceil(args.prompts / batch) if batch else 1)
        decode_s = max(dec_s - dec_prompt / prefill_rate, 1e-9)
    finally:
        teacher.close()
    return {
        "preset": preset, "backend": backend, "weights": source, "params": params, "weight_bytes": weight_bytes,
        "compute_dtype": compute, "prefill_seconds": pre_s, "prefill_prompt_tokens": pre_prompt,
        "prefill_tok_s": prefill_rate, "prefill_gflop_s": 2 * params * prefill_rate / GIGA,
        "decode_seconds_total": dec_s, "decode_seconds_net": decode_s, "decode_prompt_tokens": dec_prompt,
        "decode_tokens": generated, "decode_fixed_length": fixed and min(lengths) == max(lengths) == args.decode_tokens,
        "decode_steps": steps, "decode_tok_s": generated / decode_s,
        "decode_gflop_s": 2 * params * generated / decode_s / GIGA,
        "decode_weight_gb_s": weight_bytes * steps / decode_s / GIGA,
    }  # fmt: skip


# --------------------------------------------------------------------------- report


def pct(value: float, peak: float | str | None) -> str:
    return f"{100 * value / peak:.0f}%" if isinstance(peak, float) and peak > 0 else "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2048, help="M=N=K of the peak matmuls")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--copy-mib", type=int, default=1024, help="size of the bandwidth copy")
    parser.add_argument("--presets", nargs="+", default=["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"])
    parser.add_argument("--backends", nargs="+", choices=["llamacpp", "vllm"], default=["llamacpp", "vllm"])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--prompt-tokens", type=int, default=256, help="random words per prefill prompt (~tokens)")
    parser.add_argument("--decode-tokens", type=int, default=64)
    parser.add_argument("--gguf", nargs="*", default=[], metavar="PRESET=PATH", help="GGUF file of a preset")
    parser.add_argument("--skip-teachers", action="store_true", help="ceilings only (matmul, bandwidth)")
    parser.add_argument("--out", type=Path, default=None, help="also write OUT.md and OUT.json")
    args = parser.parse_args(argv)
    args.gguf = dict(item.split("=", 1) for item in args.gguf)
    command = ".venv/bin/python bench/roofline.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    import torch

    from distilforge.plugins.teachers.cpu_kind import describe_cpu

    threads = cores()
    torch.set_num_threads(threads)
    say(f"machine: {describe_cpu()}; torch {torch.__version__}, {threads} threads")
    peaks = matmul_peaks(args.size, args.reps)
    bandwidth = copy_bandwidth(args.copy_mib, args.reps)
    say(f"peak matmul {args.size}x{args.size}x{args.size}, median of {args.reps}:")
    for name, value in peaks.items():
        unit = "GOP/s" if name == "int8" else "GFLOP/s"
        say(f"  {name:5s} {value:9.1f} {unit}" if isinstance(value, float) else f"  {name:5s} {value}")
    say(f"copy bandwidth ({args.copy_mib} MiB, read + write), median of {args.reps}: {bandwidth:.1f} GB/s")

    teachers: list[dict[str, Any]] = []
    if not args.skip_teachers:
        for preset in args.presets:
            for backend in args.backends:
                try:
                    teachers.append(measure_teacher(backend, preset, args, say))
                except Exception as exc:
                    say(f"{preset} on {backend}: failed: {type(exc).__name__}: {exc}")
    if teachers:
        say()
        say("params: 2-D weights without the token embedding table (a lookup costs no FLOPs; tied = output matmul).")
        say("prefill FLOP/s = 2*params*prompt tokens/s; decode FLOP/s = 2*params*new tokens/s, its seconds net of")
        say("the decode prompts' prefill at the prefill rate; weight GB/s = weight bytes x decode steps / s.")
        head = (
            "| preset | backend | params | prefill tok/s | GFLOP/s | % peak | % fp32"
            " | decode tok/s | GFLOP/s | weight GB/s | % copy BW |"
        )
        say(head)
        say("|" + "---|" * head.count(" | ") + "---|")
        for r in teachers:
            peak = peaks.get(r["compute_dtype"])
            say(
                f"| {r['preset']} | {r['backend']} | {r['params'] / 1e6:.0f}M | {r['prefill_tok_s']:.0f}"
                f" | {r['prefill_gflop_s']:.1f} | {pct(r['prefill_gflop_s'], peak)} {r['compute_dtype']}"
                f" | {pct(r['prefill_gflop_s'], peaks['fp32'])} | {r['decode_tok_s']:.1f}"
                f"{'' if r['decode_fixed_length'] else ' (var. length)'} | {r['decode_gflop_s']:.1f}"
                f" | {r['decode_weight_gb_s']:.1f} | {pct(r['decode_weight_gb_s'], bandwidth)} |"
            )
    if args.out is not None:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        machine = f"{describe_cpu()}, load average {load} at the end"
        args.out.parent.mkdir(parents=True, exist_ok=True)
        body = [f"# Roofline, {time.strftime('%Y-%m-%d')}", "", f"`{command}` — {machine}", "", "```", *lines, "```"]
        Path(f"{args.out}.md").write_text("\n".join(body) + "\n", encoding="utf-8")
        record = {"command": command, "machine": machine, "threads": threads, "matmul_size": args.size,
                  "peaks": peaks, "copy_gb_s": bandwidth, "teachers": teachers}  # fmt: skip
        Path(f"{args.out}.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
