"""In-process engine: transformers for generation, PEFT for LoRA adapters.

Always available (no server to start), so it is the fallback engine and the
reference the vLLM engine is checked against. One model is shared by every
request; which adapter is active is model-wide state, so generation is
serialized by a lock (batching happens inside ``generate_batch``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

import torch

from .engine import AdapterLoadError, EngineError, Generation, GenerationParams, validate_adapter_folder

BATCH_SIZE = 8


class TransformersEngine:
    name = "transformers"

    def __init__(self, model_path: Path, *, threads: int = 1, dtype: str = "bfloat16"):
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
        self._lock = threading.Lock()

    # -- adapters -------------------------------------------------------------
    def load_adapter(self, adapter_id: str, path: Path) -> None:
        from peft import PeftModel

        validate_adapter_folder(path)
        if adapter_id in self.adapters:
            return
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

    def unload_adapter(self, adapter_id: str) -> None:
        with self._lock:
            if adapter_id in self.adapters and self.model is not self.base:
                self.model.delete_adapter(adapter_id)
                del self.adapters[adapter_id]

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

    def _generate_kwargs(self, params: GenerationParams) -> dict:
        kwargs = dict(max_new_tokens=params.max_new_tokens, pad_token_id=self.tokenizer.pad_token_id)
        if params.temperature > 0:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kwargs

    def stream(self, messages: list[dict], params: GenerationParams, adapter: str | None = None) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        from transformers import StoppingCriteria, StoppingCriteriaList

        inputs = self._encode([messages])
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        failure: list[BaseException] = []
        stop = threading.Event()

        class StopWhenAbandoned(StoppingCriteria):
            """A reader that stops early (browser closed) frees the engine at the next token."""

            def __call__(self, input_ids, scores, **kwargs):
                return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool)

        self._lock.acquire()

        def run():
            try:
                if params.seed is not None:
                    torch.manual_seed(params.seed)
                with torch.inference_mode(), self._select(adapter):
                    self.model.generate(**inputs, streamer=streamer,
                                        stopping_criteria=StoppingCriteriaList([StopWhenAbandoned()]),
                                        **self._generate_kwargs(params))
            except BaseException as exc:  # reported to the consumer below
                failure.append(exc)
                streamer.end()
            finally:
                self._lock.release()

        threading.Thread(target=run, daemon=True, name="generate").start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            stop.set()
        if failure:
            raise EngineError(f"Generation failed: {failure[0]}") from failure[0]

    def generate_batch(
        self, prompts: list[list[dict]], params: GenerationParams, adapter: str | None = None,
        prefixes: list[str] | None = None,
    ) -> list[Generation]:
        out: list[Generation] = []
        for start in range(0, len(prompts), BATCH_SIZE):
            chunk = prompts[start : start + BATCH_SIZE]
            chunk_prefixes = None if prefixes is None else prefixes[start : start + BATCH_SIZE]
            inputs = self._encode(chunk, chunk_prefixes)
            with self._lock, torch.inference_mode(), self._select(adapter):
                if params.seed is not None:
                    torch.manual_seed(params.seed + start)
                try:
                    output = self.model.generate(**inputs, **self._generate_kwargs(params))
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
        self.adapters.clear()
