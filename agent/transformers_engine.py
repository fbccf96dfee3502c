"""In-process engine: transformers for generation, PEFT for LoRA adapters.

Always available (no server to start), so it is the fallback engine and the
reference the vLLM engine is checked against. One model is shared by every
request; which adapter is active is model-wide state, so each ``generate`` call
holds a lock. Concurrent streamed replies are batched into one call
(agent/batching.py: 8 chats at once no longer wait for each other); simulation
and evaluation batch inside ``generate_batch``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

import torch
from transformers import LogitsProcessorList

from .batching import StreamBatcher
from .decision import (AskDecision, Exploration, ask_token_ids, first_token_processor, may_ask, question_form,
                       read_ask_decision)
from .engine import AdapterLoadError, EngineError, Generation, GenerationParams, validate_adapter_folder

BATCH_SIZE = 8


def _check_weights(path: Path) -> None:
    """Read the adapter's safetensors file in full before PEFT touches the model: PEFT injects the LoRA layers
    into the shared base model first and loads the weights after, so a corrupt file would leave layers behind."""
    weights = path / "adapter_model.safetensors"
    if not weights.is_file():
        return  # adapter_model.bin: PEFT reads it
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(weights))
    except Exception as exc:
        raise AdapterLoadError(f"The adapter weights {weights} cannot be read: {exc}") from exc
    if not tensors:
        raise AdapterLoadError(f"The adapter weights {weights} hold no tensors.")


class TransformersEngine:
    name = "transformers"

    def __init__(self, model_path: Path, *, threads: int = 1, dtype: str = "bfloat16", max_batch: int = BATCH_SIZE):
        """`max_batch`: concurrent streamed replies generated together (1 = one after another)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(threads)
        self.model_path = Path(model_path)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.base = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=getattr(torch, dtype))
        self.base.eval()
        self.model = self.base            # becomes a PeftModel once an adapter is loaded
        self.adapters: dict[str, Path] = {}
        self.ask_decisions: dict[str, AskDecision | None] = {}   # each adapter's calibrated ask decision
        self._ask_ids = ask_token_ids(self.tokenizer)
        self._question_form = question_form(self.tokenizer)   # a decided ask stays a question
        self._lock = threading.Lock()
        self._batcher = StreamBatcher(self, max_batch=max_batch)

    # -- adapters -------------------------------------------------------------
    def load_adapter(self, adapter_id: str, path: Path) -> None:
        from peft import PeftModel

        validate_adapter_folder(path)
        decision = read_ask_decision(Path(path))
        if adapter_id in self.adapters:
            self.ask_decisions[adapter_id] = decision  # a recalibration applies from the next reply
            return
        _check_weights(Path(path))
        with self._lock:
            try:
                if self.model is self.base:
                    self.model = PeftModel.from_pretrained(self.base, str(path), adapter_name=adapter_id)
                    self.model.eval()
                else:
                    self.model.load_adapter(str(path), adapter_name=adapter_id)
            except Exception as exc:  # a corrupt folder must not take serving down
                raise AdapterLoadError(f"Could not load adapter {adapter_id!r} from {path}: {exc}") from exc
            self.adapters[adapter_id] = Path(path)
            self.ask_decisions[adapter_id] = decision

    def unload_adapter(self, adapter_id: str) -> None:
        with self._lock:
            if adapter_id in self.adapters and self.model is not self.base:
                del self.adapters[adapter_id]
                self.ask_decisions.pop(adapter_id, None)
                if self.adapters:
                    self.model.delete_adapter(adapter_id)
                else:  # the last one: back to the plain base model (a PeftModel with no adapter cannot generate)
                    self.model.unload()
                    if hasattr(self.base, "peft_config"):
                        del self.base.peft_config
                    self.model = self.base

    def _select(self, adapter: str | None):
        """Context manager that routes generation through `adapter` (None = base). Call with the lock held."""
        import contextlib

        if adapter is None:
            if self.model is self.base:
                return contextlib.nullcontext()
            return self.model.disable_adapter()
        if adapter not in self.adapters:
            raise EngineError(f"Adapter {adapter!r} is not loaded in this engine.")
        self.model.set_adapter(adapter)
        return contextlib.nullcontext()

    # -- generation -----------------------------------------------------------
    def _encode(self, prompts: list[list[dict]], prefixes: list[str] | None = None):
        texts = [self.tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
        if prefixes is not None:
            texts = [t + prefix for t, prefix in zip(texts, prefixes)]
        return self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)

    def ask_decision(self, adapter: str | None, params: GenerationParams) -> AskDecision | None:
        """The calibrated decision that applies to a request (None: plain decoding)."""
        decision = self.ask_decisions.get(adapter) if adapter is not None else None
        return decision if params.calibrated_ask else None

    def decision_processor(self, adapter: str | None, rows_may_ask: list[bool], params: GenerationParams,
                           prompt_width: int, explorations: list[Exploration | None] | None = None) -> list:
        """The logits processors that apply `adapter`'s calibrated ask decision to the rows that may ask, and
        each row's exploration (`explorations[row]`, agent/decision.py) ([] when there is nothing to apply)."""
        decision = self.ask_decision(adapter, params)
        explorations = [e if ok else None for e, ok in zip(explorations or [None] * len(rows_may_ask), rows_may_ask)]
        if not any(rows_may_ask) or (decision is None and not any(e is not None and e.active for e in explorations)):
            return []
        thresholds = [decision.threshold if ok and decision is not None else None for ok in rows_may_ask]
        return [first_token_processor(self._ask_ids, thresholds, prompt_width, sampling=params.temperature > 0,
                                      form=self._question_form, explorations=explorations)]

    def _generate_kwargs(self, params: GenerationParams) -> dict:
        kwargs = dict(max_new_tokens=params.max_new_tokens, pad_token_id=self.tokenizer.pad_token_id)
        if params.temperature > 0:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kwargs

    def stream(self, messages: list[dict], params: GenerationParams, adapter: str | None = None,
               explore: Exploration | None = None) -> Iterator[str]:
        yield from self._batcher.stream(messages, params, adapter, explore)

    def generate_batch(
        self, prompts: list[list[dict]], params: GenerationParams, adapter: str | None = None,
        prefixes: list[str] | None = None, explorations: list[Exploration | None] | None = None,
    ) -> list[Generation]:
        out: list[Generation] = []
        for start in range(0, len(prompts), BATCH_SIZE):
            chunk = prompts[start : start + BATCH_SIZE]
            chunk_prefixes = None if prefixes is None else prefixes[start : start + BATCH_SIZE]
            inputs = self._encode(chunk, chunk_prefixes)
            rows_may_ask = [may_ask(p) and not (chunk_prefixes and chunk_prefixes[i]) for i, p in enumerate(chunk)]
            chunk_explorations = None if explorations is None else explorations[start : start + BATCH_SIZE]
            processors = self.decision_processor(adapter, rows_may_ask, params, inputs["input_ids"].shape[1],
                                                 chunk_explorations)
            with self._lock, torch.inference_mode(), self._select(adapter):
                if params.seed is not None:
                    torch.manual_seed(params.seed + start)
                try:
                    output = self.model.generate(**inputs, **self._generate_kwargs(params),
                                                 logits_processor=LogitsProcessorList(processors))
                except Exception as exc:
                    raise EngineError(f"Generation failed: {exc}") from exc
            width = inputs["input_ids"].shape[1]
            for i, (row, mask) in enumerate(zip(output, inputs["attention_mask"])):
                new = row[width:]
                n_new = int((new != self.tokenizer.pad_token_id).sum())
                text = self.tokenizer.decode(new, skip_special_tokens=True)
                if chunk_prefixes is not None:
                    text = chunk_prefixes[i] + text
                out.append(Generation(text.strip(), int(mask.sum()), n_new))
        return out

    def close(self) -> None:
        self._batcher.close()
        self.adapters.clear()
