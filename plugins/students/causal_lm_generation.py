"""Greedy decoding for the ``causal-lm`` student: batched, left-padded, stopped after ``#### N``.

The caller sets threads, ``no_grad`` and autocast; every row's confidence is the geometric mean
of its greedy tokens' probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from distilforge.engine.api.components import Prediction
from distilforge.plugins.students.catalogue import CausalLMConfig
from distilforge.plugins.students.math_answers import FINAL_LINE, final_answer


@dataclass
class CausalLMPrediction(Prediction):
    """A prediction that also keeps the generated text (``label`` is its final number)."""

    text: str = ""
    generated_tokens: int = 0


class _StopAfterAnswer:
    """Per-row stopping criterion: a row is done once its new text holds a ``#### N`` line."""

    def __init__(self, tokenizer: Any, prompt_len: int) -> None:
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_len :], skip_special_tokens=True)
        return torch.tensor([bool(FINAL_LINE.search(t)) for t in texts], dtype=torch.bool)


class _RecordMaxLogprob:
    """Logits processor that records the greedy token's log-probability at every step."""

    def __init__(self) -> None:
        self.steps: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self.steps.append(torch.log_softmax(scores.float(), dim=-1).max(dim=-1).values)
        return scores


def greedy_answers(
    model: nn.Module, tok: Any, prompts: Sequence[list[int]], cfg: CausalLMConfig
) -> list[CausalLMPrediction]:
    """One greedy answer per prompt (token ids), in the prompts' order."""
    from transformers import StoppingCriteriaList

    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
    out: list[CausalLMPrediction | None] = [None] * len(prompts)
    pad, eos = int(tok.pad_token_id), int(tok.eos_token_id)
    for b in range(0, len(order), cfg.predict_batch_size):
        idx = order[b : b + cfg.predict_batch_size]
        width = max(len(prompts[i]) for i in idx)
        input_ids = torch.full((len(idx), width), pad, dtype=torch.long)
        attention = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            input_ids[row, width - len(prompts[i]) :] = torch.tensor(prompts[i])
            attention[row, width - len(prompts[i]) :] = 1
        recorder = _RecordMaxLogprob()
        stops = StoppingCriteriaList([_StopAfterAnswer(tok, width)] if cfg.stop_after_final_answer else [])
        generated = model.generate(
            input_ids=input_ids,
            attention_mask=attention,
            max_new_tokens=cfg.max_new_tokens,
            do_sample=False,
            pad_token_id=pad,
            eos_token_id=eos,
            logits_processor=[recorder],
            stopping_criteria=stops,
        )[:, width:]
        step_logprobs = torch.stack(recorder.steps, dim=1) if recorder.steps else torch.zeros(len(idx), 0)
        for row, i in enumerate(idx):
            ids = generated[row].tolist()
            # A finished row is filled with ``pad`` (SmolLM2: pad == eos); the EOS counts.
            ends = [k for k, t in enumerate(ids) if t in (eos, pad)]
            length = ends[0] + (ids[ends[0]] == eos) if ends else len(ids)
            text = tok.decode(ids[:length], skip_special_tokens=True)
            match = FINAL_LINE.search(text) if cfg.stop_after_final_answer else None
            if match:
                text = text[: match.end()]
            steps = step_logprobs[row, :length]
            confidence = float(torch.exp(steps.mean())) if steps.numel() else None
            answer = final_answer(text)
            out[i] = CausalLMPrediction(
                label=answer if answer is not None else text.strip(),
                confidence=confidence,
                text=text.strip(),
                generated_tokens=length,
            )
    return [p for p in out if p is not None]
