"""Data Designer on the job: the prompts as a DataFrame seed, one ``LLMTextColumnConfig`` whose
prompt is ``{{ prompt }}``, a ``ModelProvider`` of type ``openai`` pointed at the server, and
``DataDesigner.create(...)`` (which also profiles the dataset and writes its artifacts, part of
what it costs). Runs inside Data Designer's own venv; artifacts go to a fresh folder per row.

    --mode default   InferenceParameters as shipped: ``max_parallel_requests=4``
    --mode best      ``max_parallel_requests`` 64 (``--concurrency``), one row group (buffer_size
                     = every prompt)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import job_parser, read_prompts, report, write_answers


def main() -> int:
    parser = job_parser(__doc__)
    parser.add_argument("--concurrency", type=int, default=64, help="best mode: max_parallel_requests")
    args = parser.parse_args()
    prompts = read_prompts(args.prompts)

    import pandas as pd
    from data_designer.config import (
        ChatCompletionInferenceParams,
        DataDesignerConfigBuilder,
        DataFrameSeedSource,
        LLMTextColumnConfig,
        ModelConfig,
        ModelProvider,
        RunConfig,
    )
    from data_designer.interface.data_designer import DataDesigner

    best = args.mode == "best"
    params = {"temperature": args.temperature, "top_p": 1.0, "max_tokens": args.max_tokens}
    if best:
        params["max_parallel_requests"] = args.concurrency
    provider = ModelProvider(name="local-vllm", endpoint=args.base_url, provider_type="openai", api_key="EMPTY")
    model = ModelConfig(
        alias="teacher",
        model=args.model,
        provider="local-vllm",
        inference_parameters=ChatCompletionInferenceParams(**params),
    )
    builder = DataDesignerConfigBuilder(model_configs=[model])
    builder.with_seed_dataset(DataFrameSeedSource(df=pd.DataFrame(prompts)))
    builder.add_column(LLMTextColumnConfig(name="answer", prompt="{{ prompt }}", model_alias="teacher"))
    designer = DataDesigner(artifact_path=args.workdir / "artifacts", model_providers=[provider])
    if best:
        designer.set_run_config(RunConfig(buffer_size=len(prompts)))
    t0 = time.perf_counter()
    results = designer.create(builder, num_records=len(prompts), dataset_name="peers")
    wall = time.perf_counter() - t0
    frame = results.load_dataset()
    answers = [
        {"id": int(r["id"]), "text": r["answer"] if isinstance(r["answer"], str) else None,
         "finish_reason": None, "completion_tokens": None}
        for r in frame.to_dict("records")
    ]  # fmt: skip
    write_answers(args.out, answers)
    report(wall_s=round(wall, 3), answers=sum(a["text"] is not None for a in answers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
