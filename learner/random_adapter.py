"""A train-free LoRA adapter with seeded noise in lora_B, so it changes the outputs (PEFT's init has B = 0).

Serving tests and the serving bench need an adapter that really alters generation (to check that the
engine applies it, and what applying it costs) without spending minutes training one.
"""

from __future__ import annotations

from pathlib import Path

from .train_adapter import ALL_LINEAR


def random_lora_adapter(model_path: Path, out: Path, *, rank: int = 8, seed: int = 0, scale: float = 0.01,
                        target_modules: tuple[str, ...] = ALL_LINEAR) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0,
                                                  target_modules=list(target_modules), task_type="CAUSAL_LM"))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * scale)
    peft_model.save_pretrained(out)
    return out
