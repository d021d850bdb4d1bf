"""LLM2LLM end to end with real parts: vLLM on the tiny Llama as teacher, the MiniLM classifier
as student, the real filters; run through the CLI in subprocesses, one of them killed with
SIGKILL mid-run and resumed."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fixtures_models import require_vllm
from helpers import loop_config, read_lines, write_config

CLI = [str(Path(sys.executable).with_name("distilforge"))]
pytestmark = pytest.mark.slow


def e2e_config(tmp: Path, model_dir: Path, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "seed": 0,
        "output_dir": str(tmp / "runs"),
        "teacher_cache": str(tmp / f"{name}-cache.sqlite"),  # own cache: every run really samples
        "dataset": loop_config(tmp)["dataset"],  # the tiny sentiment files
        "teacher": {
            "type": "vllm",
            "model": str(model_dir),
            "dtype": "float32",
            "max_model_len": 1536,  # the tiny 512-token BPE needs ~600 tokens for the LLM2LLM prompt
            "kv_cache_memory_bytes": 128 << 20,
        },
        # fine-tuned briefly and gently, so it still gets seed examples wrong after training
        "student": {"type": "text-classifier", "mode": "finetune", "epochs": 1, "lr": 1e-5, "head_lr": 1e-3},
        "method": {
            "type": "llm2llm",
            "rounds": 2,
            "k": 3,
            "min_chars": 4,
            "sampling": {"temperature": 1.0, "max_tokens": 32, "stop": ["?", "\n", ".", "!", "("]},
        },
        "filters": [
            {"type": "parse-validity", "min_chars": 8, "max_chars": 30},
            {"type": "exact-dedup"},
            {"type": "rouge-novelty", "threshold": 0.7},
        ],
    }


def cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def reference(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uninterrupted run; its directory."""
    require_vllm()
    tmp = tmp_path_factory.mktemp("e2e")
    cli("run", str(write_config(tmp / "ref.yaml", e2e_config(tmp, tiny_model_dir, "ref"))))
    return tmp / "runs" / "ref"


def test_failures_are_seed_only_and_synthetic_records_carry_provenance(reference: Path) -> None:
    records = read_lines(reference / "records.jsonl")
    seeds = {r["id"]: r for r in records if r["origin"] == "seed"}
    synthetic = [r for r in records if r["origin"] == "synthetic"]
    assert len(seeds) == 12 and synthetic
    for r in range(2):
        failures = json.loads((reference / f"rounds/{r}/failures.json").read_text())
        assert set(failures) <= set(seeds), "a synthetic record was augmented"
    assert json.loads((reference / "rounds/0/failures.json").read_text()), "round 0 had no failures"
    for r in synthetic:
        assert r["parent_id"] in seeds and r["target"] == seeds[r["parent_id"]]["target"]
        assert r["round"] in (0, 1)
        assert r["provenance"]["teacher"].startswith("vllm:") and r["provenance"]["teacher"].endswith("model")
        assert len(r["provenance"]["prompt_hash"]) == 16
        assert r["provenance"]["sampling"]["temperature"] == 1.0


def test_filters_record_their_rejects(reference: Path) -> None:
    rejects = read_lines(reference / "rejects.jsonl")
    by = {x["rejected_by"] for x in rejects}
    assert "parse-validity" in by, by
    for x in rejects:
        if x["stage"] == "filter":
            assert x["record"]["rejected_by"] == x["rejected_by"] and x["record"]["input"]
    assert all(x["reason"] for x in rejects)
    metrics = [json.loads((reference / f"rounds/{r}/metrics.json").read_text()) for r in range(3)]
    requested = sum(m.get("samples_requested", 0) for m in metrics)
    synthetic = [r for r in read_lines(reference / "records.jsonl") if r["origin"] == "synthetic"]
    assert requested == len(synthetic) + len(rejects)  # every sample is a record or a reject
    assert (reference / "report.md").exists() and (reference / "accuracy.png").stat().st_size > 1000


def test_student_is_retrained_from_base_each_round(reference: Path) -> None:
    """The final checkpoint equals a fresh student trained once on the final training set: had
    round 2 started from round 1's weights, it would not."""
    import numpy as np

    from distilforge.plugins.students.text_classifier import TextClassifierConfig, TextClassifierStudent
    from distilforge.schemas import Record

    config = TextClassifierConfig.model_validate(e2e_config(Path("."), Path("."), "x")["student"])
    records = [Record.model_validate(r) for r in read_lines(reference / "records.jsonl")]
    assert any(r.origin == "synthetic" for r in records)
    fresh = TextClassifierStudent(config)
    fresh.train(records, seed=0)
    saved = TextClassifierStudent(config)
    saved.load(reference / "rounds/2/student")
    assert saved.state_fingerprint() == fresh.state_fingerprint() != fresh.base_state_fingerprint()
    texts = [r["input"] for r in read_lines(reference / "test.jsonl")]
    assert np.array_equal(saved.text_logits(texts), fresh.text_logits(texts))


def test_resume_after_sigkill_matches_uninterrupted_run(reference: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    path = write_config(tmp_path / "crash.yaml", e2e_config(tmp_path, tiny_model_dir, "crash"))
    run = tmp_path / "runs" / "crash"
    proc = subprocess.Popen([*CLI, "run", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    # kill as soon as round 0's synthetic records are committed: round 1 is then under way
    while time.time() < deadline and proc.poll() is None:
        if any(r["origin"] == "synthetic" for r in read_lines(run / "records.jsonl")):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] != "completed"
    committed = (run / "records.jsonl").read_bytes()[: manifest["committed"]["records_bytes"]]
    delivered = _cache_rows(tmp_path / "crash-cache.sqlite")
    assert delivered, "nothing was cached before the kill"

    cli("resume", str(run))
    # the guarantee (docs/reliability.md): what was delivered before the kill never changes and is
    # never asked again; a sample in flight is re-drawn with its seed (vLLM may draw other text)
    assert (run / "records.jsonl").read_bytes().startswith(committed)
    after = _cache_rows(tmp_path / "crash-cache.sqlite")
    assert {k: after.get(k) for k in delivered} == delivered
    ids = [r["id"] for r in read_lines(run / "records.jsonl")]
    assert len(ids) == len(set(ids))
    assert all((run / f"rounds/{r}/metrics.json").exists() for r in range(3))
    # rounds 0 and 1 trained on records committed before the kill: their students and scores match
    for r in range(2):
        got = json.loads((run / f"rounds/{r}/evaluation_test.json").read_text())
        want = json.loads((reference / f"rounds/{r}/evaluation_test.json").read_text())
        assert got == want


def _cache_rows(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT key, body FROM completions").fetchall())
