"""The generated Python code is reproducible from proto/, and drift is caught (AC-SDK-8)."""
from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

SDK = pathlib.Path(__file__).resolve().parents[1]
ROOT = SDK.parents[1]
GEN = SDK / "tools" / "gen_proto.py"


def check(proto: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(GEN), "--check", "--proto", str(proto)], capture_output=True, text=True)


def test_committed_code_matches_proto() -> None:
    # AC-SDK-8
    run = check(ROOT / "proto")
    assert run.returncode == 0, run.stderr


def test_a_proto_change_without_regeneration_is_caught(tmp_path: pathlib.Path) -> None:
    # AC-SDK-8
    changed = tmp_path / "proto"
    shutil.copytree(ROOT / "proto", changed)
    session = changed / "arqon" / "v1" / "session.proto"
    text = session.read_text(encoding="utf-8")
    assert "string room = 1;" in text
    session.write_text(text.replace("string room = 1;", "string room_name = 1;", 1), encoding="utf-8")
    run = check(changed)
    assert run.returncode == 1
    assert "stale" in run.stderr
