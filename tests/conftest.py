"""Shared fixtures: the real bundled model (converted once), a real DuckDB file per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
# Converted once per checkout and shared by every test (the same folder `make serve` uses).
MODELS_DIR = Path(os.environ.get("CLARIFY_TEST_MODELS_DIR", REPO / ".clarify" / "models"))


@pytest.fixture(scope="session")
def model_path() -> Path:
    from clarify.model_store import resolve_model

    return resolve_model(None, MODELS_DIR)


@pytest.fixture(scope="session")
def engine(model_path):
    """One real in-process engine for the whole session (loading takes seconds)."""
    from agent.transformers_engine import TransformersEngine

    eng = TransformersEngine(model_path, threads=1, dtype="float32")
    yield eng
    eng.close()


@pytest.fixture
def store(tmp_path):
    from logs_db.store import LogStore

    with LogStore(tmp_path / "clarify.duckdb") as s:
        yield s


@pytest.fixture
def settings(tmp_path, model_path):
    from clarify.settings import Settings

    return Settings(data_dir=tmp_path / "data", model=str(model_path), engine="transformers", threads=1)
