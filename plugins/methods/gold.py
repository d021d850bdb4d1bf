"""GOLD (Gholami et al., 2024): OOD-guided data generation from a task description and a few examples.

One round of the loop is one *generation batch*. Each batch the teacher writes

* a training batch: ``batch_size`` examples, the labels taken in turn, from a prompt holding the
  task description and ``examples_per_label`` real examples per label (as earlier turns of the
  chat) — and, on every ``feedback_every``-th batch, the current *feedback* samples as further
  examples;
* a validation batch: ``validation_size`` examples from the same prompt plus an instruction to
  write something "significantly different ... from a different topic and domain".

The energy scorer (a separate plugin on the OOD-scoring hook) scores every new record with the
current student. Feedback is chosen by rank band, not by threshold: the validation batch sorted
by energy ascending, ranks in ``[band[0], band[1])`` — out of distribution for the student, but
short of the top ranks, which are most likely noise. The student is retrained on everything
generated so far every ``train_every`` batches (and after the last). Validation samples are only
ever shown to the teacher; they are never trained on.

Each feedback round records what its band saw in ``feedback_band.json`` (ranks below, in and above
the band, the energies at its edges); the report section (:meth:`Gold.report_section`) is built from
those files, the pool and the rejects.

``feedback: false`` is the no-feedback baseline (ZeroGen-style): the same prompts, no validation
batch, no band selection, so the two are compared on the same number of training samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field, field_validator

from distilforge.engine.api.components import Method
from distilforge.engine.api.context import RunContext
from distilforge.engine.api.errors import ConfigError, DistilforgeError
from distilforge.engine.api.hookspecs import Register, hookimpl
from distilforge.engine.api.toolkit import write_artifact
from distilforge.plugins.methods.gold_report import (
    BAND_FILE,
    GoldRun,
    band_summary,
    gold_section,
    read_bands,
    read_rejects,
)
from distilforge.plugins.methods.text_examples import BadAnswer, answer_budget, extract_example
from distilforge.schemas import (
    ChatMessage,
    Completion,
    ComponentConfig,
    Evaluation,
    Record,
    SamplingParams,
    TeacherRequest,
)
from distilforge.schemas.validators import template_with

SYSTEM = (
    "You write short, realistic training examples for a text classifier. Task: {task} Reply with the example text only."
)
REQUEST = 'Write one example whose label is "{label}".{ood}'
OOD_INSTRUCTION = (
    " The new example must be significantly different from the examples above: from a different topic and domain."
)
VALIDATION, TRAINING = "validation", "training"


def rank_band(scores: Sequence[float], low: float, high: float) -> list[int]:
    """Indices of the items whose rank ``r`` (0-based, ascending by score, ties in input order)
    satisfies ``low <= r / n < high`` — GOLD's band of "out of distribution, but not noise"."""
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"band must satisfy 0 <= low < high <= 1, got [{low}, {high})")
    n = len(scores)
    order = sorted(range(n), key=lambda i: scores[i])
    return [order[r] for r in range(n) if low * n <= r < high * n]


class GoldConfig(ComponentConfig):
    type: Literal["gold"] = "gold"
    batches: int = Field(20, ge=1, description="generation batches, one per round (reference: 375)")
    batch_size: int = Field(8, ge=1, description="training examples the teacher writes per batch (reference: 8)")
    validation_size: int = Field(8, ge=2, description="OOD validation examples per batch, ranked by energy")
    train_every: int = Field(5, ge=1, description="retrain the student every N batches (reference: 25)")
    band: tuple[float, float] = Field(
        (0.5, 0.8), description="feedback = validation ranks in [low, high) of the batch sorted by energy ascending"
    )
    feedback: bool = Field(True, description="false = the no-feedback baseline: no validation batch, no band")
    feedback_every: int = Field(2, ge=1, description="feedback samples are appended on every N-th batch")
    examples_per_label: int = Field(3, ge=1, description="real (seed) examples per label shown in every prompt")
    train_on_seed: bool = Field(False, description="also train on the real examples (GOLD trains on generated data)")
    score: str = Field("energy", min_length=1, description="the Record.scores key the band is taken over")
    system_prompt: Annotated[str, template_with("task")] = Field(SYSTEM, description="field: {task}")
    request_template: Annotated[str, template_with("label", "ood")] = Field(
        REQUEST, description="one user turn per example shown and one for the request; fields: {label} {ood}"
    )
    ood_instruction: str = OOD_INSTRUCTION
    sampling: SamplingParams | None = Field(
        None,
        description="teacher sampling; None = temperature 1.0, stop at the end of the first paragraph (the"
        " example), max_tokens 1.5x the longest seed example's tokens + 16 (at least 96)",
    )
    min_chars: int = Field(12, ge=1)

    @field_validator("band")
    @classmethod
    def _band(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"band must be [low, high) with 0 <= low < high <= 1, e.g. [0.5, 0.8]; got {list(value)}")
        return value


def _spread(total: int, labels: Sequence[str], offset: int) -> dict[str, int]:
    """``total`` examples over ``labels`` in turn, starting at ``offset`` (so uneven counts even out)."""
    counts = dict.fromkeys(labels, 0)
    for i in range(total):
        counts[labels[(offset + i) % len(labels)]] += 1
    return {label: n for label, n in counts.items() if n}


