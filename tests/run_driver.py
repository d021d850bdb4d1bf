"""Run or resume a config in a subprocess with the test plugins registered (used by crash tests)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import plugin_majority

from distilforge.engine.build import Engine
from distilforge.engine.runner import resume_run, start_run

if __name__ == "__main__":
    engine = Engine.load(extra_plugins=[plugin_majority])
    if sys.argv[1] == "run":
        start_run(engine, Path(sys.argv[2]))
    else:
        resume_run(engine, Path(sys.argv[2]))
