"""The wheel installs into a fresh venv and the README's quick start runs unchanged (AC-SDK-7)."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

from conftest import Bus

SDK = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = SDK / "examples" / "quickstart.py"


def test_readme_quick_start_is_the_example_file() -> None:
    readme = (SDK / "README.md").read_text(encoding="utf-8")
    assert EXAMPLE.read_text(encoding="utf-8").strip() in readme


def test_wheel_installs_into_fresh_venv_and_runs_the_quick_start(tmp_path: pathlib.Path) -> None:
    # AC-SDK-7
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(SDK)], check=True, capture_output=True)
    wheels = list(dist.glob("arqon_sdk-*.whl"))
    assert len(wheels) == 1, wheels
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheels[0])], check=True)
    bus = Bus(tmp_path / "bus", "embedded")
    try:
        env = {**os.environ, "ARQON_URL": bus.url, "ARQON_TOKEN": bus.token(tenant="dev", sub="alice")}
        env.pop("PYTHONPATH", None)
        run = subprocess.run([str(python), str(EXAMPLE)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    finally:
        bus.close()
    assert run.returncode == 0, run.stderr
    assert "connected as alice of tenant dev" in run.stdout
    assert "alice in general: hello from python" in run.stdout
