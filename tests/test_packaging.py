"""The wheel maps engine/ plugins/ schemas/ into the single distilforge namespace."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_into_a_scratch_venv_and_imports(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(dist.glob("distilforge-*.whl"))
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"distilforge"}
    assert not tops & {"engine", "plugins", "schemas", "tests"}

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # dependencies come from the project venv (a plain path entry: its .pth files, including the
    # editable finder, are NOT processed), distilforge itself only from the wheel
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [str(py), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    installed = {p.name for p in Path(site).iterdir()}
    assert "distilforge" in installed and not installed & {"engine", "plugins", "schemas"}
    probe = (
        "import distilforge.engine, distilforge.engine.dispatch, distilforge.schemas, json;"
        "from distilforge.engine.build import Engine; e = Engine.load();"
        "print(json.dumps([distilforge.engine.__file__, e.registry.names('method')]))"
    )
    out = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert site in out.stdout and "llm2llm" in out.stdout
    script = subprocess.run(
        [str(venv / "bin" / "distilforge"), "--version"], capture_output=True, text=True, timeout=60
    )
    assert script.stdout.strip() == "distilforge 0.1.0"


def test_editable_install_imports_from_the_repository() -> None:
    import distilforge.engine
    import distilforge.plugins
    import distilforge.schemas

    assert Path(distilforge.engine.__file__).resolve().parent == ROOT / "engine"
    assert Path(distilforge.schemas.__file__).resolve().parent == ROOT / "schemas"
    assert Path(next(iter(distilforge.plugins.__path__))).resolve() == ROOT / "plugins"
