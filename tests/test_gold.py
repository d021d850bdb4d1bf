"""GOLD: energy, rank band, the method on the loop (fake teacher), and end to end with real vLLM."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fixtures_models import require_vllm
from helpers import loop_config, read_lines, write_config

from distilforge.engine.api.errors import ConfigError, PluginError
from distilforge.engine.api.hookspecs import hookimpl
from distilforge.engine.api.toolkit.predictions import free_energy
from distilforge.engine.build import Engine
from distilforge.engine.runner import resume_run, start_run
from distilforge.plugins.methods.gold import rank_band

CLI = [str(Path(sys.executable).with_name("distilforge"))]


# --------------------------------------------------------------------------- energy and band


def test_energy_of_class_logits_matches_hand_computation() -> None:
    logits = np.array([[2.0, 0.0], [0.0, 0.0], [10.0, -3.0]])
    want = [-math.log(math.exp(2) + 1), -math.log(2), -math.log(math.exp(10) + math.exp(-3))]
    assert free_energy(logits) == pytest.approx(want)
    # T = 2: -2 * log(e^(2/2) + e^0)
    assert free_energy(logits[:1], temperature=2.0)[0] == pytest.approx(-2 * math.log(math.e + 1))
    # a confident prediction is more in-distribution (lower energy) than an unsure one
    assert free_energy(logits)[2] < free_energy(logits)[0] < free_energy(logits)[1]


def test_sequence_energy_is_the_mean_over_unmasked_tokens() -> None:
    logits = np.zeros((2, 3, 4))
    logits[0, 0] = [1, 2, 3, 4]
    logits[0, 1] = [0, 0, 0, 0]
    logits[0, 2] = [100, 100, 100, 100]  # padding: would dominate the mean if it leaked in
    logits[1, 0] = [5, 0, 0, 0]
    mask = np.array([[1, 1, 0], [1, 0, 0]])
    per_token_0 = [-math.log(sum(math.exp(v) for v in (1, 2, 3, 4))), -math.log(4)]
    want = [sum(per_token_0) / 2, -math.log(math.exp(5) + 3)]
    assert free_energy(logits, mask=mask) == pytest.approx(want)
    assert math.isnan(free_energy(logits, mask=np.zeros((2, 3)))[0])
    with pytest.raises(ValueError, match="mask shape"):
        free_energy(logits, mask=np.ones((2, 2)))


def test_rank_band_picks_the_expected_ranks() -> None:
    scores = [0.7, 0.1, 0.5, 0.9, 0.3, 0.2, 0.8, 0.6, 0.4, 1.0]  # ranks: index 1 is 0th, index 9 is 9th
    # n = 10, band [0.5, 0.8): ranks 5, 6, 7 -> scores 0.6, 0.7, 0.8
    assert [scores[i] for i in rank_band(scores, 0.5, 0.8)] == [0.6, 0.7, 0.8]
    # n = 8: ranks r with 4 <= r < 6.4 -> 4, 5, 6
    eight = [8.0, 1.0, 7.0, 2.0, 6.0, 3.0, 5.0, 4.0]
    assert [eight[i] for i in rank_band(eight, 0.5, 0.8)] == [5.0, 6.0, 7.0]
    assert rank_band([], 0.5, 0.8) == []
    assert [eight[i] for i in rank_band(eight, 0.0, 1.0)] == sorted(eight)
    with pytest.raises(ValueError):
        rank_band(eight, 0.8, 0.5)


# --------------------------------------------------------------------------- GOLD on the loop


def shown(request: dict[str, Any], record: dict[str, Any]) -> bool:
    """Whether ``record`` is one of the examples in the request: a user turn asking for its label,
    answered by its text."""
    turns = request["messages"]
    return any(
        a["role"] == "assistant" and a["content"] == record["input"] and f'"{record["target"]}"' in u["content"]
        for u, a in pairwise(turns)
    )


def gold_config(tmp: Path, name: str = "gold", **method: Any) -> dict[str, Any]:
    config = loop_config(tmp, name=name)
    config["teacher"]["responses"] = [
        "A {hash} film that I enjoyed a lot",
        "Text: the {hash} plot was dull and slow\nLabel: negative",
        "no",
    ]
    config["student"] = {"type": "tfidf-logreg"}
    config["method"] = {
        "type": "gold",
        "batches": 4,
        "batch_size": 4,
        "validation_size": 6,
        "train_every": 2,
        "min_chars": 4,
        **method,
    }
    config["scorers"] = [{"type": "energy"}]
    config["filters"] = [{"type": "exact-dedup"}]
    return config


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.load()


def test_gold_feeds_back_the_energy_band_on_every_other_batch(engine: Engine, tmp_path: Path) -> None:
    metrics = start_run(engine, write_config(tmp_path / "g.yaml", gold_config(tmp_path)))
    run = tmp_path / "runs" / "gold"
    records = {r["id"]: r for r in read_lines(run / "records.jsonl")}
    for r in (1, 3):  # feedback batches: the band of the previous batch's validation samples
        feedback = json.loads((run / f"rounds/{r}/failures.json").read_text())
        validation = [x for x in records.values() if x["meta"].get("gold") == "validation" and x["round"] == r - 1]
        energies = sorted(x["scores"]["energy"] for x in validation)
        n = len(validation)
        band = {e for k, e in enumerate(energies) if 0.5 * n <= k < 0.8 * n}
        assert feedback and {records[i]["scores"]["energy"] for i in feedback} == band
        requests = json.loads((run / f"rounds/{r}/requests.json").read_text())
        for request in requests:
            assert all(shown(request, records[i]) for i in feedback)
    for r in (0, 2):  # the other batches: no feedback in the prompt
        assert json.loads((run / f"rounds/{r}/failures.json").read_text()) == []
        for request in json.loads((run / f"rounds/{r}/requests.json").read_text()):
            assert request["meta"]["feedback_ids"] == []
    # the validation requests carry the OOD instruction; training requests do not
    requests = json.loads((run / "rounds/0/requests.json").read_text())
    kinds = {q["meta"]["gold"]: q["messages"][-1]["content"] for q in requests}
    assert "different topic and domain" in kinds["validation"] and "different topic" not in kinds["training"]
    # every prompt shows 3 real examples per label, as earlier chat turns
    seeds = [x for x in records.values() if x["origin"] == "seed"]
    for request in requests:
        assert sum(shown(request, x) for x in seeds) == 6
    assert sum(q["sampling"]["n"] for q in requests if q["meta"]["gold"] == "training") == 4
    # every record is scored; the student trains every 2 batches and after the last one
    assert all("energy" in x["scores"] for x in records.values() if x["origin"] == "synthetic")
    assert [m.get("trained") for m in metrics] == [True, False, True, False, True]
    # it trains on generated training samples only, never on validation samples
    training = [x for x in records.values() if x["meta"].get("gold") == "training"]
    assert metrics[-1]["train_size"] == len(training) > 0
    # an untrained round reuses the test evaluation of the student it kept
    assert json.loads((run / "rounds/1/evaluation_test.json").read_text()) == json.loads(
        (run / "rounds/0/evaluation_test.json").read_text()
    )


def test_no_feedback_baseline_asks_the_same_training_batches_without_validation(engine: Engine, tmp_path: Path) -> None:
    start_run(engine, write_config(tmp_path / "b.yaml", gold_config(tmp_path, "base", feedback=False)))
    run = tmp_path / "runs" / "base"
    for r in range(4):
        requests = json.loads((run / f"rounds/{r}/requests.json").read_text())
        assert {q["meta"]["gold"] for q in requests} == {"training"}
        assert sum(q["sampling"]["n"] for q in requests) == 4
        assert json.loads((run / f"rounds/{r}/failures.json").read_text()) == []
    assert not any(x["meta"].get("gold") == "validation" for x in read_lines(run / "records.jsonl"))


class CrashInRound:
    """Raises from build_prompts in one round, after that round's train/evaluate/select stages."""

    def __init__(self, round_index: int) -> None:
        self.round_index = round_index

    @hookimpl(tryfirst=True)
    def build_prompts(self, failures: Any, ctx: Any) -> None:
        if ctx.round == self.round_index:
            raise RuntimeError("simulated crash")


