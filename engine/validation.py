"""``distilforge validate`` and ``run --dry-run``: everything a run would trip on, before it exists.

Parsing checks the config's shape, its templates and regexes and its paths. Then the components
are built (cheap: nothing heavy loads), the dataset is read with the run's seed (files, columns,
labels, empty splits) and every teacher is asked for its model id, which needs a teacher preset
to be set up. Nothing is written: no run directory, no cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from distilforge.engine.api.components import DatasetSplits
from distilforge.engine.api.errors import DistilforgeError
from distilforge.engine.best_round import carve_validation
from distilforge.engine.config import load_yaml
from distilforge.engine.store import RunStore
from distilforge.schemas import RunConfig

if TYPE_CHECKING:
    from distilforge.engine.api.context import RunContext
    from distilforge.engine.build import Engine


def check_splits(splits: DatasetSplits) -> None:
    """A run needs seed examples to train on and test examples to score the student."""
    for split, rows in (("train (seed)", splits.seed), ("test", splits.test)):
        if not rows:
            raise DistilforgeError(
                f"dataset: the {split} split is empty; a run needs seed examples to train on and test examples"
                " to score the student"
            )


@dataclass
class ValidationReport:
    config: RunConfig
    run_dir: Path
    seed_examples: int
    test_examples: int
    validation_examples: int
    labels: list[str] | None
    teachers: list[str] = field(default_factory=list)
    run_exists: bool = False

    def lines(self) -> list[str]:
        c = self.config
        labels = f"{len(self.labels)} labels: {', '.join(self.labels)}" if self.labels else "free-form targets"
        out = [
            f"config ok: method {c.method.type}, teacher {c.teacher.type}, student {c.student.type},"
            f" dataset {c.dataset.type}",
            f"dataset: {self.seed_examples} seed examples, {self.test_examples} test examples, {labels}",
        ]
        if self.validation_examples:
            out.append(
                f"validation: {self.validation_examples} of the seed examples held out to pick the best round"
                + (f", patience {c.validation.patience}" if c.validation.patience else "")
            )
        out += [f"teacher model: {t}" for t in self.teachers]
        where = "exists: `run` resumes it" if self.run_exists else "would be created"
        out.append(f"run directory {self.run_dir} ({where})")
        return out


def validate_config(engine: Engine, config_path: Path) -> ValidationReport:
    """Check ``config_path`` as a run would, without creating anything; raises the first problem found."""
    return validate_parsed(engine, engine.parse(load_yaml(config_path), config_path.parent))


def validate_parsed(engine: Engine, config: RunConfig, ctx: RunContext | None = None) -> ValidationReport:
    """Everything past parsing: the components, the dataset's splits, the teachers' models.

    With ``ctx`` (the components a run is about to use) those are checked and left open for the
    run; without, components are built for the check and closed after it.
    """
    run_dir = engine.run_dir(config)
    own = ctx is None
    context = ctx if ctx is not None else engine.context(config, run_dir)
    try:
        splits = context.dataset.load(config.seed)
        check_splits(splits)
        _, validation = carve_validation(
            splits.seed, config.validation, config.seed, stratified=splits.labels is not None
        )
        teachers = [context.teacher.model_id] + ([context.judge.model_id] if context.judge is not None else [])
    finally:
        if own:
            context.close()
    return ValidationReport(
        config=config,
        run_dir=run_dir,
        seed_examples=len(splits.seed) - len(validation),
        validation_examples=len(validation),
        test_examples=len(splits.test),
        labels=splits.labels,
        teachers=teachers,
        run_exists=RunStore.exists(run_dir),
    )
