"""Averaging adapters (learner/average.py, `clarify adapters average`): the result's weight change is the
members' mean, it loads and changes generation, and bad input registers nothing."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from agent.engine import GenerationParams
from learner.average import AverageError, average_adapters, average_registered
from learner.random_adapter import random_lora_adapter


def weight_changes(folder) -> dict[str, torch.Tensor]:
    """Per adapted module: scaling * B @ A, the change the adapter adds to that weight."""
    config = json.loads((folder / "adapter_config.json").read_text())
    scaling = config["lora_alpha"] / config["r"]
    tensors = load_file(folder / "adapter_model.safetensors")
    return {k.replace(".lora_A.weight", ""): scaling * tensors[k.replace("lora_A", "lora_B")] @ tensors[k]
            for k in tensors if "lora_A" in k}


@pytest.fixture(scope="module")
def members(model_path, tmp_path_factory):
    root = tmp_path_factory.mktemp("members")
    return [random_lora_adapter(model_path, root / f"m{seed}", rank=4, seed=seed, scale=0.05)
            for seed in (1, 2)]


@pytest.mark.parametrize("combination, rank, expected_r", [("cat", None, 8), ("svd", 8, 8)])
def test_the_average_adds_the_mean_of_the_members_weight_changes(model_path, members, tmp_path, combination, rank,
                                                                  expected_r):
    out = tmp_path / "avg"
    config = average_adapters(model_path, members, out, combination=combination, rank=rank)
    assert config["r"] == expected_r
    first, second, avg = weight_changes(members[0]), weight_changes(members[1]), weight_changes(out)
    assert avg.keys() == first.keys()
    for name in first:
        torch.testing.assert_close(avg[name], (first[name] + second[name]) / 2, atol=1e-6, rtol=1e-4)
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())


def test_svd_at_the_members_rank_keeps_their_rank_and_the_best_approximation(model_path, members, tmp_path):
    out = tmp_path / "avg"
    assert average_adapters(model_path, members, out)["r"] == 4  # default: the members' rank
    assert {t.shape[0] for k, t in load_file(out / "adapter_model.safetensors").items() if "lora_A" in k} == {4}
    first, second, avg = weight_changes(members[0]), weight_changes(members[1]), weight_changes(out)
    for name in first:
        mean = (first[name] + second[name]) / 2
        singular = torch.linalg.svdvals(mean)
        best_error = singular[4:].square().sum().sqrt()  # Eckart-Young: nothing of rank 4 is closer
        torch.testing.assert_close(torch.linalg.norm(avg[name] - mean), best_error, atol=1e-5, rtol=1e-3)


def test_the_registered_average_loads_and_changes_generation(settings, store, members, engine):
    for name, folder in zip(("a", "b"), members):
        dest = settings.adapters_dir / name
        shutil.copytree(folder, dest)
        store.register_adapter(adapter_id=name, method="swift", path=str(dest), parent_id="p")
    adapter_id = average_registered(settings, store, ["a", "b"])
    row = store.get_adapter(adapter_id)
    assert (row.method, row.status, row.parent_id) == ("average", "candidate", "p")
    assert row.hyperparams["members"] == ["a", "b"] and row.hyperparams["r"] == 4
    engine.load_adapter(adapter_id, row.path)
    prompt = [{"role": "user", "content": "Name three colours."}]
    params = GenerationParams(max_new_tokens=12)
    base = engine.generate_batch([prompt], params)[0].text
    adapted = engine.generate_batch([prompt], params, adapter=adapter_id)[0].text
    assert adapted.strip() and adapted != base


def test_bad_input_is_refused_and_registers_nothing(settings, store, members, tmp_path):
    shutil.copytree(members[0], settings.adapters_dir / "a")
    store.register_adapter(adapter_id="a", method="swift", path=str(settings.adapters_dir / "a"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "adapter_config.json").write_text("{not json")
    (broken / "adapter_model.safetensors").write_bytes(b"x")
    store.register_adapter(adapter_id="broken", method="swift", path=str(broken))
    cases = [(["a"], "at least two"), (["a", "a"], "listed twice"), (["a", "nope"], "nope"),
             (["a", "broken"], "not valid JSON")]
    for ids, message in cases:
        with pytest.raises(AverageError, match=message):
            average_registered(settings, store, ids)
    with pytest.raises(AverageError, match="Unknown combination"):
        average_registered(settings, store, ["a", "broken"], combination="mean")
    assert sorted(a.id for a in store.list_adapters()) == ["a", "broken"]
    assert [p.name for p in settings.adapters_dir.iterdir()] == ["a"]


def test_adapters_of_different_modules_are_refused(model_path, members, tmp_path):
    mlp = random_lora_adapter(model_path, tmp_path / "mlp", rank=4, target_modules=("up_proj",))
    with pytest.raises(AverageError, match="different modules"):
        average_adapters(model_path, [members[0], mlp], tmp_path / "avg")
    assert not (tmp_path / "avg").exists()


def test_an_adapter_of_another_model_shape_is_refused_with_a_clear_error(model_path, members, tmp_path):
    from safetensors.torch import save_file

    other = tmp_path / "other-model"
    shutil.copytree(members[1], other)
    tensors = load_file(other / "adapter_model.safetensors")
    tensors = {k: (t[:, :-8].contiguous() if "lora_A" in k else t) for k, t in tensors.items()}  # a narrower model
    save_file(tensors, other / "adapter_model.safetensors")
    with pytest.raises(AverageError, match="Could not average these adapters"):
        average_adapters(model_path, [members[0], other], tmp_path / "avg")
    assert not (tmp_path / "avg").exists()


def test_cli_average_registers_a_candidate(tmp_path, members, model_path):
    from typer.testing import CliRunner

    from clarify.cli import app
    from logs_db.store import LogStore

    data = tmp_path / "data"
    with LogStore(data / "clarify.duckdb") as store:
        for name, folder in zip(("a", "b"), members):
            shutil.copytree(folder, data / "adapters" / name)
            store.register_adapter(adapter_id=name, method="swift", path=str(data / "adapters" / name))
    run = lambda *args: CliRunner().invoke(app, [*args, "--data-dir", str(data)])  # noqa: E731
    result = run("adapters", "average", "a", "b", "--model", str(model_path))
    assert result.exit_code == 0, result.output
    assert "candidate; average of a, b" in result.output
    refused = run("adapters", "average", "a", "--model", str(model_path))
    assert refused.exit_code == 2 and "at least two" in refused.output
    with LogStore(data / "clarify.duckdb") as store:
        assert sorted(a.method for a in store.list_adapters()) == ["average", "swift", "swift"]


def test_the_average_of_calibrated_members_is_calibrated_on_their_snapshots_questions(model_path, members, store,
                                                                                        log_georgia, tmp_path):
    from learner.calibration import THRESHOLD_RANGE
    from logs_db.snapshot import export_snapshot

    log_georgia(48)  # 24 questions, each logged once asking (reward 0.9) and once guessing (0)
    snapshot = export_snapshot(store, tmp_path / "snap.parquet").path
    calibrated = []
    for member in members:
        copy = tmp_path / member.name
        shutil.copytree(member, copy)
        (copy / "clarify_adapter.json").write_text(json.dumps(
            {"snapshot": str(snapshot), "config": {"horizon": 1}}))
        calibrated.append(copy)
    average_adapters(model_path, calibrated, tmp_path / "avg")
    meta = json.loads((tmp_path / "avg" / "clarify_adapter.json").read_text())
    assert meta["calibration"]["questions"] == "renamed copies of the trained questions"
    assert meta["calibration"]["n_questions"] == 24
    # Asking paid on every question: the threshold moves down from greedy's 0.5, as far as the
    # clip allows (these random members almost never start with the ask word).
    assert THRESHOLD_RANGE[0] <= meta["ask_threshold"] < 0.5
    assert meta["calibration"]["at_threshold"]["logged_value"] >= meta["calibration"]["at_0.5"]["logged_value"]
    # Members without clarify's metadata (no snapshot to calibrate on) leave the average uncalibrated.
    average_adapters(model_path, members, tmp_path / "plain")
    assert "ask_threshold" not in json.loads((tmp_path / "plain" / "clarify_adapter.json").read_text())
