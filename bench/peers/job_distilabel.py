"""distilabel on the job: ``Pipeline`` with ``LoadDataFromDicts >> TextGeneration(llm=OpenAILLM)``.

Runs inside distilabel's own venv (``bench/peers/run.py`` makes it). ``wall_s`` is
``pipeline.run()`` from call to return: distilabel's step processes and batching are part of
what it costs to use. The pipeline cache goes to a fresh folder per row (never a cache hit).

    --mode default   the batch sizes distilabel picks (50 rows per batch = requests in flight)
    --mode best      one batch of every prompt (all requests in flight), the cache off
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import job_parser, read_prompts, report, write_answers


def main() -> int:
    args = job_parser(__doc__).parse_args()
    prompts = read_prompts(args.prompts)

    from distilabel.models import OpenAILLM
    from distilabel.pipeline import Pipeline
    from distilabel.steps import LoadDataFromDicts
    from distilabel.steps.tasks import TextGeneration

    best = args.mode == "best"
    sizes = {"batch_size": len(prompts)} if best else {}
    batch = {"input_batch_size": len(prompts)} if best else {}
    llm = OpenAILLM(
        model=args.model,
        base_url=args.base_url,
        api_key="EMPTY",
        generation_kwargs={"max_new_tokens": args.max_tokens, "temperature": args.temperature, "top_p": 1.0},
    )
    with Pipeline(name="distilforge-peers", cache_dir=str(args.workdir / "distilabel-cache")) as pipeline:
        load = LoadDataFromDicts(data=[{"instruction": p["prompt"], "pid": p["id"]} for p in prompts], **sizes)
        generate = TextGeneration(llm=llm, **batch)
        load >> generate
    t0 = time.perf_counter()
    distiset = pipeline.run(use_cache=not best)
    wall = time.perf_counter() - t0
    data = distiset["default"]["train"]
    answers = []
    for row in data:
        stats = (row.get("distilabel_metadata") or {}).get("statistics_text_generation_0") or {}
        tokens = stats.get("output_tokens")
        answers.append({"id": row["pid"], "text": row.get("generation"), "finish_reason": None,
                        "completion_tokens": tokens[0] if isinstance(tokens, list) else tokens})  # fmt: skip
    write_answers(args.out, answers)
    report(wall_s=round(wall, 3), answers=sum(a["text"] is not None for a in answers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
