"""bench/learning.py: --set FIELD=VALUE reaches TrainConfig with the field's own type; the refine runs.
(Training seeds, the dev and test table: test_learning_seeds.py.)"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from learning import parse_args, parse_train_overrides, plan_from_args, plan_trainings  # noqa: E402

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


@pytest.mark.parametrize("pair, message", [("notes_views=0", "notes_views must be 1 or more"),
                                           ("rename_fraction=2", "rename_fraction is a share"),
                                           ("bf16=maybe", "bf16 takes true or false, not 'maybe'"),
                                           ("lora_r=4.5", "lora_r takes a whole number, not '4.5'")])
def test_a_value_training_would_refuse_is_refused_before_the_simulation(pair, message):
    with pytest.raises(SystemExit, match=f"--set {pair}: " + message):
        parse_train_overrides([pair])


@pytest.mark.parametrize("pair, option", [("seed=1", "--seed"), ("threads=4", "--threads"), ("method=sft", "--methods")])
def test_fields_the_bench_sets_itself_are_refused_with_its_own_option(pair, option):
    with pytest.raises(SystemExit, match=f"comes from the bench's own options; use {option}"):
        parse_train_overrides([pair])


def test_refine_continues_each_method_right_after_it_with_its_own_epochs_and_lr():
    args = parse_args(["--methods", "swift,sft", "--refine-epochs", "2", "--set", "notes_views=3"])
    overrides = parse_train_overrides(args.train_set)
    plan = plan_trainings(args.methods, overrides, args.refine_epochs, args.refine_lr)
    assert [(p["name"], p["method"], p["after"]) for p in plan] == [
        ("swift", "swift", None), ("swift + 2 epochs at lr 0.0002", "swift", "swift"),
        ("sft", "sft", None), ("sft + 2 epochs at lr 0.0002", "sft", "sft")]
    assert not any(p["averages"] for p in plan)
    assert plan[0]["overrides"] == {"notes_views": 3}  # the first run keeps the defaults' epochs and lr
    assert plan[1]["overrides"] == {"notes_views": 3, "epochs": 2.0, "learning_rate": 2e-4}


def test_without_refine_each_method_trains_once_from_scratch():
    plan = plan_trainings("swift, dpo", {"epochs": 3.0}, 0.0, 2e-4)
    assert [(p["name"], p["after"], p["overrides"]) for p in plan] == [
        ("swift", None, {"epochs": 3.0}), ("dpo", None, {"epochs": 3.0})]


def test_refine_seeds_refine_the_same_adapter_again_then_average_the_refinements():
    plan = plan_trainings("swift", {}, 2.0, 2e-4, refine_seeds=3)
    refined = "swift + 2 epochs at lr 0.0002"
    assert [(p["name"], p["after"]) for p in plan] == [
        ("swift", None), (refined, "swift"), (f"{refined}, seed +1", "swift"),
        (f"{refined}, seed +2", "swift"), (f"{refined}, average of 3 seeds", "swift")]
    assert plan[-1]["averages"] == [refined, f"{refined}, seed +1", f"{refined}, seed +2"]
    assert all(p["overrides"] == {"epochs": 2.0, "learning_rate": 2e-4} for p in plan[1:4])


def test_refine_rounds_continue_the_previous_rounds_average():
    plan = plan_trainings("swift", {}, 2.0, 2e-4, refine_seeds=2, refine_rounds=2)
    one, two = "swift + 2 epochs at lr 0.0002", "swift + 2 epochs at lr 0.0002, round 2"
    assert [(p["name"], p["after"], p["averages"]) for p in plan] == [
        ("swift", None, []), (one, "swift", []), (f"{one}, seed +1", "swift", []),
        (f"{one}, average of 2 seeds", "swift", [one, f"{one}, seed +1"]),
        (two, f"{one}, average of 2 seeds", []), (f"{two}, seed +1", f"{one}, average of 2 seeds", []),
        (f"{two}, average of 2 seeds", f"{one}, average of 2 seeds", [two, f"{two}, seed +1"])]
    # each round's refinements draw new seeds: round 1 trains seeds +0 and +1 (the k-th continuation adds k),
    # round 2 seeds +2 and +3, so a later round never repeats an earlier round's views
    assert [p.get("seed_offset", 0) for p in plan] == [0, 0, 0, 0, 2, 2, 0]
    single = plan_trainings("swift", {}, 2.0, 2e-4, refine_rounds=3)  # one refinement a round: a chain
    assert [(p["name"], p["after"]) for p in single] == [
        ("swift", None), (one, "swift"), (two, one), ("swift + 2 epochs at lr 0.0002, round 3", two)]
    assert [p.get("seed_offset", 0) for p in single] == [0, 0, 1, 2]


def test_refine_methods_refine_only_the_named_methods_and_the_baselines_train_once():
    args = parse_args(["--methods", "swift,sft,dpo", "--refine-epochs", "2", "--refine-rounds", "2",
                       "--refine-methods", "swift,sft"])
    one, two = "swift + 2 epochs at lr 0.0002", "swift + 2 epochs at lr 0.0002, round 2"
    sft_one, sft_two = "sft + 2 epochs at lr 0.0002", "sft + 2 epochs at lr 0.0002, round 2"
    assert [(p["name"], p["after"]) for p in plan_from_args(args, {})] == [
        ("swift", None), (one, "swift"), (two, one), ("swift, average of the last 2 rounds", two),
        ("sft", None), (sft_one, "sft"), (sft_two, sft_one), ("sft, average of the last 2 rounds", sft_two),
        ("dpo", None)]
    with pytest.raises(SystemExit, match="kto is not among --methods"):
        plan_trainings("swift,sft", {}, 2.0, 2e-4, refine_methods="swift,kto")


def test_the_defaults_are_the_recipe_five_chained_rounds_for_the_reward_weighted_methods_only():
    args = parse_args([])
    assert args.extractive_answers and not parse_args(["--no-extractive-answers"]).extractive_answers
    plan = plan_from_args(args, {})
    assert [p["name"] for p in plan if p["method"] in ("sft", "dpo")] == ["sft", "dpo"]  # baselines: one run
    for method in ("swift", "refit"):
        *chain, average = [p for p in plan if p["method"] == method]
        assert len(chain) == 6 and [p["after"] for p in chain[1:]] == [p["name"] for p in chain[:-1]]
        assert all(p["overrides"] == {"epochs": 2.0, "learning_rate": 2e-4} for p in chain[1:])
        # the chain's result, as the product serves it: the average of rounds 4 and 5, parent round 5
        assert average["chain"] and average["averages"] == [p["name"] for p in chain[-2:]]
        assert average["after"] == chain[-1]["name"]
    assert not any(p["averages"] for p in plan_from_args(parse_args(["--average-last", "0"]), {}))
    # no refinement: every method trains once, and the rounds' default does not get in the way
    assert [p["name"] for p in plan_from_args(parse_args(["--refine-epochs", "0"]), {})] == [
        "swift", "sft", "refit", "dpo"]


@pytest.mark.parametrize("argv, message", [(["--refine-seeds", "0"], "must be 1 or more"),
                                           (["--refine-seeds", "2", "--refine-epochs", "0"], "needs --refine-epochs"),
                                           (["--refine-rounds", "0", "--refine-epochs", "2"], "must be 1 or more"),
                                           (["--refine-rounds", "2", "--refine-epochs", "0"],
                                            "--refine-rounds needs --refine-epochs")])
def test_bad_seed_counts_are_refused_before_any_work(argv, message, tmp_path):
    from learning import main

    with pytest.raises(SystemExit, match=message):
        main(["--data-dir", str(tmp_path / "bench"), *argv])
    assert not (tmp_path / "bench").exists()


def test_every_field_the_training_run_sets_itself_has_a_bench_option_to_name():
    from learner.jobs import SET_BY_RUN_TRAINING

    from bench.learning_plan import USE_INSTEAD

    assert set(SET_BY_RUN_TRAINING) <= set(USE_INSTEAD)
