"""Start-up time of the commands that need no model: ``distilforge plugins``, ``schema``, ``--help``.

Each command runs as a fresh process (bytecode cache warm), ``--repeat`` times; prints min /
median / max wall seconds and the modules every command imports (torch, sklearn... should not be
among them: heavy libraries load when a component is built).

    .venv/bin/python bench/startup.py --repeat 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CLI = str(Path(sys.executable).with_name("distilforge"))
COMMANDS = (["plugins"], ["schema"], ["--help"])
HEAVY = ("torch", "sklearn", "scipy", "transformers", "vllm", "faiss", "pandas", "httpx", "httpx2", "openai")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    probe = (
        "import sys; from distilforge.engine.cli import main\n"
        "try:\n    main(['plugins', '--json'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    print(f"heavy modules imported by `distilforge plugins`: {loaded.stderr.strip().splitlines()[-1]}")
    print("| command | min s | median s | max s |\n|---|---|---|---|")
    for command in COMMANDS:
        subprocess.run([CLI, *command], capture_output=True, env=env)  # warm the bytecode cache
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            subprocess.run([CLI, *command], capture_output=True, env=env, check=True)
            times.append(time.perf_counter() - started)
        name = " ".join(["distilforge", *command])
        print(f"| `{name}` | {min(times):.2f} | {statistics.median(times):.2f} | {max(times):.2f} |")


if __name__ == "__main__":
    main()
