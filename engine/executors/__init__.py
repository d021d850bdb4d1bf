"""Executors: where teacher sampling and scoring run.

* ``local`` (default): in the driver process, through the stage hooks.
* ``ray``: sharded over Ray actors that each hold one long-lived teacher engine (install the
  ``ray`` extra). Results come back to the driver, which alone writes the cache and the run store.

Pick one in the config: ``executor: {type: ray, address: auto, workers: 8}``.
"""

from distilforge.engine.executors.base import Executor, Job, LocalExecutor, make_executor, score_with

__all__ = ["Executor", "Job", "LocalExecutor", "make_executor", "score_with"]
