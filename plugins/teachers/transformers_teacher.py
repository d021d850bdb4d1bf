"""The ``transformers`` teacher: batched ``generate`` with Hugging Face transformers.

The fallback where vLLM is absent (and a reference implementation to compare vLLM against).
Requests are expanded into one row per sample, grouped by their sampling settings (one
``generate`` call takes one generation config) and run ``batch_size`` rows at a time with left
padding. Chat requests go through the tokenizer's chat template.

Constrained answers: ``choice`` is supported by scoring every choice under the model (greedy:
the most likely choice; sampling: drawn from the choices' renormalised probabilities).
``json_schema`` needs a grammar engine and gets an error completion telling the user to use the
``vllm`` teacher.

Importing this module imports neither torch nor transformers; the model loads on first use.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from pydantic import Field, field_validator

from distilforge.engine.api.components import Teacher
from distilforge.engine.api.hookspecs import Register, hookimpl
from distilforge.engine.api.toolkit.completions import error_completion, finite_logprob
from distilforge.plugins.models.packaged import DEFAULT_PRESET, teacher_model_path
from distilforge.plugins.models.presets import check_model_reference
from distilforge.schemas import Completion, ComponentConfig, TeacherRequest
from distilforge.schemas.records import TokenLogprob

log = logging.getLogger(__name__)


class TransformersTeacherConfig(ComponentConfig):
    type: Literal["transformers"] = "transformers"
    model: str | None = Field(
        None,
        description="a teacher preset (smollm2-135m, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b: `distilforge setup"
        " --list`), an HF model directory or an org/name hub id; None = the embedded SmolLM2-135M-Instruct",
    )

    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "float32", description="'auto' = the checkpoint's dtype"
    )
    device: str = Field("auto", description="'auto' (cuda if available, else cpu), 'cpu', 'cuda:0', ...")
    batch_size: int = Field(8, ge=1, description="rows (samples) per generate call")
    seed: int = 0
    trust_remote_code: bool = False
    chat_template: str | None = Field(None, description="Jinja chat template overriding the model's")

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str | None) -> str | None:
        return check_model_reference(value)


class TransformersTeacher(Teacher[TransformersTeacherConfig]):
    def __init__(self, config: TransformersTeacherConfig) -> None:
        super().__init__(config)
        self._model: Any = None
        self._tokenizer: Any = None
        self._device: Any = None
        self._model_path: str | None = None

    # ------------------------------------------------------------------ identity

    @property
    def model_path(self) -> str:
        if self._model_path is None:
            self._model_path = teacher_model_path(self.config.model)
        return self._model_path

    @property
    def model_id(self) -> str:
        return f"transformers:{self.model_path}"

    # ------------------------------------------------------------------ loading

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        cfg = self.config
        if cfg.model in (None, DEFAULT_PRESET):
            from distilforge.plugins.models.packaged import default_teacher_dir

            self._model_path = str(default_teacher_dir())
        device = cfg.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self._device = torch.device(device)
        dtype: Any = "auto" if cfg.dtype == "auto" else getattr(torch, cfg.dtype)
        dtype_kw = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
        tokenizer = AutoTokenizer.from_pretrained(self.model_path, trust_remote_code=cfg.trust_remote_code)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if cfg.chat_template is not None:
            tokenizer.chat_template = cfg.chat_template
        model = AutoModelForCausalLM.from_pretrained(
            self.model_path, trust_remote_code=cfg.trust_remote_code, **{dtype_kw: dtype}
        )
        model.to(self._device)
        model.eval()
        # generate() samples from torch's global generator: seed it once, like vLLM's engine seed.
        torch.manual_seed(cfg.seed)
        self._tokenizer, self._model = tokenizer, model

    def close(self) -> None:
        self._model = self._tokenizer = None

    # ------------------------------------------------------------------ prompts

    def _prompt_ids(self, request: TeacherRequest) -> list[int]:
        tok = self._tokenizer
        if request.messages is not None:
            messages = [m.model_dump() for m in request.messages]
            continue_final = messages[-1]["role"] == "assistant"
            text = tok.apply_chat_template(
                messages,
                tokenize=False,
                add_generation_prompt=not continue_final,
                continue_final_message=continue_final,
            )
            return list(tok(text, add_special_tokens=False)["input_ids"])
        return list(tok(request.prompt)["input_ids"])

    def _pad(self, rows: Sequence[list[int]]) -> tuple[Any, Any]:
        import torch

        width = max(len(r) for r in rows)
        pad = self._tokenizer.pad_token_id
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            if row:
                ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
                mask[i, width - len(row) :] = 1
        return ids.to(self._device), mask.to(self._device)

    def _prompt_logprobs(self, prompt_ids: list[int]) -> list[float | None]:
        """Log-probability of every prompt token given the ones before it (``None`` first)."""
        import torch

        ids = torch.tensor([prompt_ids], dtype=torch.long, device=self._device)
        with torch.no_grad():
            logits = self._model(input_ids=ids).logits[0].float()
        logprobs = torch.log_softmax(logits[:-1], dim=-1)
        chosen = logprobs.gather(1, ids[0, 1:].unsqueeze(1)).squeeze(1).tolist()
        return [None, *(finite_logprob(v) for v in chosen)]

    # ------------------------------------------------------------------ sampling

    def sample(self, requests: Sequence[TeacherRequest]) -> Iterator[Completion]:
        if not requests:
            return
        self._load()
        groups: dict[str, list[tuple[TeacherRequest, int, list[int]]]] = {}
        for request in requests:
            s = request.sampling
            if s.json_schema is not None:
                yield from self._errors(
                    request,
                    "json_schema constraints are not supported by the transformers teacher; "
                    "use the vllm teacher (guided decoding)",
                )
                continue
            try:
                prompt_ids = self._prompt_ids(request)
            except Exception as exc:
                yield from self._errors(request, f"{type(exc).__name__}: {exc}")
                continue
            if s.choice is not None:
                yield from self._choose(request, prompt_ids)
                continue
            key = s.model_dump_json(exclude={"n", "prompt_logprobs"})
            for index in range(s.n):
                groups.setdefault(key, []).append((request, index, prompt_ids))
        for rows in groups.values():
            for start in range(0, len(rows), self.config.batch_size):
                batch = rows[start : start + self.config.batch_size]
                try:
                    yield from self._generate(batch)
                except Exception as exc:
                    log.warning("transformers generate failed: %s", exc)
                    for request, index, _ in batch:
                        yield from error_completion(
                            request, f"{type(exc).__name__}: {exc}", model=self.model_id, indices=[index]
                        )

    def _errors(self, request: TeacherRequest, message: str) -> Iterator[Completion]:
        yield from error_completion(request, message, model=self.model_id)

    def _generate(self, batch: Sequence[tuple[TeacherRequest, int, list[int]]]) -> Iterator[Completion]:
        import torch

        tok, model = self._tokenizer, self._model
        s = batch[0][0].sampling
        ids, mask = self._pad([p for _, _, p in batch])
        kwargs: dict[str, Any] = {
            "max_new_tokens": s.max_tokens,
            "pad_token_id": tok.pad_token_id,
            "return_dict_in_generate": True,
            "output_logits": s.logprobs is not None,
        }
        if s.temperature > 0:
            kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p, top_k=0)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if s.stop:
            kwargs.update(stop_strings=list(s.stop), tokenizer=tok)
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=mask, **kwargs)
        new_tokens = out.sequences[:, ids.shape[1] :].tolist()
        eos_ids = self._eos_ids()
        prompt_lp_cache: dict[str, list[float | None]] = {}
        for row, (request, index, prompt_ids) in enumerate(batch):
            generated: list[int] = []
            finish = "length"
            for token in new_tokens[row]:
                generated.append(token)
                if token in eos_ids:
                    finish = "stop"
                    break
            text_ids = [t for t in generated if t not in eos_ids]
            text = tok.decode(text_ids, skip_special_tokens=True)
            for stop in s.stop:
                cut = text.find(stop)
                if cut >= 0:
                    text, finish = text[:cut], "stop"
            logprobs = None
            if s.logprobs is not None:
                logprobs = self._token_logprobs(out.logits, row, generated, s.logprobs)
            prompt_logprobs = None
            if request.sampling.prompt_logprobs is not None:
                if request.id not in prompt_lp_cache:
                    prompt_lp_cache[request.id] = self._prompt_logprobs(prompt_ids)
                prompt_logprobs = prompt_lp_cache[request.id]
            yield Completion(
                request_id=request.id,
                sample_index=index,
                text=text,
                finish_reason=finish,
                prompt_tokens=len(prompt_ids),
                completion_tokens=len(generated),
                logprobs=logprobs,
                prompt_logprobs=prompt_logprobs,
                model=self.model_id,
            )

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        eos = getattr(self._model.generation_config, "eos_token_id", None)
        if isinstance(eos, int):
            ids.add(eos)
        elif isinstance(eos, list):
            ids.update(eos)
        if self._tokenizer.eos_token_id is not None:
            ids.add(self._tokenizer.eos_token_id)
        return ids

    def _token_logprobs(self, logits: Sequence[Any], row: int, tokens: list[int], k: int) -> list[TokenLogprob]:
        """Raw (pre-temperature) log-probabilities, as vLLM reports them by default."""
        import torch

        tok = self._tokenizer
        out: list[TokenLogprob] = []
        for step, token in enumerate(tokens):
            lp = torch.log_softmax(logits[step][row].float(), dim=-1)
            top: dict[str, float] = {}
            if k:
                values, indices = torch.topk(lp, k)
                for value, index in zip(values.tolist(), indices.tolist(), strict=True):
                    top.setdefault(tok.decode([index]), finite_logprob(value))
            out.append(TokenLogprob(token=tok.decode([token]), logprob=finite_logprob(float(lp[token])), top=top))
        return out

    def _choose(self, request: TeacherRequest, prompt_ids: list[int]) -> Iterator[Completion]:
        """Answer a ``choice`` request by scoring each choice's tokens after the prompt."""
        import torch

        s = request.sampling
        choices = list(s.choice or [])
        tok = self._tokenizer
        eos = tok.eos_token_id
        rows = []
        for choice in choices:
            choice_ids = list(tok(choice, add_special_tokens=False)["input_ids"])
            rows.append((choice_ids + ([eos] if eos is not None else []), choice_ids))
        scores = []
        for full, _ in rows:
            ids = torch.tensor([prompt_ids + full], dtype=torch.long, device=self._device)
            with torch.no_grad():
                logits = self._model(input_ids=ids).logits[0].float()
            lp = torch.log_softmax(logits[len(prompt_ids) - 1 : -1], dim=-1)
            scores.append(float(lp.gather(1, ids[0, len(prompt_ids) :].unsqueeze(1)).sum()))
        weights = torch.tensor(scores)
        prompt_logprobs = self._prompt_logprobs(prompt_ids) if s.prompt_logprobs is not None else None
        for index in range(s.n):
            if s.temperature > 0:
                probs = torch.softmax(weights / s.temperature, dim=0)
                pick = int(torch.multinomial(probs, 1).item())
            else:
                pick = int(torch.argmax(weights).item())
            yield Completion(
                request_id=request.id,
                sample_index=index,
                text=choices[pick],
                finish_reason="stop",
                prompt_tokens=len(prompt_ids),
                completion_tokens=len(rows[pick][0]),
                prompt_logprobs=prompt_logprobs,
                model=self.model_id,
            )


@hookimpl
def register_teachers(register: Register) -> None:
    register(TransformersTeacherConfig, TransformersTeacher)