def test_resume_in_an_untrained_round_loads_the_last_checkpoint(engine: Engine, tmp_path: Path) -> None:
    """Crash in batch 3 (which keeps batch 2's student): the resumed run ends as an uninterrupted one."""
    start_run(engine, write_config(tmp_path / "ref.yaml", gold_config(tmp_path, "ref")))
    path = write_config(tmp_path / "cut.yaml", gold_config(tmp_path, "cut"))
    with pytest.raises(PluginError, match="simulated crash"):
        start_run(Engine.load(extra_plugins=[CrashInRound(3)]), path)
    ref, cut = tmp_path / "runs" / "ref", tmp_path / "runs" / "cut"
    assert not (cut / "rounds/3/student").exists() and (cut / "rounds/2/student").exists()
    resume_run(Engine.load(), cut)
    assert [x["id"] for x in read_lines(cut / "records.jsonl")] == [x["id"] for x in read_lines(ref / "records.jsonl")]
    for r in (3, 4):
        for split in ("train", "test"):
            name = f"rounds/{r}/evaluation_{split}.json"
            assert json.loads((cut / name).read_text()) == json.loads((ref / name).read_text())


def test_gold_with_feedback_and_no_energy_scorer_is_refused_before_work(engine: Engine, tmp_path: Path) -> None:
    config = gold_config(tmp_path)
    config["scorers"] = []
    with pytest.raises(ConfigError, match=r"scorers: \[\{type: energy\}\]"):
        start_run(engine, write_config(tmp_path / "g.yaml", config))
    assert not (tmp_path / "runs" / "gold" / "records.jsonl").exists()


