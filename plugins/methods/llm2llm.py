"""LLM2LLM (Lee et al., 2024): augment the seed examples the student gets wrong.

Each round the student is retrained from its base weights on seed + synthetic data, evaluated
on that training set, and for every *seed* example it gets wrong the teacher writes ``k`` new
examples modelled on it (errors on synthetic examples are never augmented: the paper's
ablation shows that hurts). The prompt shows the wrong example with its correct label or
answer, after one worked demonstration. The ``k`` examples are ``k`` samples of one request,
so each is cached separately.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from distilforge.engine.api.components import Method
from distilforge.engine.api.context import RunContext
from distilforge.engine.api.hookspecs import Register, hookimpl
from distilforge.plugins.methods.text_examples import BadAnswer, answer_budget, extract_example, normalise
from distilforge.schemas import (
    ChatMessage,
    Completion,
    ComponentConfig,
    Evaluation,
    Record,
    SamplingParams,
    TeacherRequest,
    content_hash,
)
from distilforge.schemas.validators import template_with

CLASSIFICATION_SYSTEM = "You write short, realistic training examples for a text classifier."
CLASSIFICATION_TEMPLATE = (
    "Task: {task}\n"
    'A student model struggles with this example (it got it wrong or is unsure). Its correct label is "{label}".\n'
    "Example: {input}\n\n"
    'Write one new example whose correct label is also "{label}". Keep the same kind of wording and '
    "difficulty, but change the subject and the words; do not copy the example. "
    "Reply with the new example only."
)
MATH_SYSTEM = "You write new grade-school math word problems with worked solutions."
MATH_TEMPLATE = (
    "A student struggles with this problem. Here is the problem with its correct solution.\n"
    "Question: {input}\nAnswer: {target}\n\n"
    "Write one new problem that needs the same skills and techniques. Rules: change the names and "
    "the numbers, do not copy the original, and keep the format exactly: "
    "'Question: ...' then 'Answer: ...' with the reasoning, ending with '#### <number>'."
)


class Demonstration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: str
    target: str
    new_input: str
    new_target: str = ""


DEFAULT_DEMOS = {
    "classification": Demonstration(
        input="The soup was cold and the waiter ignored us for an hour.",
        target="negative",
        new_input="Our pasta arrived lukewarm, and nobody came back to check on us all evening.",
    ),
    "math": Demonstration(
        input="Tom has 3 boxes with 4 apples each. He eats 2 apples. How many apples are left?",
        target="Tom starts with 3 * 4 = 12 apples. After eating 2 he has 12 - 2 = 10.\n#### 10",
        new_input="Maria buys 5 packs of 6 pencils. She gives away 7 pencils. How many pencils does she keep?",
        new_target="Maria has 5 * 6 = 30 pencils. After giving away 7 she keeps 30 - 7 = 23.\n#### 23",
    ),
}


class LLM2LLMConfig(ComponentConfig):
    type: Literal["llm2llm"] = "llm2llm"
    rounds: int = Field(3, ge=0, description="augmentation rounds (reference: 10)")
    k: int = Field(1, ge=1, description="new examples per failure per round (reference: 1)")
    task_type: Literal["classification", "math"] = "classification"
    max_failures_per_round: int | None = Field(
        None, ge=1, description="budget: augment at most this many failures a round"
    )
    min_confidence: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="also treat a seed the student gets right with less than this confidence as a failure;"
        " None = only wrong answers (the reference). Useful when the student fits its few seeds perfectly",
    )
    max_synthetic: int | None = Field(
        None, ge=1, description="budget: stop asking once this many synthetic records exist"
    )
    system_prompt: str | None = None
    prompt_template: Annotated[str | None, template_with("task", "input", "label", "target")] = Field(
        None, description="override the prompt; fields: {task} {input} {label} {target}"
    )
    demonstration: Demonstration | None = Field(
        None,
        description="the worked example shown before each request; None = classification: two other seed examples"
        " of the failure's label (one as the example, one as the answer), so the demonstration is in the task's own"
        " domain and style; math: a built-in word problem",
    )
    sampling: SamplingParams | None = Field(
        None,
        description="teacher sampling; default temperature 1.0 and max_tokens sized from the longest seed input"
        " (about 1.5x its tokens), at least 96 (classification) or 320 (math)",
    )
    min_chars: int = Field(12, ge=1)


_ANSWER = re.compile(r"####\s*\$?\s*(-?[\d,]*\.?\d+)")


class LLM2LLM(Method[LLM2LLMConfig]):
    @property
    def rounds(self) -> int:
        return self.config.rounds

    def select_failures(self, records: Sequence[Record], evaluation: Evaluation, ctx: RunContext) -> list[Record]:
        wrong = evaluation.wrong_ids()
        if self.config.min_confidence is not None:
            threshold = self.config.min_confidence
            wrong |= {x.record_id for x in evaluation.results if x.confidence is not None and x.confidence < threshold}
        failures = [r for r in records if r.origin == "seed" and r.id in wrong]
        if self.config.max_synthetic is not None:
            room = self.config.max_synthetic - sum(1 for r in records if r.origin == "synthetic")
            failures = failures[: max(0, room // self.config.k)]
        if self.config.max_failures_per_round is not None:
            failures = failures[: self.config.max_failures_per_round]
        return failures

    def _demonstration(self, record: Record, ctx: RunContext) -> Demonstration:
        """The configured demonstration; else, for classification, two other seeds with the same label
        (picked by the failure's id, so a resumed round builds the same prompt)."""
        if self.config.demonstration is not None:
            return self.config.demonstration
        if self.config.task_type == "classification":
            peers = sorted(
                (r for r in ctx.pool if r.origin == "seed" and r.target == record.target and r.id != record.id),
                key=lambda r: content_hash([record.id, r.id]),
            )
            if len(peers) >= 2:
                return Demonstration(input=peers[0].input, target=record.target, new_input=peers[1].input)
        return DEFAULT_DEMOS[self.config.task_type]

    def _messages(self, record: Record, ctx: RunContext) -> list[ChatMessage]:
        c = self.config
        math = c.task_type == "math"
        template = c.prompt_template or (MATH_TEMPLATE if math else CLASSIFICATION_TEMPLATE)
        system = c.system_prompt or (MATH_SYSTEM if math else CLASSIFICATION_SYSTEM)
        demo = self._demonstration(record, ctx)
        task = ctx.task or "Classify the text."

        def fill(input_: str, target: str) -> str:
            return template.format(task=task, input=input_, label=target, target=target)

        demo_answer = f"Question: {demo.new_input}\nAnswer: {demo.new_target}" if math else demo.new_input
        return [
            ChatMessage(role="system", content=system),
            ChatMessage(role="user", content=fill(demo.input, demo.target)),
            ChatMessage(role="assistant", content=demo_answer),
            ChatMessage(role="user", content=fill(record.input, record.target)),
        ]

    def build_prompts(self, failures: Sequence[Record], ctx: RunContext) -> list[TeacherRequest]:
        seeds = [r.input for r in ctx.pool if r.origin == "seed"]
        floor = 320 if self.config.task_type == "math" else 96
        base = self.config.sampling or SamplingParams(temperature=1.0, max_tokens=answer_budget(seeds, floor))
        sampling = base.model_copy(update={"n": self.config.k})
        return [
            TeacherRequest(
                messages=self._messages(record, ctx),
                sampling=sampling,
                meta={"parent_id": record.id, "target": record.target, "parent_input": record.input},
                # a seed that is still wrong next round gets fresh examples, not the cached ones
                salt=f"round {ctx.round}",
            )
            for record in failures
        ]

    def parse_completion(self, completion: Completion, request: TeacherRequest, ctx: RunContext) -> list[Record] | str:
        truncated = completion.finish_reason == "length"
        parent_input = str(request.meta.get("parent_input", ""))
        if self.config.task_type == "math":
            if truncated:
                return "truncated: the answer hit max_tokens"
            return self._parse_math(completion.text, parent_input, request)
        try:
            candidate = extract_example(
                completion.text, truncated=truncated, min_chars=self.config.min_chars, original=parent_input
            )
        except BadAnswer as error:
            return str(error)
        return [
            Record(
                input=candidate,
                target=str(request.meta["target"]),
                origin="synthetic",
                parent_id=request.meta.get("parent_id"),
                meta={"truncated": False},  # extract_example refuses a cut example
            )
        ]

    def _parse_math(self, text: str, parent_input: str, request: TeacherRequest) -> list[Record] | str:
        text = text.replace("**", "")
        match = re.search(r"question\s*:\s*(.+?)\s*answer\s*:\s*(.+)", text, flags=re.I | re.S)
        if not match:
            return "malformed: expected 'Question: ... Answer: ...'"
        question, answer = (" ".join(match.group(1).split()), match.group(2).strip())
        final = _ANSWER.search(answer)
        if not final:
            return "malformed: the answer does not end with '#### <number>'"
        answer = answer[: final.start()].rstrip() + f"\n#### {final.group(1).replace(',', '')}"
        answer = answer.strip()
        if normalise(question) == normalise(parent_input):
            return "copied the original problem"
        return [Record(input=question, target=answer, origin="synthetic", parent_id=request.meta.get("parent_id"))]


@hookimpl
def register_methods(register: Register) -> None:
    register(LLM2LLMConfig, LLM2LLM)
