"""Map the repository's top-level folders into the single ``distilforge`` namespace.

pyproject.toml holds all metadata; this file only computes the package list, because
setuptools cannot rename discovered packages declaratively: ``engine/store`` must become
``distilforge.engine.store`` and nothing named ``engine`` may land at the top of site-packages.
"""

from setuptools import find_packages, setup

ROOTS = ("engine", "plugins", "schemas", "testing")

setup(
    packages=[f"distilforge.{name}" for name in find_packages(include=[f"{r}*" for r in ROOTS])],
    package_dir={f"distilforge.{root}": root for root in ROOTS},
)
