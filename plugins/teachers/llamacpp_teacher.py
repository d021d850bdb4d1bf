"""The ``llamacpp`` teacher: llama.cpp's server engine in this process (``xllamacpp``), on a GGUF file.

On CPUs without AMX this is the fastest local backend measured here: a preset's own Q4_K_M GGUF
needs no conversion, loads in a second, and its int8 dot products beat vLLM's bf16/fp32 matrix
products on AVX2 (``bench/label_cost.py``, README "Which backend on which CPU"). The engine runs
``parallel`` sequences at once (continuous batching); each keeps its prompt's KV cache, so prompts
that share a system prompt or a label prefix prefill the shared part once per slot.

Every sample is its own call, seeded from the engine seed, the request's id and the sample's
index. The samples of one request go to the same slot, one after the other: the slot still holds
the prompt, so it is prefilled once, not once per sample (llama.cpp's own ``n`` would share it too,
but its samples cannot be drawn again one by one). Calls run on ``parallel`` threads (the server is
thread-safe) and are yielded as they finish.

Importing this module imports nothing heavy: the engine starts on the first :meth:`sample`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import Any, Literal

from pydantic import Field, field_validator

from distilforge.engine.api.components import Teacher
from distilforge.engine.api.hookspecs import Register, hookimpl
from distilforge.engine.api.toolkit.completions import error_completion, finite_logprob, request_seed
from distilforge.plugins.models.packaged import teacher_gguf_path
from distilforge.plugins.models.presets import check_model_reference
from distilforge.schemas import Completion, ComponentConfig, TeacherRequest
from distilforge.schemas.records import TokenLogprob

log = logging.getLogger(__name__)


class LlamaCppTeacherConfig(ComponentConfig):
    type: Literal["llamacpp"] = "llamacpp"
    model: str | None = Field(
        None,
        description="a teacher preset (its GGUF: `distilforge setup --teacher NAME`) or a .gguf file; None = the"
        " embedded SmolLM2-135M-Instruct",
    )
    max_model_len: int = Field(2048, ge=16, description="prompt + answer tokens per sequence")
    parallel: int = Field(8, ge=1, description="sequences decoded together (llama.cpp slots); each has its own KV")
    threads: int | None = Field(None, ge=1, description="CPU threads; None = every core this process may use")
    batch_tokens: int = Field(2048, ge=32, description="llama.cpp n_batch: prompt tokens submitted per step")
    ubatch_tokens: int = Field(512, ge=32, description="llama.cpp n_ubatch: tokens per matrix product")
    seed: int = Field(0, description="each sample's seed derives from this, the request's id and the sample index")

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str | None) -> str | None:
        return check_model_reference(value)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def choice_grammar(choices: Sequence[str]) -> str:
    """A GBNF grammar whose only sentences are ``choices`` (JSON string escaping is GBNF's)."""
    return "root ::= " + " | ".join(json.dumps(c) for c in choices)


class LlamaCppTeacher(Teacher[LlamaCppTeacherConfig]):
    def __init__(self, config: LlamaCppTeacherConfig) -> None:
        super().__init__(config)
        self._server: Any = None
        self._path: str | None = None

    @property
    def gguf_path(self) -> str:
        if self._path is None:
            self._path = str(teacher_gguf_path(self.config.model))
        return self._path

    @property
    def model_id(self) -> str:
        return f"llamacpp:{self.gguf_path}"

    @property
    def server(self) -> Any:
        if self._server is None:
            self._server = self._start()
        return self._server

    def _start(self) -> Any:
        import xllamacpp

        cfg = self.config
        params = xllamacpp.CommonParams()
        params.model.path = self.gguf_path
        params.n_parallel = cfg.parallel
        params.n_ctx = cfg.max_model_len * cfg.parallel
        params.n_batch = cfg.batch_tokens
        params.n_ubatch = min(cfg.ubatch_tokens, cfg.batch_tokens)
        threads = cfg.threads or available_cores()
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.warmup = False
        params.verbosity = -1  # its per-request log lines would drown the progress display
        log.info(
            "starting llama.cpp on %s: %d slots of %d tokens, %d threads",
            self.gguf_path,
            cfg.parallel,
            cfg.max_model_len,
            threads,
        )
        return xllamacpp.Server(params)

    def close(self) -> None:
        self._server = None  # the server's destructor stops its loop and frees the model

    # ------------------------------------------------------------------ requests

    def body(self, request: TeacherRequest, index: int, *, slot: int | None = None) -> dict[str, Any]:
        """The server's request for sample ``index`` of ``request`` (on llama.cpp slot ``slot`` if given)."""
        s = request.sampling
        body: dict[str, Any] = {
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_tokens,
            "seed": request_seed(self.config.seed, f"{request.id}:{index}"),
        }
        if s.stop:
            body["stop"] = list(s.stop)
        if request.messages is not None:
            body["messages"] = [m.model_dump() for m in request.messages]
        else:
            body["prompt"] = request.prompt
        if s.logprobs is not None:
            if request.messages is not None:
                body.update(logprobs=True, top_logprobs=s.logprobs)
            else:
                body["n_probs"] = s.logprobs
        if slot is not None:
            body["id_slot"] = slot
        if s.json_schema is not None:
            body["json_schema"] = s.json_schema
        elif s.choice is not None:
            body["grammar"] = choice_grammar(s.choice)
        return body

    def _unsupported(self, request: TeacherRequest) -> str | None:
        s = request.sampling
        if s.prompt_logprobs is not None:
            return "the llamacpp teacher gives no prompt log-probabilities (use the vllm teacher)"
        if s.json_schema is not None and s.choice is not None:
            return "a request may constrain its answer by json_schema or choice, not both"
        return None

    def sample(self, requests: Sequence[TeacherRequest]) -> Iterator[Completion]:
        calls: list[tuple[TeacherRequest, int, int, int | None]] = []  # request, absolute index, position, slot
        pinned = 0  # requests of several samples, each given the next slot in turn
        for request in requests:
            problem = self._unsupported(request)
            if problem:
                yield from error_completion(request, problem, model=self.model_id)
                continue
            indices = request.meta.get("sample_indices")
            wanted = sorted(int(i) for i in indices) if indices and len(indices) == request.sampling.n else None
            slot = None
            if request.sampling.n > 1:
                slot, pinned = pinned % self.config.parallel, pinned + 1
            for position, index in enumerate(wanted or range(request.sampling.n)):
                calls.append((request, index, position, slot))
        if not calls:
            return
        server = self.server
        with ThreadPoolExecutor(max_workers=self.config.parallel, thread_name_prefix="llamacpp") as pool:
            futures: dict[Future[Any], tuple[TeacherRequest, int]] = {}
            for request, index, position, slot in calls:
                handler = server.handle_chat_completions if request.messages is not None else server.handle_completions
                futures[pool.submit(handler, self.body(request, index, slot=slot))] = (request, position)
            try:
                for future in as_completed(futures):
                    request, position = futures[future]
                    try:
                        answer = future.result()
                    except Exception as exc:  # the binding raises on requests it cannot parse
                        yield self._error(request, position, f"{type(exc).__name__}: {exc}")
                        continue
                    yield self.completion(request, position, answer)
            finally:
                for future in futures:
                    future.cancel()

    def completion(self, request: TeacherRequest, position: int, answer: Any) -> Completion:
        """Sample ``position`` of ``request`` from the server's answer (an error answer gives an error)."""
        if not isinstance(answer, dict) or "error" in answer:
            error = answer.get("error") if isinstance(answer, dict) else answer
            message = error.get("message", error) if isinstance(error, dict) else error
            return self._error(request, position, f"llama.cpp: {message}")
        choices = answer.get("choices") or []
        if not choices:
            return self._error(request, position, "llama.cpp: an answer with no choices")
        choice = choices[0]
        message = choice.get("message")
        text = message.get("content") if isinstance(message, dict) else choice.get("text")
        usage = answer.get("usage") or {}
        logprobs = None
        if request.sampling.logprobs is not None:
            logprobs = token_logprobs((choice.get("logprobs") or {}).get("content") or [])
        return Completion(
            request_id=request.id,
            sample_index=position,
            text=text or "",
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=int(usage.get("prompt_tokens", 0) or 0),
            completion_tokens=int(usage.get("completion_tokens", 0) or 0),
            logprobs=logprobs,
            model=self.model_id,
        )

    def _error(self, request: TeacherRequest, position: int, reason: str) -> Completion:
        log.warning("llama.cpp request %s failed: %s", request.id, reason)
        return error_completion(request.id, reason, model=self.model_id, indices=[position])[0]


def token_logprobs(content: Sequence[dict[str, Any]]) -> list[TokenLogprob]:
    """llama.cpp's per-token log-probabilities (OpenAI chat format, for chat and plain prompts alike)."""
    out = []
    for item in content:
        top: dict[str, float] = {}
        for other in item.get("top_logprobs") or []:
            top.setdefault(str(other.get("token", "")), finite_logprob(float(other.get("logprob", -1e9))))
        out.append(
            TokenLogprob(
                token=str(item.get("token", "")), logprob=finite_logprob(float(item.get("logprob", -1e9))), top=top
            )
        )
    return out


@hookimpl
def register_teachers(register: Register) -> None:
    register(LlamaCppTeacherConfig, LlamaCppTeacher)
