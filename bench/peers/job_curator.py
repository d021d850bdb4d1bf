"""Curator on the job: a ``curator.LLM`` subclass (``prompt`` returns the prompt text), backend
``openai`` pointed at the server. Runs inside Curator's own venv; its working directory is a
fresh folder per row, so its cache never answers.

    --mode default   backend_params = base_url + api_key only. Curator then limits itself to its
                     built-in rate limits for an unknown server (200 requests/min, 100k tokens/min)
                     and treats ``finish_reason == "length"`` as a failed answer, retried up to
                     ``max_retries`` (10) times: every answer cut at max_tokens is asked again.
    --mode best      rate limits lifted (1M requests/min, 1G tokens/min), 64 requests in flight,
                     ``invalid_finish_reasons=["content_filter"]`` (an answer cut at max_tokens is
                     an answer), ``max_retries`` 2.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import job_parser, read_prompts, report, write_answers


def main() -> int:
    parser = job_parser(__doc__)
    parser.add_argument("--concurrency", type=int, default=64, help="best mode: requests in flight")
    args = parser.parse_args()
    prompts = read_prompts(args.prompts)

    from bespokelabs import curator
    from datasets import Dataset

    class Answer(curator.LLM):
        def prompt(self, row):
            return row["prompt"]

        def parse(self, row, response):
            return {"id": row["id"], "text": response}

    backend_params = {"base_url": args.base_url, "api_key": "EMPTY"}
    if args.mode == "best":
        backend_params |= {
            "max_requests_per_minute": 1_000_000,
            "max_tokens_per_minute": 1_000_000_000,
            "max_concurrent_requests": args.concurrency,
            "invalid_finish_reasons": ["content_filter"],
            "max_retries": 2,
        }
    llm = Answer(
        model_name=args.model,
        backend="openai",
        generation_params={"max_tokens": args.max_tokens, "temperature": args.temperature, "top_p": 1.0},
        backend_params=backend_params,
    )
    dataset = Dataset.from_list([{"id": p["id"], "prompt": p["prompt"]} for p in prompts])
    t0 = time.perf_counter()
    response = llm(dataset, working_dir=str(args.workdir / "curator"))
    wall = time.perf_counter() - t0
    data = getattr(response, "dataset", response)
    answers = [{"id": r["id"], "text": r["text"], "finish_reason": None, "completion_tokens": None} for r in data]
    write_answers(args.out, answers)
    report(wall_s=round(wall, 3), answers=len(answers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
