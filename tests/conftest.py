"""Shared fixtures: the real bundled model (converted once), a real DuckDB file per test."""

from __future__ import annotations

import os
import shutil
import uuid
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

# Untrained LoRA adapter folders (B = 0, so they answer exactly like the base): learner and UI tests.


@pytest.fixture(scope="session")
def lora_template(model_path, tmp_path_factory) -> Path:
    """One real PEFT LoRA folder for the bundled model, saved once per session."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    dest = tmp_path_factory.mktemp("lora-template") / "adapter"
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                     task_type="CAUSAL_LM")).save_pretrained(dest)
    return dest


@pytest.fixture
def make_adapter(lora_template, store, tmp_path):
    """Register a copy of the template under a fresh id (unique per test: the engine is shared by the session)."""

    def make(prefix: str = "lora", status: str = "candidate", **kw) -> str:
        adapter_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
        path = tmp_path / "adapters" / adapter_id
        shutil.copytree(lora_template, path)
        store.register_adapter(adapter_id=adapter_id, method=kw.pop("method", "swift"), path=str(path),
                               status=status, train_metrics=kw.pop("train_metrics", {"steps": 2, "train_loss": 1.5}),
                               **kw)
        return adapter_id

    return make
