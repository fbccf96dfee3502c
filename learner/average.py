"""Average several LoRA adapters into one (a "model soup", Wortsman et al. 2022).

Why: two refinements of the same adapter with different seeds differ by about
one evaluation standard error on dev (docs/RESULTS.md). Their weight average
is an ensemble at the cost of one adapter: it is as good as the better
member on the measured runs and removes the luck of one seed.

How: PEFT's `add_weighted_adapter` with equal weights. `svd` (the default)
projects the averaged weight change back to the members' rank, so the result
serves under the same `--max-lora-rank`; members that start from the same
parent are nearly collinear (0.01% of the averaged change's energy lies past
rank 16 on the measured pair). `cat` is exact, at the sum of the ranks.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from agent.adapter_metadata import AdapterMetadata, write_metadata
from agent.engine import validate_adapter_folder

COMBINATIONS = ("svd", "cat")


class AverageError(ValueError):
    pass


def average_adapters(base_model: Path, members: list[Path], out_dir: Path, *, combination: str = "svd",
                     rank: int | None = None) -> dict:
    """Write the equal-weight average of `members` to `out_dir` (atomically); returns its adapter config."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    if len(members) < 2:
        raise AverageError("Averaging needs at least two adapters.")
    if len({Path(m).resolve() for m in members}) < len(members):
        raise AverageError("The same adapter is listed twice; each member must be a different adapter.")
    if combination not in COMBINATIONS:
        raise AverageError(f"Unknown combination {combination!r}; use one of {', '.join(COMBINATIONS)}.")
    if rank is not None and rank < 1:
        raise AverageError(f"The rank must be 1 or more, not {rank}.")
    configs = [validate_adapter_folder(Path(m)) for m in members]
    modules = {tuple(sorted(c.get("target_modules") or [])) for c in configs}
    if len(modules) > 1:
        raise AverageError("The adapters adapt different modules and cannot be averaged: "
                           + "; ".join(",".join(m) for m in sorted(modules)))
    if out_dir.exists():
        raise AverageError(f"{out_dir} already exists; refusing to overwrite an adapter.")

    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32)
    names = [f"member{i}" for i in range(len(members))]
    rank = rank or max(int(c["r"]) for c in configs)
    try:  # e.g. an adapter of another base model: a shape mismatch deep in PEFT
        model = PeftModel.from_pretrained(model, str(members[0]), adapter_name=names[0])
        for name, folder in zip(names[1:], members[1:]):
            model.load_adapter(str(folder), adapter_name=name)
        model.add_weighted_adapter(names, [1.0 / len(names)] * len(names), adapter_name="average",
                                   combination_type=combination, svd_rank=rank if combination == "svd" else None)
    except (RuntimeError, ValueError, KeyError, OSError) as exc:
        raise AverageError(f"Could not average these adapters on {Path(base_model).name}: "
                           f"{str(exc).splitlines()[0][:300]}") from exc
    for name in names:
        model.delete_adapter(name)

    tmp = out_dir.parent / f".tmp-{out_dir.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        model.save_pretrained(tmp, selected_adapters=["average"])
        saved = tmp / "average" if (tmp / "average").is_dir() else tmp  # PEFT nests non-default adapter names
        write_metadata(saved, AdapterMetadata(method="average", members=[str(m) for m in members],
                                              combination=combination))
        model.set_adapter("average")
        _calibrate(base_model, saved, model)
        config = validate_adapter_folder(saved)
        saved.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return config


def _calibrate(base_model: Path, saved: Path, model) -> None:
    """Give the average its own ask threshold, on renamed copies of its members' snapshot's questions and with
    their settings (learner.calibration). No member with a snapshot, or the snapshot gone: no threshold, the
    average decides by greedy decoding like an uncalibrated adapter."""
    from .calibration import CalibrationError, calibrate_folder

    try:
        calibrate_folder(str(base_model), saved, model=model)
    except CalibrationError:
        pass


def average_registered(settings, store, adapter_ids: list[str], *, combination: str = "svd",
                       rank: int | None = None, parent_id: str | None = None) -> str:
    """Average registered adapters into a new registered candidate; returns its id. Nothing is registered on error.
    Its parent: `parent_id`, else the members' common parent (seeds of one refinement), else none."""
    from agent.engine import AdapterLoadError
    from clarify.model_store import resolve_model
    from logs_db.store import UnknownId

    from .jobs import new_adapter_id

    try:
        members = [store.get_adapter(adapter_id) for adapter_id in adapter_ids]
    except UnknownId as exc:
        raise AverageError(str(exc)) from exc
    adapter_id = new_adapter_id("average")
    out_dir = settings.adapters_dir / adapter_id
    try:
        config = average_adapters(resolve_model(settings.model, settings.models_dir), [Path(m.path) for m in members],
                                  out_dir, combination=combination, rank=rank)
    except AdapterLoadError as exc:
        raise AverageError(str(exc)) from exc
    parents = {m.parent_id for m in members}
    store.register_adapter(adapter_id=adapter_id, method="average", path=str(out_dir.resolve()),
                           parent_id=parent_id or (parents.pop() if len(parents) == 1 else None),
                           hyperparams={"members": list(adapter_ids), "member_methods": [m.method for m in members],
                                        "combination": combination, "r": config["r"]})
    return adapter_id