def test_bad_band_names_the_field(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        engine.parse(gold_config(tmp_path, band=[0.8, 0.5]))
    assert "method.band" in str(error.value) and "0 <= low < high <= 1" in str(error.value)


# --------------------------------------------------------------------------- real parts


@pytest.mark.slow
def test_two_gold_batches_with_real_vllm_write_feedback_into_the_next_prompt(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    require_vllm()
    config = gold_config(tmp_path, "real", batches=2, batch_size=4, validation_size=12)
    config["teacher"] = {
        "type": "vllm",
        "model": str(tiny_model_dir),
        "dtype": "float32",
        "max_model_len": 2048,
        "kv_cache_memory_bytes": 128 << 20,
    }
    # the random tiny model seldom ends a sentence: stop at the first space, so answers end
    # by a stop string (an answer cut by max_tokens is rightly refused as truncated)
    config["method"]["sampling"] = {"temperature": 1.0, "max_tokens": 24, "stop": [" ", "\n", "."]}
    config["student"] = {"type": "text-classifier", "mode": "frozen"}
    path = write_config(tmp_path / "real.yaml", config)
    done = subprocess.run([*CLI, "run", str(path)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = tmp_path / "runs" / "real"
    records = {r["id"]: r for r in read_lines(run / "records.jsonl")}
    validation = [x for x in records.values() if x["meta"].get("gold") == "validation" and x["round"] == 0]
    assert len(validation) >= 4, "too few validation samples survived to rank"
    feedback = json.loads((run / "rounds/1/failures.json").read_text())
    assert feedback and all(records[i]["meta"]["gold"] == "validation" for i in feedback)
    # the band: none of the feedback is among the lowest half or the top 20% by energy
    energies = sorted(x["scores"]["energy"] for x in validation)
    n = len(validation)
    allowed = {e for k, e in enumerate(energies) if 0.5 * n <= k < 0.8 * n}
    assert {records[i]["scores"]["energy"] for i in feedback} <= allowed
    for request in json.loads((run / "rounds/1/requests.json").read_text()):
        assert all(shown(request, records[i]) for i in feedback)
    assert all(x["provenance"]["teacher"].startswith("vllm:") for x in records.values() if x["origin"] == "synthetic")


def test_an_answer_that_echoes_the_ood_instruction_is_refused() -> None:
    from distilforge.plugins.methods.gold import OOD_INSTRUCTION
    from distilforge.plugins.methods.text_examples import BadAnswer, extract_example

    request = 'Write one example whose label is "positive".' + OOD_INSTRUCTION
    echo = "The new example must be significantly different from the examples above, truly."
    with pytest.raises(BadAnswer, match="echoes the instruction"):
        extract_example(echo, truncated=False, min_chars=4, instruction=request)
    review = "A different kind of film: quiet, patient and very moving."
    assert extract_example(review, truncated=False, min_chars=4, instruction=request) == review
