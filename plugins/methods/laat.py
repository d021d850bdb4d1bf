"""LAAT (Vukadin, Šilić, Delač, 2025): the teacher contributes knowledge, not rows.

Two rounds of the loop:

* round 0 trains the tabular student on the k-shot seed rows with no target (the plain LR/MLP
  baseline), then asks the teacher, per class (binary tasks: the positive class only), for an
  integer score in [-10, 10] per feature: ``estimates`` answers under a JSON schema, each
  validated; an invalid answer is a reject with its reason and is asked again (a fresh sample)
  up to ``retries`` times. With ``elicitation: contrast`` it asks one guided-choice question per
  feature instead (lower / similar / higher for the class, in ``orders`` answer orders) and scores
  10 x (P(higher) - P(lower)), averaged over the orders (see ``elicitation.py``);
* round 1 averages the valid answers per class and trains the same student with the
  attribution-alignment loss towards them. The report gets a section with the elicited scores
  beside the attributions the plain and the LAAT student learned.

Everything goes through the public hooks: the method's prompts and parsing are the
``build_prompts`` / ``parse_completion`` defaults, and the hand-over of the scores to the student
is this plugin's own ``train_student`` implementation. The answers live in the run state (and in
the teacher cache), so a resumed run never pays for them again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import Field

from distilforge.engine.api.components import Method, Student
from distilforge.engine.api.context import RunContext
from distilforge.engine.api.errors import ConfigError, DistilforgeError
from distilforge.engine.api.hookspecs import Register, hookimpl
from distilforge.engine.api.toolkit import write_artifact
from distilforge.plugins.methods.elicitation import (
    DEFAULT_SYSTEM,
    BadScores,
    average_scores,
    contrast_requests,
    elicitation_messages,
    parse_contrast,
    parse_reasoned,
    parse_scores,
    reasoned_requests,
    score_schema,
)
from distilforge.plugins.methods.laat_report import attribution_section, comparison_lines
from distilforge.schemas import (
    Completion,
    ComponentConfig,
    Evaluation,
    Record,
    RoundMetrics,
    SamplingParams,
    TeacherRequest,
)

ATTRIBUTIONS = "attributions.json"  # per round: the features, the learned and the elicited attributions


@runtime_checkable
class ScoreTakingStudent(Protocol):
    """A student LAAT can train: it takes per-class feature scores and reports what it learned."""

    def set_target_scores(self, scores: Mapping[str, Sequence[float]] | None) -> None: ...

    def learned_attributions(self) -> dict[str, list[float]]: ...


class LaatConfig(ComponentConfig):
    type: Literal["laat"] = "laat"
    elicitation: Literal["scores", "contrast", "reasoned"] = Field(
        "scores",
        description="scores: one JSON object of integer scores per class (the paper's); contrast: per feature, is"
        " it lower / similar / higher for the class (guided choice, read from log-probabilities); reasoned: the"
        " same question answered after a few sentences of reasoning, `estimates` samples per feature",
    )
    orders: int = Field(3, ge=1, le=3, description="contrast: answer orders asked per feature, averaged")
    estimates: int = Field(5, ge=1, description="valid answers wanted per class; their scores are averaged")
    retries: int = Field(3, ge=0, description="times an invalid answer is asked for again (a fresh sample)")
    temperature: float = Field(0.7, ge=0.0, le=2.0, description="> 0, or every estimate and retry is the same")
    max_tokens: int | None = Field(
        None, ge=16, description="answer budget; default 24 per feature + 64 (scores), 200 (reasoned)"
    )
    system_prompt: str = Field(DEFAULT_SYSTEM, description="scores mode's system prompt")


class Laat(Method[LaatConfig]):
    @property
    def rounds(self) -> int:
        return 1

    @property
    def retries(self) -> int:
        return self.config.retries

    def check(self, ctx: RunContext) -> None:
        if not isinstance(ctx.student, ScoreTakingStudent):
            raise ConfigError(
                f"student.type: method 'laat' needs a student that takes feature scores (type: tabular), "
                f"got {ctx.student.name!r}"
            )

    # ------------------------------------------------------------------ round 0: ask
    def select_failures(self, records: Sequence[Record], evaluation: Evaluation, ctx: RunContext) -> list[Record]:
        return []  # LAAT asks about the features, not about examples

    def features(self, ctx: RunContext) -> list[dict[str, str]]:
        features: list[dict[str, str]] | None = ctx.dataset_info.get("features")
        if not features:
            raise DistilforgeError(
                "method 'laat' needs a dataset that lists its features (dataset.type: table with a feature YAML)"
            )
        return features

    def classes(self, ctx: RunContext) -> list[str]:
        """The classes whose scores are elicited: the positive one for binary tasks, else every class."""
        labels = list(ctx.labels or [])
        if len(labels) == 2:
            return [ctx.dataset_info.get("positive") or labels[1]]
        return labels

    def build_prompts(self, failures: Sequence[Record], ctx: RunContext) -> list[TeacherRequest]:
        features = self.features(ctx)
        names = [f["name"] for f in features]
        c = self.config
        if c.elicitation == "contrast":
            return [r for label in self.classes(ctx) for r in contrast_requests(ctx.task, features, label, c.orders)]
        if c.elicitation == "reasoned":
            return [
                r
                for label in self.classes(ctx)
                for r in reasoned_requests(
                    ctx.task,
                    features,
                    label,
                    samples=c.estimates,
                    temperature=c.temperature,
                    max_tokens=c.max_tokens or 200,
                )
            ]
        sampling = SamplingParams(
            temperature=c.temperature,
            max_tokens=c.max_tokens or 24 * len(names) + 64,
            n=c.estimates,
            json_schema=score_schema(names),
        )
        return [
            TeacherRequest(
                messages=elicitation_messages(ctx.task, features, label, c.system_prompt),
                sampling=sampling,
                meta={"class": label},
            )
            for label in self.classes(ctx)
        ]

    def parse_completion(self, completion: Completion, request: TeacherRequest, ctx: RunContext) -> list[Record] | str:
        names = [f["name"] for f in self.features(ctx)]
        label = request.meta["class"]
        state = ctx.state.setdefault(
            "laat", {"estimates": {}, "answers": 0, "prompt_tokens": 0, "completion_tokens": 0}
        )
        state["answers"] += 1
        state["prompt_tokens"] += completion.prompt_tokens
        state["completion_tokens"] += completion.completion_tokens
        try:
            style = self.config.elicitation
            if style != "scores":
                score = parse_contrast(completion) if style == "contrast" else parse_reasoned(completion.text)
                contrast = state.setdefault("contrast", {}).setdefault(label, {})
                contrast.setdefault(str(request.meta["feature"]), []).append(score)
                return []
            scores = parse_scores(completion.text, names)
        except BadScores as exc:
            return str(exc)
        state["estimates"].setdefault(label, []).append(scores)
        return []

    # ------------------------------------------------------------------ round 1: train towards the scores
    def elicited(self, ctx: RunContext) -> dict[str, Any]:
        """Per class: mean and sd of the valid scores, and how many answers they come from."""
        names = [f["name"] for f in self.features(ctx)]
        state = ctx.state.get("laat", {})
        out: dict[str, Any] = {}
        for label in self.classes(ctx):
            if self.config.elicitation != "scores":
                out[label] = self._contrast_scores(state, label, names)
                continue
            estimates = state.get("estimates", {}).get(label, [])
            if not estimates:
                raise DistilforgeError(
                    f"laat: the teacher gave no valid feature scores for class {label!r} in "
                    f"{state.get('answers', 0)} answers (reasons in rejects.jsonl); raise method.retries or "
                    "method.max_tokens, or use a stronger teacher"
                )
            mean, sd = average_scores(estimates, names)
            out[label] = {"mean": mean, "sd": sd, "n": len(estimates)}
        return out

    @staticmethod
    def _contrast_scores(state: dict[str, Any], label: str, names: list[str]) -> dict[str, Any]:
        answers = state.get("contrast", {}).get(label, {})
        missing = [name for name in names if not answers.get(name)]
        if missing:
            raise DistilforgeError(
                f"laat: no usable contrast answer for class {label!r} on features {missing[:6]} (reasons in"
                " rejects.jsonl); raise method.retries, or use a teacher that returns log-probabilities"
            )
        values = [np.asarray(answers[name], dtype=np.float64) for name in names]
        return {
            "mean": [float(v.mean()) for v in values],
            "sd": [float(v.std()) for v in values],
            "n": sum(len(v) for v in values),  # answers, over all features
        }

    def train(self, student: Student[Any], records: Sequence[Record], ctx: RunContext) -> dict[str, float]:
        taker = student
        assert isinstance(taker, ScoreTakingStudent)  # check() refused any other student
        elicited = self.elicited(ctx) if ctx.round > 0 else None
        taker.set_target_scores(None if elicited is None else {k: v["mean"] for k, v in elicited.items()})
        stats = student.train(records, seed=ctx.seed)
        learned = taker.learned_attributions()
        record = {"features": [f["name"] for f in self.features(ctx)], "learned": learned, "elicited": elicited}
        write_artifact(ctx.round_dir() / ATTRIBUTIONS, json.dumps(record, indent=1))
        return stats

    def report_section(self, ctx: RunContext) -> str | None:
        """Plain vs LAAT student on the test split (accuracy, F1, ROC-AUC, the majority-class baseline), then
        the elicited scores beside the attributions both students learned."""
        layout = ctx.layout
        paths = [layout.round_file(r, ATTRIBUTIONS) for r in (0, 1)]
        if not paths[1].exists():
            return None
        plain, laat = (json.loads(p.read_text())["learned"] if p.exists() else None for p in paths)
        metrics = [RoundMetrics.model_validate_json(layout.metrics(r).read_text()) for r in (0, 1)]
        report_dir = layout.report_sections
        report_dir.mkdir(exist_ok=True)
        state = ctx.state.get("laat", {})
        comparison = comparison_lines(metrics, [r.target for r in ctx.test], list(ctx.labels or []))
        text = attribution_section(
            features=[f["name"] for f in self.features(ctx)],
            elicited=self.elicited(ctx),
            learned=laat,
            plain=plain,
            answers=int(state.get("answers", 0)),
            tokens=(int(state.get("prompt_tokens", 0)), int(state.get("completion_tokens", 0))),
            out_dir=report_dir,
        )
        return "\n".join([*comparison, text])


@hookimpl
def register_methods(register: Register) -> None:
    register(LaatConfig, Laat)


@hookimpl
def train_student(student: Student[Any], records: Sequence[Record], ctx: RunContext) -> dict[str, float] | None:
    """Hand the elicited scores to the student (round 1) or none (round 0), then train; other methods pass."""
    if isinstance(ctx.method, Laat):
        return ctx.method.train(student, records, ctx)
    return None
