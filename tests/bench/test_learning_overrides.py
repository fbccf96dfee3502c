"""bench/learning.py --set FIELD=VALUE reaches TrainConfig with the field's own type."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from learning import parse_train_overrides  # noqa: E402

from learner.train_adapter import TrainConfig  # noqa: E402


def test_values_are_cast_to_each_fields_type():
    out = parse_train_overrides(["lora_r=4", "learning_rate=2e-4", "bf16=true",
                                 "target_modules=q_proj, v_proj", "epoch_checkpoints=/tmp/ck"])
    assert out == {"lora_r": 4, "learning_rate": 2e-4, "bf16": True,
                   "target_modules": ["q_proj", "v_proj"], "epoch_checkpoints": "/tmp/ck"}
    assert TrainConfig(**out).target_modules == ["q_proj", "v_proj"]


def test_an_unknown_field_is_refused_with_the_list_of_fields():
    with pytest.raises(SystemExit, match="unknown TrainConfig field 'lora_rank'.*lora_r"):
        parse_train_overrides(["lora_rank=4"])
