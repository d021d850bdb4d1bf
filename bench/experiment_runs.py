"""Helpers the experiment scripts share: run a config in its own process, summarise numbers."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from distilforge.schemas import RunLayout

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).with_name("distilforge"))


def run_config(config: dict[str, Any], out: Path) -> list[dict[str, Any]]:
    """Write ``config`` under ``out`` and run it in its own `distilforge` process (one vLLM engine
    per process); a cut-off run is resumed and a finished one read back, not redone.
    Returns the per-round metrics."""
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / f"{config['name']}.yaml"
    config_path.write_text(yaml.safe_dump({**config, "output_dir": str(out)}))
    run_dir = out / config["name"]
    manifest = RunLayout(run_dir).manifest
    status = json.loads(manifest.read_text())["status"] if manifest.exists() else None
    if status != "completed":
        command = ["resume", str(run_dir)] if status else ["run", str(config_path)]
        subprocess.run([CLI, *command], check=True, stdout=subprocess.DEVNULL)
    layout = RunLayout(run_dir)
    return [json.loads(layout.metrics(r).read_text()) for r in layout.rounds()]


def mean_sd(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.3f}" if values else "–"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"
