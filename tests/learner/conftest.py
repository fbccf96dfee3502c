"""Fixtures for the learner tests: untrained LoRA adapter folders (B = 0, so they answer exactly like the base)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest


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
