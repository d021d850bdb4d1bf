"""Filter ``label-judge``: an LLM judge checks that each synthetic example carries its label.

* ``label`` mode (tasks with labels): the judge classifies the candidate's input, its label read
  from the first token's log-probabilities (``orders``, ``calibration``, ``first_token``: see
  :mod:`distilforge.engine.api.toolkit.labelling`); the candidate is rejected when the judge picks
  another label, or gives the intended one a probability under ``threshold``. The reason names both.
* ``verify`` mode (math): the judge solves the candidate's question; the candidate is rejected
  when the judge's final number differs from the one its answer ends with.

The judge is the run's own teacher unless the config's top-level ``judge`` names another. Its
calls go through the teacher cache, so a resumed run pays nothing twice, and are counted in the
round's metrics under ``usage.judge``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from distilforge.engine.api.components import Filter
from distilforge.engine.api.errors import ConfigError
from distilforge.engine.api.hookspecs import Register, hookimpl
from distilforge.engine.api.toolkit.labelling import (
    LABEL_SYSTEM,
    LABEL_TEMPLATE,
    SOLVE_SYSTEM,
    SOLVE_TEMPLATE,
    ask_labels,
    final_number,
    same_number,
    solve_request,
)
from distilforge.schemas import ComponentConfig, LabelReading, Record
from distilforge.schemas.validators import template_with

if TYPE_CHECKING:
    from distilforge.engine.api.context import RunContext


class LabelJudgeConfig(ComponentConfig, LabelReading):
    type: Literal["label-judge"] = "label-judge"
    mode: Literal["auto", "label", "verify"] = Field(
        "auto",
        description="'label' (classification), 'verify' (math: solve and compare); auto = label if the task has labels",
    )
    threshold: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="label mode: also reject when the judge gives the intended label less than this probability",
    )
    keep_undecided: bool = Field(
        False, description="keep a candidate the judge could not decide on (teacher error, no final number)"
    )
    max_tokens: int | None = Field(None, ge=1, description="judge answer budget; None = 8 (label) or 384 (verify)")
    system_prompt: str | None = None
    template: Annotated[str | None, template_with("task", "text", "options")] = Field(
        None, description="judge prompt; label mode fields {task} {text} {options}, verify mode {text}"
    )


class LabelJudgeFilter(Filter[LabelJudgeConfig]):
    def reject(self, records: Sequence[Record], ctx: RunContext) -> dict[str, str]:
        if not records:
            return {}
        mode = self.config.mode
        if mode == "auto":
            mode = "label" if ctx.labels else "verify"
        return self._by_label(records, ctx) if mode == "label" else self._by_solving(records, ctx)

    def _undecided(self, why: str) -> str | None:
        return None if self.config.keep_undecided else f"judge undecided: {why}"

    def _by_label(self, records: Sequence[Record], ctx: RunContext) -> dict[str, str]:
        cfg = self.config
        labels = list(ctx.labels or [])
        if not labels:
            raise ConfigError("filters: label-judge in mode 'label' needs a task with labels; use mode: verify")
        votes = ask_labels(
            ctx,
            {record.id: record.input for record in records},
            labels,
            cfg,
            purpose="judge",
            teacher=ctx.judge,
            system=cfg.system_prompt or LABEL_SYSTEM,
            template=cfg.template or LABEL_TEMPLATE,
            max_tokens=cfg.max_tokens or 8,
        )
        out: dict[str, str] = {}
        for record in records:
            vote = votes.get(record.id)
            if vote is None:
                reason = self._undecided("the judge gave no usable answer")
            else:
                intended = vote.probability(record.target)
                if vote.label != record.target or intended < cfg.threshold:
                    reason = (
                        f"judge: label {vote.label!r} (p={vote.probability(vote.label):.2f}); intended"
                        f" {record.target!r} p={intended:.2f}, threshold {cfg.threshold}"
                    )
                else:
                    reason = None
            if reason:
                out[record.id] = reason
        return out

    def _by_solving(self, records: Sequence[Record], ctx: RunContext) -> dict[str, str]:
        cfg = self.config
        requests = [
            solve_request(
                record.id,
                record.input,
                system=cfg.system_prompt or SOLVE_SYSTEM,
                template=cfg.template or SOLVE_TEMPLATE,
                max_tokens=cfg.max_tokens or 384,
            )
            for record in records
        ]
        completions = ctx.ask_teacher(requests, purpose="judge", teacher=ctx.judge)
        out: dict[str, str] = {}
        for record, request in zip(records, requests, strict=True):
            claimed = final_number(record.target)
            completion = completions[(request.id, 0)]
            solved = final_number(completion.text) if completion.ok else None
            if claimed is None:
                reason: str | None = "judge: the example's answer has no final number"
            elif solved is None:
                why = completion.error or (
                    "its answer was cut at max_tokens" if completion.finish_reason == "length" else "no final number"
                )
                reason = self._undecided(f"the judge's solution has no final answer ({why})")
            elif not same_number(solved, claimed):
                reason = f"judge: solved it as {solved:g}, the example says {claimed:g}"
            else:
                reason = None
            if reason:
                out[record.id] = reason
        return out


@hookimpl
def register_filters(register: Register) -> None:
    register(LabelJudgeConfig, LabelJudgeFilter)