class Gold(Method[GoldConfig]):
    @property
    def rounds(self) -> int:
        return self.config.batches

    def check(self, ctx: RunContext) -> None:
        c = self.config
        if c.feedback and c.score == "energy" and not any(s.name == "energy" for s in ctx.scorers):
            raise ConfigError(
                "method: gold with feedback ranks its validation samples by scores['energy'], but no energy scorer"
                " is configured. Add `scorers: [{type: energy}]`, or set `method.feedback: false` for the"
                " no-feedback baseline."
            )

    def should_train(self, round_index: int, ctx: RunContext) -> bool:
        return round_index % self.config.train_every == 0 or round_index == self.config.batches

    def training_records(self, pool: Sequence[Record], ctx: RunContext) -> list[Record]:
        generated = [r for r in pool if r.origin == "synthetic" and r.meta.get("gold") == TRAINING]
        if self.config.train_on_seed or not generated:
            return [r for r in pool if r.origin == "seed"] + generated
        return generated

    def _uses_feedback(self, round_index: int) -> bool:
        every = self.config.feedback_every
        return self.config.feedback and round_index > 0 and round_index % every == every - 1

    def select_failures(self, records: Sequence[Record], evaluation: Evaluation, ctx: RunContext) -> list[Record]:
        """The feedback samples: the band of the previous batch's validation samples by energy."""
        if not self._uses_feedback(ctx.round):
            return []
        last = [r for r in records if r.meta.get("gold") == VALIDATION and r.round == ctx.round - 1]
        unscored = [r.id for r in last if self.config.score not in r.scores]
        if unscored:
            raise DistilforgeError(
                f"gold: {len(unscored)} validation samples of round {ctx.round - 1} have no {self.config.score!r}"
                " score; is the energy scorer configured?"
            )
        low, high = self.config.band
        chosen = rank_band([r.scores[self.config.score] for r in last], low, high)
        summary = band_summary(last, chosen, self.config.score, self.config.band, ctx.round)
        write_artifact(ctx.round_dir() / BAND_FILE, summary)
        return [last[i] for i in chosen]

    def report_section(self, ctx: RunContext) -> str:
        """Retrained rounds, the energy band of each feedback round, feedback and kept-out samples, filter
        rejects (see :mod:`distilforge.plugins.methods.gold_report`)."""
        rounds = range(self.config.batches + 1)
        retrained = [r for r in rounds if r == 0 or self.should_train(r, ctx)]
        run = GoldRun(
            settings=self.config.model_dump(mode="json"),
            retrained=retrained,
            kept=[r for r in rounds if r not in retrained],
            feedback_rounds=[r for r in range(self.config.batches) if self._uses_feedback(r)],
            pool=ctx.pool,
            bands=read_bands(ctx.layout),
            rejects=read_rejects(ctx.layout),
        )
        return gold_section(run)

    def _examples(self, ctx: RunContext, labels: list[str]) -> list[Record]:
        """``examples_per_label`` seeds of each label, interleaved so no label always comes last."""
        k = self.config.examples_per_label
        per_label = {label: [r for r in ctx.pool if r.origin == "seed" and r.target == label][:k] for label in labels}
        for label, seeds in per_label.items():
            if len(seeds) < k:
                raise DistilforgeError(
                    f"gold: the dataset has {len(seeds)} seed examples of label {label!r}, method.examples_per_label"
                    f" asks for {k}; lower it or give the dataset more seeds"
                )
        return [per_label[label][i] for i in range(k) for label in labels]

    def _messages(self, ctx: RunContext, examples: list[Record], label: str, ood: bool) -> list[ChatMessage]:
        """The examples as earlier turns of the conversation (a small teacher copies the form of its
        own past answers far better than it follows a description of the form), then the request."""
        c = self.config
        messages = [ChatMessage(role="system", content=c.system_prompt.format(task=ctx.task or "Classify the text."))]
        for record in examples:
            messages.append(ChatMessage(role="user", content=c.request_template.format(label=record.target, ood="")))
            messages.append(ChatMessage(role="assistant", content=record.input))
        ood_text = c.ood_instruction if ood else ""
        messages.append(ChatMessage(role="user", content=c.request_template.format(label=label, ood=ood_text)))
        return messages

    def build_prompts(self, failures: Sequence[Record], ctx: RunContext) -> list[TeacherRequest]:
        c = self.config
        labels = sorted(ctx.labels or {r.target for r in ctx.pool if r.origin == "seed"})
        if not labels:
            raise DistilforgeError("gold needs labelled seed examples (a classification dataset)")
        examples = self._examples(ctx, labels) + list(failures)
        seeds = [r.input for r in ctx.pool if r.origin == "seed"]
        sampling = c.sampling or SamplingParams(temperature=1.0, max_tokens=answer_budget(seeds, 96), stop=["\n\n"])
        kinds = [(TRAINING, c.batch_size)] + ([(VALIDATION, c.validation_size)] if c.feedback else [])
        requests = []
        for kind, size in kinds:
            for label, n in _spread(size, labels, ctx.round * size).items():
                requests.append(
                    TeacherRequest(
                        messages=self._messages(ctx, examples, label, ood=kind == VALIDATION),
                        sampling=sampling.model_copy(update={"n": n}),
                        meta={"label": label, "gold": kind, "feedback_ids": [r.id for r in failures]},
                        salt=f"batch {ctx.round}",  # the same prompt in another batch draws new samples
                    )
                )
        return requests

    def parse_completion(self, completion: Completion, request: TeacherRequest, ctx: RunContext) -> list[Record] | str:
        try:
            text = extract_example(
                completion.text,
                truncated=completion.finish_reason == "length",
                min_chars=self.config.min_chars,
                instruction=request.messages[-1].content if request.messages else "",
            )
        except BadAnswer as error:
            return str(error)
        kind = str(request.meta["gold"])
        # extract_example refuses a cut example, so what it returns is complete
        meta = {"gold": kind, "truncated": False}
        return [Record(input=text, target=str(request.meta["label"]), origin="synthetic", meta=meta)]


@hookimpl
def register_methods(register: Register) -> None:
    register(GoldConfig, Gold)
