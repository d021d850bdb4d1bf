"""The reference rows, run with the project's venv: raw vLLM, raw AsyncOpenAI, distilforge's teachers.

    --path vllm-chat       one ``vllm.LLM.chat`` call over every prompt, in this process (the limit)
    --path vllm-teacher    distilforge's ``vllm`` teacher, in this process
    --path asyncopenai     a bare ``openai.AsyncOpenAI`` loop, ``--concurrency`` requests in flight
    --path openai-teacher  distilforge's ``openai`` teacher at its default concurrency (64)

The in-process paths load the engine, warm it up on 8 prompts, then time the whole job; the
load time is reported apart (``load_s``).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import job_parser, read_prompts, report, write_answers

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def kv_bytes() -> int:
    return 1 << 30


def run_vllm_chat(args, prompts):
    from vllm import LLM, SamplingParams

    from distilforge.plugins.teachers.vllm_server import cpu_list
    from distilforge.plugins.teachers.vllm_teacher import cpu_has_fast_bf16

    # The same engine set-up as the vllm teacher on CPU: in-process engine core, every core bound.
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", cpu_list())
    started = time.perf_counter()
    llm = LLM(
        model=args.model,
        dtype="auto" if cpu_has_fast_bf16() else "float32",
        max_model_len=1024,
        enforce_eager=True,
        kv_cache_memory_bytes=kv_bytes(),
        seed=0,
    )
    load_s = time.perf_counter() - started
    params = SamplingParams(temperature=args.temperature, top_p=1.0, max_tokens=args.max_tokens)
    conversations = [[{"role": "user", "content": p["prompt"]}] for p in prompts]
    llm.chat(conversations[:8], params, use_tqdm=False)  # warm-up
    t0 = time.perf_counter()
    outputs = llm.chat(conversations, params, use_tqdm=False)
    wall = time.perf_counter() - t0
    answers = [
        {
            "id": p["id"],
            "text": o.outputs[0].text,
            "finish_reason": o.outputs[0].finish_reason,
            "completion_tokens": len(o.outputs[0].token_ids),
        }
        for p, o in zip(prompts, outputs, strict=True)
    ]
    return wall, answers, {"load_s": round(load_s, 2)}


def run_vllm_teacher(args, prompts):
    from distilforge.plugins.teachers.vllm_teacher import VLLMTeacher, VLLMTeacherConfig
    from distilforge.schemas import ChatMessage, SamplingParams, TeacherRequest

    started = time.perf_counter()
    teacher = VLLMTeacher(VLLMTeacherConfig(model=args.model, max_model_len=1024, kv_cache_memory_bytes=kv_bytes()))
    teacher.llm  # noqa: B018 - builds the engine now, outside the timed part
    load_s = time.perf_counter() - started
    sampling = SamplingParams(temperature=args.temperature, max_tokens=args.max_tokens)
    requests = [
        TeacherRequest(messages=[ChatMessage(role="user", content=p["prompt"])], sampling=sampling) for p in prompts
    ]
    list(teacher.sample(requests[:8]))  # warm-up
    t0 = time.perf_counter()
    completions = list(teacher.sample(requests))
    wall = time.perf_counter() - t0
    teacher.close()
    return wall, completion_answers(prompts, completions), {"load_s": round(load_s, 2)}


def completion_answers(prompts, completions):
    return [
        {
            "id": p["id"],
            "text": c.text if c.ok else None,
            "finish_reason": c.finish_reason,
            "completion_tokens": c.completion_tokens,
            **({"error": c.error} if not c.ok else {}),
        }
        for p, c in zip(prompts, completions, strict=True)
    ]


async def _asyncopenai(args, prompts):
    import openai

    client = openai.AsyncOpenAI(base_url=args.base_url, api_key="EMPTY", max_retries=0, timeout=600)
    gate = asyncio.Semaphore(args.concurrency)

    async def one(p):
        async with gate:
            response = await client.chat.completions.create(
                model=args.model,
                messages=[{"role": "user", "content": p["prompt"]}],
                temperature=args.temperature,
                top_p=1.0,
                max_tokens=args.max_tokens,
            )
        choice = response.choices[0]
        tokens = response.usage.completion_tokens if response.usage else None
        return {"id": p["id"], "text": choice.message.content, "finish_reason": choice.finish_reason,
                "completion_tokens": tokens}  # fmt: skip

    try:
        return await asyncio.gather(*(one(p) for p in prompts))
    finally:
        await client.close()


def run_asyncopenai(args, prompts):
    t0 = time.perf_counter()
    answers = asyncio.run(_asyncopenai(args, prompts))
    return time.perf_counter() - t0, list(answers), {"concurrency": args.concurrency}


def run_openai_teacher(args, prompts):
    from distilforge.plugins.teachers.openai_teacher import OpenAITeacher, OpenAITeacherConfig
    from distilforge.schemas import ChatMessage, SamplingParams, TeacherRequest

    teacher = OpenAITeacher(OpenAITeacherConfig(base_url=args.base_url, model=args.model, api_key_env=None))
    sampling = SamplingParams(temperature=args.temperature, max_tokens=args.max_tokens)
    requests = [
        TeacherRequest(messages=[ChatMessage(role="user", content=p["prompt"])], sampling=sampling) for p in prompts
    ]
    t0 = time.perf_counter()
    completions = list(teacher.sample(requests))
    wall = time.perf_counter() - t0
    extra = {"concurrency": teacher.config.concurrency}
    return wall, completion_answers(prompts, completions), extra


PATHS = {
    "vllm-chat": run_vllm_chat,
    "vllm-teacher": run_vllm_teacher,
    "asyncopenai": run_asyncopenai,
    "openai-teacher": run_openai_teacher,
}


def main() -> int:
    parser = job_parser(__doc__)
    parser.add_argument("--path", choices=sorted(PATHS), required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    prompts = read_prompts(args.prompts)
    wall, answers, extra = PATHS[args.path](args, prompts)
    write_answers(args.out, answers)
    errors = [a for a in answers if a.get("text") is None]
    report(wall_s=round(wall, 3), answers=len(answers) - len(errors), errors=len(errors),
           completion_tokens=sum(a["completion_tokens"] or 0 for a in answers), **extra)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
