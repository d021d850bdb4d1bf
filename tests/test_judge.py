"""The LLM judge: the ``label-judge`` filter (modes label and verify), its use of the teacher
cache and the round metrics, a separate ``judge:`` teacher, and the teacher's zero-shot baseline
(``teacher_baseline.json``) with its line in the report."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import Field
from rich.console import Console

from distilforge.engine.api.components import Filter, Teacher
from distilforge.engine.api.context import RunContext
from distilforge.engine.api.errors import ConfigError, DistilforgeError, PluginError
from distilforge.engine.api.hookspecs import Register, hookimpl
from distilforge.engine.api.toolkit.labelling import (
    LABEL_SYSTEM,
    SOLVE_SYSTEM,
    _first_token_scores,
    combine_votes,
    label_distribution,
    label_requests,
)
from distilforge.engine.report import headline
from distilforge.engine.runner import resume_run
from distilforge.engine.sampling import CachedTeacherAccess
from distilforge.engine.store import TeacherCache
from distilforge.engine.teacher_baseline import FILE, load_teacher_baseline, run_teacher_baseline
from distilforge.plugins.filters.label_judge import LabelJudgeConfig, LabelJudgeFilter
from distilforge.schemas import Completion, ComponentConfig, Record, RoundMetrics, TeacherRequest
from distilforge.schemas.config import TeacherBaselineConfig
from distilforge.schemas.records import TokenLogprob
from distilforge.testing import TINY_LABELS, TINY_TASK, read_metrics, read_records, read_rejects, tiny_sentiment
from distilforge.testing.components import ScriptedTeacher
from distilforge.testing.runner import build_engine, run_round

# --------------------------------------------------------------------------- test components


class JudgeScriptConfig(ComponentConfig):
    type: Literal["judge-script"] = "judge-script"
    model: str = "judge-script"
    labels: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="text substring -> label probabilities, served as first-token logprobs"
    )
    solutions: dict[str, str] = Field(default_factory=dict, description="problem substring -> worked solution")
    finish_reason: str = "stop"


SERVED: list[str] = []  # the user message of every request any JudgeScript answered
CLOSED: list[str] = []


class JudgeScript(Teacher[JudgeScriptConfig]):
    """A judge that answers label requests with first-token log-probabilities (like vLLM) and solves
    problems from a script; a request no rule matches gets an error (labels) or no number (solving)."""

    @property
    def model_id(self) -> str:
        return f"judge-script:{self.config.model}"

    def sample(self, requests: Sequence[TeacherRequest]) -> Iterator[Completion]:
        for request in requests:
            text = (request.messages or [])[-1].content if request.messages else str(request.prompt)
            SERVED.append(text)
            indices = request.meta.get("sample_indices") or range(request.sampling.n)
            for position, _ in enumerate(indices):
                base: dict[str, Any] = {"request_id": request.id, "sample_index": position, "model": self.model_id}
                if "Allowed labels:" in text:  # guided choice or one free token: first-token logprobs either way
                    probs = next((p for key, p in self.config.labels.items() if key in text), None)
                    if probs is None:
                        yield Completion(**base, error="judge-script: no rule for this text")
                        continue
                    best = max(probs, key=lambda k: probs[k])
                    top = {label: math.log(p) for label, p in probs.items() if p > 0}
                    logprobs = [TokenLogprob(token=best, logprob=top[best], top=top)]
                    yield Completion(**base, text=best, finish_reason="stop", logprobs=logprobs, completion_tokens=1)
                else:
                    solution = next((s for key, s in self.config.solutions.items() if key in text), "I am not sure.")
                    yield Completion(
                        **base, text=solution, finish_reason=self.config.finish_reason, completion_tokens=9
                    )

    def close(self) -> None:
        CLOSED.append(self.model_id)


class ExplodeOnceConfig(ComponentConfig):
    type: Literal["explode-once"] = "explode-once"


ARMED = {"explode": False}


class ExplodeOnce(Filter[ExplodeOnceConfig]):
    """Kills the run the first time it is reached while armed (a crash after the judge ran)."""

    def reject(self, records: Sequence[Record], ctx: RunContext) -> dict[str, str]:
        if ARMED["explode"]:
            ARMED["explode"] = False
            raise RuntimeError("crash after judging")
        return {}


class SessionVLLMConfig(ComponentConfig):
    type: Literal["session-vllm"] = "session-vllm"


LIVE: dict[str, Any] = {"teacher": None, "requests": 0}


class SessionVLLM(Teacher[SessionVLLMConfig]):
    """The session's real vLLM teacher (tests/fixtures_models.py) as a config-built component;
    closing it leaves the engine to the fixture that owns it."""

    @property
    def model_id(self) -> str:
        return str(LIVE["teacher"].model_id)

    def sample(self, requests: Sequence[TeacherRequest]) -> Iterator[Completion]:
        LIVE["requests"] += len(requests)
        yield from LIVE["teacher"].sample(requests)


class JudgeKit:
    @hookimpl
    def register_teachers(self, register: Register) -> None:
        register(JudgeScriptConfig, JudgeScript)
        register(SessionVLLMConfig, SessionVLLM)

    @hookimpl
    def register_filters(self, register: Register) -> None:
        register(ExplodeOnceConfig, ExplodeOnce)


KIT = JudgeKit()


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    SERVED.clear()
    CLOSED.clear()
    ARMED["explode"] = False
    yield
    ARMED["explode"] = False


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> list[ScriptedTeacher]:
    """Every ScriptedTeacher the runs of a test build (their ``calls`` list what they were asked)."""
    made: list[ScriptedTeacher] = []
    original = ScriptedTeacher.__init__

    def init(self: ScriptedTeacher, config: Any) -> None:
        original(self, config)
        made.append(self)

    monkeypatch.setattr(ScriptedTeacher, "__init__", init)
    return made


def asked(teachers: list[ScriptedTeacher], system: str = LABEL_SYSTEM) -> int:
    """How many judging requests (label or solve, by their system prompt) the teachers were sent."""
    return sum(1 for t in teachers for _, text in t.calls if system in text)


# --------------------------------------------------------------------------- label mode, in isolation

# the reading of the earlier default: both label orders, guided choice, raw probabilities
TWO_ORDERS: dict[str, Any] = {"orders": 2, "calibration": "none", "first_token": False}

UPBEAT = Record(input="An upbeat review of a film.", target="positive", origin="synthetic")
GLOOMY = Record(input="A gloomy review of a film.", target="positive", origin="synthetic")
SO_SO = Record(input="A so-so review of a film.", target="positive", origin="synthetic")
MYSTERY = Record(input="A review the judge cannot read.", target="positive", origin="synthetic")
PROBS = {
    "upbeat": {"positive": 0.9, "negative": 0.1},
    "gloomy": {"positive": 0.2, "negative": 0.8},
    "so-so": {"positive": 0.6, "negative": 0.4},
}


@pytest.fixture
def judge_ctx(tmp_path: Path) -> Iterator[RunContext]:
    """A RunContext with a cache and a JudgeScript judge (no engine, no run)."""
    ctx = RunContext(
        config=None,  # type: ignore[arg-type]
        run_dir=tmp_path,
        teacher=None,  # type: ignore[arg-type]
        labels=list(TINY_LABELS),
        task=TINY_TASK,
    )
    cache = TeacherCache(tmp_path / "cache.sqlite")
    # the judge is not the run's teacher: it is asked directly, no executor involved
    ctx.teacher_access = CachedTeacherAccess(cache, None)  # type: ignore[arg-type]
    ctx.judge = JudgeScript(
        JudgeScriptConfig(
            labels=PROBS,
            solutions={
                "Tom has 3 boxes": "3 * 4 = 12 apples.\n#### 12",
                "Ann has 5 pens": "She has 5 + 5 = 10, so the answer is \\boxed{10}.",
                "Bo counts sheep": "Bo counts the sheep one by one and then",
            },
        )
    )
    yield ctx
    cache.close()


def test_label_mode_keeps_agreeing_candidates_and_rejects_the_others(judge_ctx: RunContext) -> None:
    out = LabelJudgeFilter(LabelJudgeConfig(**TWO_ORDERS)).reject([UPBEAT, GLOOMY, SO_SO], judge_ctx)
    assert out == {GLOOMY.id: "judge: label 'negative' (p=0.80); intended 'positive' p=0.20, threshold 0.5"}
    # both label orders were asked for each candidate, the text last, under guided choice
    assert len(SERVED) == 6
    assert sum('Allowed labels: "negative", "positive".' in s for s in SERVED) == 3
    assert sum('Allowed labels: "positive", "negative".' in s for s in SERVED) == 3
    assert all(s.startswith(f"Task: {TINY_TASK}") for s in SERVED)
    usage = judge_ctx.usage["judge"]
    assert usage["samples_requested"] == 6 and usage["samples_new"] == 6 and usage["samples_cached"] == 0


def test_by_default_one_order_is_asked_with_one_token_and_calibrated_on_the_seeds_once(
    judge_ctx: RunContext,
) -> None:
    assert isinstance(judge_ctx.judge, JudgeScript)
    seeds = [
        Record(input="A seed the judge calls upbeat.", target="positive", origin="seed"),
        Record(input="A seed the judge calls gloomy.", target="negative", origin="seed"),
        Record(input="A seed the judge cannot read.", target="negative", origin="seed"),
    ]
    judge_ctx.pool = [*seeds, Record(input="A synthetic upbeat one.", target="positive", origin="synthetic")]
    out = LabelJudgeFilter(LabelJudgeConfig()).reject([UPBEAT, GLOOMY, SO_SO], judge_ctx)
    assert set(out) == {GLOOMY.id} and out[GLOOMY.id].startswith("judge: label 'negative'")
    texts = [s.rsplit("Text: ", 1)[1] for s in SERVED]
    # the seeds (not the synthetic record) and the candidates, each once, in one label order, one free token
    assert sorted(texts) == sorted([*(r.input for r in seeds), UPBEAT.input, GLOOMY.input, SO_SO.input])
    assert len({s.split("Allowed labels: ")[1].split(".")[0] for s in SERVED}) == 1
    SERVED.clear()
    LabelJudgeFilter(LabelJudgeConfig()).reject([UPBEAT], judge_ctx)
    # the candidate and the answered seeds come from the cache; the seed the judge failed on is asked again
    assert [s.rsplit("Text: ", 1)[1] for s in SERVED] == ["A seed the judge cannot read."]


def test_a_seed_calibrated_judge_divides_out_its_lean(judge_ctx: RunContext) -> None:
    """A judge that calls positive seeds 0.95 positive but negative seeds only 0.55 negative leans
    positive; fitted on the seeds, its 0.6-positive reading of "so-so" turns negative."""
    assert isinstance(judge_ctx.judge, JudgeScript)
    lean = {"seed-pos": {"positive": 0.95, "negative": 0.05}, "seed-neg": {"positive": 0.45, "negative": 0.55}}
    judge_ctx.judge.config = judge_ctx.judge.config.model_copy(update={"labels": {**PROBS, **lean}})
    judge_ctx.pool = [Record(input=f"seed-pos {i}", target="positive", origin="seed") for i in range(4)] + [
        Record(input=f"seed-neg {i}", target="negative", origin="seed") for i in range(4)
    ]
    out = LabelJudgeFilter(LabelJudgeConfig()).reject([SO_SO, UPBEAT], judge_ctx)
    assert set(out) == {SO_SO.id} and out[SO_SO.id].startswith("judge: label 'negative'")
    assert LabelJudgeFilter(LabelJudgeConfig(calibration="none")).reject([SO_SO], judge_ctx) == {}


def test_a_content_free_calibrated_judge_divides_out_its_lean(judge_ctx: RunContext) -> None:
    """The judge leans positive (4:1 on text with no content): "so-so" (0.6 raw) becomes negative."""
    assert isinstance(judge_ctx.judge, JudgeScript)
    lean = {"N/A": {"positive": 0.8, "negative": 0.2}, "[MASK]": {"positive": 0.8, "negative": 0.2}}
    judge_ctx.judge.config = judge_ctx.judge.config.model_copy(update={"labels": {**PROBS, **lean}})
    so_so_positive = LabelJudgeFilter(LabelJudgeConfig(calibration="content-free")).reject([SO_SO], judge_ctx)
    assert so_so_positive == {SO_SO.id: "judge: label 'negative' (p=0.73); intended 'positive' p=0.27, threshold 0.5"}
    raw = LabelJudgeFilter(LabelJudgeConfig(calibration="none")).reject([SO_SO], judge_ctx)
    assert raw == {}


def test_threshold_rejects_an_unsure_judge(judge_ctx: RunContext) -> None:
    assert LabelJudgeFilter(LabelJudgeConfig(threshold=0.5)).reject([SO_SO], judge_ctx) == {}
    out = LabelJudgeFilter(LabelJudgeConfig(threshold=0.7)).reject([SO_SO, UPBEAT], judge_ctx)
    assert out == {SO_SO.id: "judge: label 'positive' (p=0.60); intended 'positive' p=0.60, threshold 0.7"}
    # a target the judge is sure of passes any threshold below its probability
    assert LabelJudgeFilter(LabelJudgeConfig(threshold=0.89)).reject([UPBEAT], judge_ctx) == {}


def test_undecided_candidates_are_rejected_unless_kept(judge_ctx: RunContext) -> None:
    out = LabelJudgeFilter(LabelJudgeConfig(**TWO_ORDERS)).reject([MYSTERY, UPBEAT], judge_ctx)
    assert out == {MYSTERY.id: "judge undecided: the judge gave no usable answer"}
    kept = LabelJudgeFilter(LabelJudgeConfig(keep_undecided=True, **TWO_ORDERS))
    assert kept.reject([MYSTERY, GLOOMY], judge_ctx) == {
        GLOOMY.id: "judge: label 'negative' (p=0.80); intended 'positive' p=0.20, threshold 0.5"
    }
    assert judge_ctx.usage["judge"]["sample_errors"] == 4  # two orders, asked twice (errors are not cached)


def test_judge_samples_are_cached(judge_ctx: RunContext) -> None:
    first = LabelJudgeFilter(LabelJudgeConfig(**TWO_ORDERS)).reject([UPBEAT, GLOOMY], judge_ctx)
    assert len(SERVED) == 4
    judge_ctx.usage = {}
    again = LabelJudgeFilter(LabelJudgeConfig(**TWO_ORDERS)).reject([UPBEAT, GLOOMY], judge_ctx)
    assert again == first and len(SERVED) == 4, "the judge was asked again for cached samples"
    usage = judge_ctx.usage["judge"]
    assert (usage["samples_requested"], usage["samples_cached"], usage["samples_new"]) == (4, 4, 0)
    cache_path = judge_ctx.teacher_access.cache.path  # type: ignore[union-attr]
    rows = sqlite3.connect(cache_path).execute("SELECT model, COUNT(*) FROM completions GROUP BY model")
    assert dict(rows.fetchall()) == {"judge-script:judge-script": 4}


def test_label_mode_needs_labels_and_auto_picks_the_mode(judge_ctx: RunContext) -> None:
    judge_ctx.labels = None
    with pytest.raises(ConfigError, match="label-judge in mode 'label' needs a task with labels; use mode: verify"):
        LabelJudgeFilter(LabelJudgeConfig(mode="label")).reject([UPBEAT], judge_ctx)
    # auto without labels: verify (solve) mode
    math_record = Record(input="Tom has 3 boxes of 4 apples. How many?", target="#### 12", origin="synthetic")
    assert LabelJudgeFilter(LabelJudgeConfig()).reject([math_record], judge_ctx) == {}
    assert SERVED and all(s.startswith("Solve this problem.") for s in SERVED)
    assert LabelJudgeFilter(LabelJudgeConfig()).reject([], judge_ctx) == {}


def test_ask_teacher_needs_the_runs_teacher_access(judge_ctx: RunContext) -> None:
    judge_ctx.teacher_access = None
    with pytest.raises(DistilforgeError, match="works inside a run only"):
        judge_ctx.ask_teacher(label_requests("k", "x", TINY_LABELS, TINY_TASK), purpose="judge")


# --------------------------------------------------------------------------- verify mode, in isolation


def problem(question: str, target: str) -> Record:
    return Record(input=question, target=target, origin="synthetic")


def test_verify_mode_compares_final_numbers(judge_ctx: RunContext) -> None:
    right = problem("Tom has 3 boxes of 4 apples. How many apples?", "3 * 4 = 12\n#### 12")
    wrong = problem("Tom has 3 boxes of 4 apples. How many apples in all?", "3 * 4 = 13\n#### 13")
    boxed = problem("Ann has 5 pens and gets 5 more. How many?", "5 + 5 = 10\n#### 10")
    no_answer = problem("Tom has 3 boxes of 4 apples. Count them.", "There are many apples.")
    unsolved = problem("Zed has a hard problem.", "#### 3")
    out = LabelJudgeFilter(LabelJudgeConfig(mode="verify")).reject(
        [right, wrong, boxed, no_answer, unsolved], judge_ctx
    )
    assert out == {
        wrong.id: "judge: solved it as 12, the example says 13",
        no_answer.id: "judge: the example's answer has no final number",
        unsolved.id: "judge undecided: the judge's solution has no final answer (no final number)",
    }
    assert len(SERVED) == 5 and all("'#### <number>'" in s for s in SERVED)
    assert judge_ctx.usage["judge"]["samples_new"] == 5
    kept = LabelJudgeFilter(LabelJudgeConfig(mode="verify", keep_undecided=True)).reject([unsolved], judge_ctx)
    assert kept == {}
    # a target without a number is rejected even with keep_undecided: it is not the judge's doubt
    assert no_answer.id in LabelJudgeFilter(LabelJudgeConfig(mode="verify", keep_undecided=True)).reject(
        [no_answer], judge_ctx
    )


def test_verify_mode_says_why_the_judge_is_undecided(judge_ctx: RunContext) -> None:
    assert isinstance(judge_ctx.judge, JudgeScript)
    judge_ctx.judge.config = judge_ctx.judge.config.model_copy(update={"finish_reason": "length"})
    cut = problem("Bo counts sheep. How many sheep?", "#### 15")
    out = LabelJudgeFilter(LabelJudgeConfig(mode="verify", max_tokens=16)).reject([cut], judge_ctx)
    assert out == {
        cut.id: "judge undecided: the judge's solution has no final answer (its answer was cut at max_tokens)"
    }


# --------------------------------------------------------------------------- label-judge inside runs

GEN_ANSWERS = ["An upbeat review, take {hash}.", "A gloomy review, take {hash}."]
JUDGE_RULES = {"Text: An upbeat review": "positive", "Text: A gloomy review": "negative"}


def judged_run(workdir: Path, name: str = "judged", **overrides: Any) -> Path:
    """One LLM2LLM round on the tiny set: 6 wrong positive seeds x k=2 = 12 candidates, half of
    them 'gloomy' (the judge, here the run's scripted teacher, labels those negative)."""
    config: dict[str, Any] = {
        "teacher": {"answers": GEN_ANSWERS, "rules": JUDGE_RULES},
        "filters": [{"type": "label-judge", **TWO_ORDERS}],
        "teacher_baseline": {"enabled": False},
        **overrides,
    }
    return run_round(KIT, workdir=workdir, name=name, **config)


def test_label_judge_in_a_run(tmp_path: Path, scripted: list[ScriptedTeacher]) -> None:
    run_dir = judged_run(tmp_path)
    synthetic = [r for r in read_records(run_dir) if r["origin"] == "synthetic"]
    judged = [r for r in read_rejects(run_dir) if r["rejected_by"] == "label-judge"]
    assert len(synthetic) == 6 and all(r["input"].startswith("An upbeat review") for r in synthetic)
    assert len(judged) == 6 and all(r["record"]["input"].startswith("A gloomy review") for r in judged)
    assert {r["reason"] for r in judged} == {
        "judge: label 'negative' (p=1.00); intended 'positive' p=0.00, threshold 0.5"
    }
    assert all(r["stage"] == "filter" and r["record"]["rejected_by"] == "label-judge" for r in judged)
    assert asked(scripted) == 24  # 12 candidates x 2 label orders
    metrics = read_metrics(run_dir, 0)
    assert metrics.accepted == 6 and metrics.rejected == {"label-judge": 6}
    judge = metrics.usage["judge"]
    assert (judge["samples_requested"], judge["samples_new"], judge["samples_cached"]) == (24, 24, 0)
    assert judge["sample_errors"] == 0 and judge["completion_tokens"] == 24
    # the method's own sample counts are not mixed with the judge's
    assert metrics.samples_requested == 12 and metrics.samples_new == 12
    assert not read_metrics(run_dir, 1).usage  # the last round generates nothing
    report = (run_dir / "report.md").read_text()
    assert "judge samples (new)" in report and "| 24 (24) |" in report
    assert "seed-only (round 0)" in report and "teacher zero-shot" not in report


def test_a_rerun_asks_for_no_new_judge_samples(tmp_path: Path, scripted: list[ScriptedTeacher]) -> None:
    cache = str(tmp_path / "shared-cache.sqlite")
    first = judged_run(tmp_path, name="first", teacher_cache=cache)
    assert asked(scripted) == 24
    second = judged_run(tmp_path, name="second", teacher_cache=cache)
    assert len(scripted) == 2 and scripted[1].calls == [], "the re-run sent the teacher something"
    judge = read_metrics(second, 0).usage["judge"]
    assert (judge["samples_requested"], judge["samples_cached"], judge["samples_new"]) == (24, 24, 0)
    assert read_records(second) == read_records(first)
    assert [r["reason"] for r in read_rejects(second)] == [r["reason"] for r in read_rejects(first)]
    report = (second / "report.md").read_text()
    assert "| 24 (0) |" in report


def test_a_resume_after_a_crash_reuses_the_judges_samples(tmp_path: Path, scripted: list[ScriptedTeacher]) -> None:
    ARMED["explode"] = True
    filters = [{"type": "label-judge"}, {"type": "explode-once"}]
    with pytest.raises(PluginError, match="crash after judging"):
        judged_run(tmp_path, filters=filters)
    run_dir = tmp_path / "runs" / "judged"
    # one order for each of the 12 candidates, and the run's 12 seeds for the calibration
    assert asked(scripted) == 12 + 12 and not (run_dir / "rounds/0/metrics.json").exists()
    resume_run(build_engine([KIT]), run_dir, console=Console(quiet=True))
    assert len(scripted) == 2 and asked(scripted[1:]) == 0
    judge = read_metrics(run_dir, 0).usage["judge"]
    assert (judge["samples_cached"], judge["samples_new"]) == (24, 0)
    assert read_metrics(run_dir, 0).rejected == {"label-judge": 6}
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "completed"


def test_a_separate_judge_teacher_is_used(tmp_path: Path, scripted: list[ScriptedTeacher]) -> None:
    cache = tmp_path / "judge-cache.sqlite"
    run_dir = judged_run(
        tmp_path,
        # asked to judge, the run's own teacher would call every candidate negative
        teacher={"answers": GEN_ANSWERS, "rules": {"careful annotator": "negative"}},
        judge={
            "type": "judge-script",
            "model": "the-judge",
            "labels": {"upbeat": PROBS["upbeat"], "gloomy": PROBS["gloomy"]},
        },
        teacher_cache=str(cache),
    )
    assert asked(scripted) == 0, "the run's teacher was asked to judge"
    assert len(SERVED) == 24 and all("Text: " in s for s in SERVED)
    judged = [r for r in read_rejects(run_dir) if r["rejected_by"] == "label-judge"]
    assert len(judged) == 6 and all(r["record"]["input"].startswith("A gloomy review") for r in judged)
    assert {r["reason"] for r in judged} == {
        "judge: label 'negative' (p=0.80); intended 'positive' p=0.20, threshold 0.5"
    }
    assert read_metrics(run_dir, 0).usage["judge"]["samples_new"] == 24
    # the judge's samples are cached under its own model id, beside the teacher's
    rows = dict(sqlite3.connect(cache).execute("SELECT model, COUNT(*) FROM completions GROUP BY model").fetchall())
    assert rows == {"scripted:scripted-teacher": 12, "judge-script:the-judge": 24}
    assert CLOSED == ["judge-script:the-judge"]  # closed with the run


def test_verify_mode_in_a_math_run(tmp_path: Path, scripted: list[ScriptedTeacher]) -> None:
    data = tmp_path / "math"
    data.mkdir()
    train = [
        ("Tom has 3 boxes of 4 apples. How many apples?", "3 * 4 = 12\n#### 12"),
        ("Sue reads 5 pages a day for 6 days. How many pages?", "5 * 6 = 30\n#### 30"),
        ("A bag has 9 red and 4 blue balls. How many balls?", "9 + 4 = 13\n#### 13"),
        ("Lee had 20 stamps and gave away 8. How many are left?", "20 - 8 = 12\n#### 12"),
    ]
    for split, rows in (("train", train), ("test", train[:2])):
        (data / f"{split}.jsonl").write_text("".join(json.dumps({"text": t, "label": a}) + "\n" for t, a in rows))
    answers = [
        "Question: Ann has 4 pens and buys 6 more ({hash}). How many pens?\nAnswer: 4 + 6 = 10\n#### 10",
        "Question: Bo has 5 cups and breaks 2 ({hash}). How many are left?\nAnswer: 5 - 2 = 4\n#### 4",
    ]
    solutions = {"Problem: Ann has 4 pens": "4 + 6 = 10, so \\boxed{10}", "Problem: Bo has 5 cups": "5 - 2 = 3\n#### 3"}
    run_dir = run_round(
        KIT,
        workdir=tmp_path,
        dataset={
            "type": "file",
            "train": str(data / "train.jsonl"),
            "test": str(data / "test.jsonl"),
            "task": "Math",
            "labels": None,
        },
        method={"type": "llm2llm", "rounds": 1, "k": 2, "task_type": "math"},
        teacher={"answers": answers, "rules": solutions},
        filters=[{"type": "label-judge"}],  # mode auto: the task has no labels, so verify
    )
    synthetic = [r for r in read_records(run_dir) if r["origin"] == "synthetic"]
    judged = [r for r in read_rejects(run_dir) if r["rejected_by"] == "label-judge"]
    assert synthetic and judged
    assert all(r["input"].startswith("Ann has 4 pens") and r["target"].endswith("#### 10") for r in synthetic)
    assert all(r["record"]["input"].startswith("Bo has 5 cups") for r in judged)
    assert {r["reason"] for r in judged} == {"judge: solved it as 3, the example says 4"}
    assert asked(scripted, SOLVE_SYSTEM) == len(synthetic) + len(judged)
    assert asked(scripted, LABEL_SYSTEM) == 0  # no labels: no label requests, no teacher baseline
    assert not (run_dir / FILE).exists()
    assert read_metrics(run_dir, 0).usage["judge"]["samples_new"] == len(synthetic) + len(judged)


# --------------------------------------------------------------------------- the teacher baseline

_SEED, _TEST = tiny_sentiment()
TEST_TEXTS = {r.input: r.target for r in _TEST}
# the scripted teacher's zero-shot answers: right except three, and one text it cannot answer
WRONG = {
    "the cast is wasted": "positive",
    "boring from start to finish": "positive",
    "a touching and lovely drama": "negative",
}
NO_RULE = "painfully dull and depressing"
BASELINE_RULES = {f"Text: {t}": WRONG.get(t, label) for t, label in TEST_TEXTS.items() if t != NO_RULE}


def baseline_run(workdir: Path, **overrides: Any) -> Path:
    return run_round(workdir=workdir, teacher={"rules": BASELINE_RULES}, **overrides)


def test_teacher_baseline_is_written_once(
    tmp_path: Path, scripted: list[ScriptedTeacher], capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = baseline_run(tmp_path, quiet=False, teacher_baseline=TWO_ORDERS)
    baseline = json.loads((run_dir / FILE).read_text())
    assert baseline == load_teacher_baseline(run_dir)
    assert baseline["teacher"] == "scripted:scripted-teacher"
    assert (baseline["n"], baseline["test_size"], baseline["orders"], baseline["undecided"]) == (20, 20, 2, 1)
    assert baseline["accuracy"] == 0.8  # 20 - 3 wrong - 1 undecided
    assert baseline["recall"] == {"negative": 0.7, "positive": 0.9}
    assert baseline["predicted"] == {"negative": 8, "positive": 11}
    assert baseline["usage"]["samples_requested"] == 40 and baseline["usage"]["samples_new"] == 40
    assert asked(scripted) == 40
    # the baseline's samples are not counted as the round's (nor as judge usage)
    assert not read_metrics(run_dir, 0).usage and read_metrics(run_dir, 0).samples_requested == 12
    err = " ".join(capsys.readouterr().err.split())
    assert "teacher zero-shot accuracy: 0.800 on 20 test examples" in err
    assert "student test accuracy: seed-only (round 0) 0.500 -> final (round 1)" in err
    report = (run_dir / "report.md").read_text()
    assert (
        "- teacher zero-shot accuracy: 0.800 on 20 of 20 test examples (scripted:scripted-teacher; 2 label orders"
        " averaged)" in report
    )
    assert "- student test accuracy: seed-only (round 0) 0.500 -> final (round 1) " in report
    # resuming the finished run neither asks again nor rewrites the file
    stamp = (run_dir / FILE).stat().st_mtime_ns
    resume_run(build_engine(), run_dir, console=Console(quiet=True))
    assert asked(scripted[1:]) == 0 and (run_dir / FILE).stat().st_mtime_ns == stamp


def test_teacher_baseline_subset_and_orders(tmp_path: Path, scripted: list[ScriptedTeacher]) -> None:
    run_dir = baseline_run(tmp_path, teacher_baseline={"max_examples": 5, "orders": 1})
    baseline = json.loads((run_dir / FILE).read_text())
    assert (baseline["n"], baseline["test_size"], baseline["orders"]) == (5, 20, 1)
    assert (baseline["calibration"], baseline["first_token"]) == ("seeds", True)
    assert asked(scripted) == 5 + 12  # and the run's 12 seeds, for the calibration
    # the subset is fixed by the test split alone: another run picks the same examples
    again = baseline_run(tmp_path / "again", teacher_baseline={"max_examples": 5, "orders": 1})
    assert json.loads((again / FILE).read_text())["accuracy"] == baseline["accuracy"]
    assert [t for _, t in scripted[0].calls if LABEL_SYSTEM in t] == [
        t for _, t in scripted[1].calls if LABEL_SYSTEM in t
    ]


def test_teacher_baseline_can_be_switched_off(tmp_path: Path, scripted: list[ScriptedTeacher]) -> None:
    run_dir = baseline_run(tmp_path, teacher_baseline={"enabled": False})
    assert not (run_dir / FILE).exists() and asked(scripted) == 0
    report = (run_dir / "report.md").read_text()
    assert "teacher zero-shot" not in report and "seed-only (round 0)" in report


def test_no_teacher_baseline_without_labels(tmp_path: Path, scripted: list[ScriptedTeacher]) -> None:
    run_dir = baseline_run(tmp_path, dataset={"labels": None})
    assert not (run_dir / FILE).exists() and asked(scripted) == 0
    assert "teacher zero-shot" not in (run_dir / "report.md").read_text()


def test_run_teacher_baseline_returns_none_without_labels_or_when_off(tmp_path: Path) -> None:
    from types import SimpleNamespace

    ctx = RunContext(
        config=SimpleNamespace(seed=0, teacher_baseline=TeacherBaselineConfig()),  # type: ignore[arg-type]
        run_dir=tmp_path,
        teacher=None,  # type: ignore[arg-type]
        test=list(_TEST),
        labels=None,
    )
    assert run_teacher_baseline(ctx) is None  # no labels: nothing asked (there is no cache to ask through)
    ctx.labels = list(TINY_LABELS)
    ctx.config = SimpleNamespace(teacher_baseline=TeacherBaselineConfig(enabled=False))  # type: ignore[assignment]
    assert run_teacher_baseline(ctx) is None
    assert not (tmp_path / FILE).exists()


def test_headline() -> None:
    def m(r: int, acc: float, trained: bool = True) -> RoundMetrics:
        return RoundMetrics(round=r, train_size=10, pool_size=10, trained=trained, test_metrics={"accuracy": acc})

    baseline = {"accuracy": 0.835, "n": 300, "test_size": 1000, "teacher": "vllm:/models/q"}
    assert headline([m(0, 0.61), m(1, 0.7), m(2, 0.655)], baseline) == [
        "student test accuracy: seed-only (round 0) 0.610 -> final (round 2) 0.655 (+0.045)",
        "best round on the test split: 1 (0.700; not a choice made on it)",
        "teacher zero-shot accuracy: 0.835 on 300 of 1000 test examples (vllm:/models/q; 2 label orders averaged)",
    ]
    calibrated = {**baseline, "orders": 1, "calibration": "content-free"}
    assert headline([m(0, 0.61)], calibrated)[-1].endswith(
        "(vllm:/models/q; 1 label order, calibrated on content-free inputs)"
    )
    worse = headline([m(0, 0.7), m(1, 0.6)], None)
    assert worse[0] == "student test accuracy: seed-only (round 0) 0.700 -> final (round 1) 0.600 (-0.100)"
    assert len(worse) == 2 and worse[1].startswith("the final student is worse than seed-only: check the teacher")
    assert headline([], None) == []
    # a round that kept an older student is no new point: neither the best round nor the final one
    assert headline([m(0, 0.6), m(1, 0.9), m(2, 0.9, trained=False), m(3, 0.7)], None)[:2] == [
        "student test accuracy: seed-only (round 0) 0.600 -> final (round 3) 0.700 (+0.100)",
        "best round on the test split: 1 (0.900; not a choice made on it)",
    ]
    assert "stronger teacher preset" in headline([m(0, 0.7), m(1, 0.6)], None, records=False)[1]


# --------------------------------------------------------------------------- the real thing


@pytest.mark.slow
def test_label_judge_with_the_real_tiny_vllm_teacher(vllm_teacher: Any, tmp_path: Path) -> None:
    """A random tiny Llama knows nothing, but guided choice and first-token logprobs work for real:
    every answer is a label, every distribution sums to 1, and the judge's samples are cached."""
    labels = ["alpha", "beta"]
    texts = ["The first letter.", "Something else entirely.", "A third, longer text about nothing at all."]
    requests = [q for i, text in enumerate(texts) for q in label_requests(f"t{i}", text, labels, "Pick a letter.")]
    completions = {(c.request_id, c.sample_index): c for c in vllm_teacher.sample(requests)}
    assert len(completions) == 6
    for completion in completions.values():
        assert completion.ok and completion.text in labels, completion
        assert completion.logprobs and completion.logprobs[0].top, "no first-token logprobs"
        # the answer's own first token is a prefix of the label it spelled: that label is scored
        scores = _first_token_scores(completion, labels)
        assert scores is not None and completion.text in scores, (completion.logprobs[0], scores)
        dist = label_distribution(completion, labels)
        assert dist is not None and set(dist) == set(labels)
        assert sum(dist.values()) == pytest.approx(1.0) and dist[completion.text] > 0.0
        for label in labels:  # a label with no token among the top logprobs gets exactly 0
            assert (label in scores) == (dist[label] > 0.0), (label, scores, dist)
    votes = combine_votes(requests, completions, labels)
    assert set(votes) == {"t0", "t1", "t2"} and all(v.answered == 2 for v in votes.values())
    assert all(sum(v.probabilities.values()) == pytest.approx(1.0) for v in votes.values())

    # the same engine as the judge of a short run (a scripted teacher writes the candidates)
    LIVE.update(teacher=vllm_teacher, requests=0)
    cache = str(tmp_path / "cache.sqlite")
    first = judged_run(tmp_path, name="real-judge", judge={"type": "session-vllm"}, teacher_cache=cache)
    judge = read_metrics(first, 0).usage["judge"]
    assert (judge["samples_requested"], judge["samples_new"], judge["sample_errors"]) == (24, 24, 0)
    assert LIVE["requests"] == 24
    synthetic = [r for r in read_records(first) if r["origin"] == "synthetic"]
    judged = [r for r in read_rejects(first) if r["rejected_by"] == "label-judge"]
    assert len(synthetic) + len(judged) == 12
    assert all(r["reason"].startswith("judge: label '") and "threshold 0.5" in r["reason"] for r in judged)
    rows = dict(sqlite3.connect(cache).execute("SELECT model, COUNT(*) FROM completions GROUP BY model").fetchall())
    assert rows[vllm_teacher.model_id] == 24
    # a re-run on the same cache asks the engine nothing and decides the same
    second = judged_run(tmp_path, name="real-judge-again", judge={"type": "session-vllm"}, teacher_cache=cache)
    judge = read_metrics(second, 0).usage["judge"]
    assert (judge["samples_cached"], judge["samples_new"]) == (24, 0)
    assert LIVE["requests"] == 24
    assert [r["reason"] for r in read_rejects(second)] == [r["reason"] for r in read_rejects(first)]
