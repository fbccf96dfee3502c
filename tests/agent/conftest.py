"""Shared by the vLLM tests that need no vLLM: a "python" that runs the stand-in server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agent.vllm_stand_in import FAKE_SERVER


@pytest.fixture
def fake_python(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """(a "python" that runs the stand-in server instead of vLLM, the file it records requests in)."""
    import stat
    import sys

    record = tmp_path / "requests.jsonl"
    monkeypatch.setenv("CLARIFY_FAKE_VLLM_RECORD", str(record))
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_SERVER}" "$@"\n')
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    return python, record
