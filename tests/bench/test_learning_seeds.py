"""bench/learning.py: every model on dev and on the test split, every method once per training seed (--seeds),
one table with dev and test side by side and a mean-over-seeds row per method. Training and evaluation are
faked: the runner takes them as callables, and main's are swapped for fakes on a real (empty) DuckDB file."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import learning  # noqa: E402
from learning import bench_command, parse_args, plan_trainings, render, run_rows  # noqa: E402

HEADER = "| method | training seed | train time | dev: mean reward"


def metrics(reward, amb=0.5, clear=0.1, named=0.9, n=10, n_ambiguous=5, stderr=0.03):
    return {"n": n, "n_ambiguous": n_ambiguous, "mean_reward": reward, "stderr": stderr, "accuracy": reward,
            "ask_rate_ambiguous": amb, "ask_rate_unambiguous": clear, "mean_turns": 1.2, "asks_named_options": named}


class Fakes:
    """train / average / evaluate_on for run_rows: record every call, return made-up ids and metrics
    (seed s scores 0.6 + 0.2 s on dev and 0.1 less on test; base 0.4 / 0.3)."""

    def __init__(self):
        self.trained, self.averaged, self.evaluated = [], [], []

    def train(self, step, seed, parent_id):
        self.trained.append((step["name"], seed, parent_id))
        return f"{step['name']}@{seed}"

    def average(self, members, parent_id):
        self.averaged.append((members, parent_id))
        return f"average of {'+'.join(members)}"

    def evaluate_on(self, adapter, split):
        self.evaluated.append((adapter, split))
        if adapter is None:
            return metrics(0.4 if split == "dev" else 0.3, amb=0.03, clear=0.02, named=None)
        seed = int(adapter.rsplit("@", 1)[1])
        return metrics(0.6 + 0.2 * seed - (0.1 if split == "test" else 0.0), amb=0.8 + 0.1 * seed)


def table_args(**kw):
    return SimpleNamespace(**{"train_items": Path("train.jsonl"), "dev_items": Path("dev.jsonl"),
                              "test_items": Path("test.jsonl"), "per_item": 3, "ask_first": 1, "temperatures": "0.3",
                              "hint_answers": True, "answer_tries": 1, "extractive_answers": True,
                              "max_conversations": 500, "items_first": "families", "seed": 0, "seeds": [0, 1], **kw})


def body(table: str) -> list[list[str]]:
    """The table's rows below the header, as lists of cells."""
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(HEADER)) + 2
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[start:] if line.startswith("|")]


# --seeds


def test_seeds_default_to_the_settings_seed_one_run_per_method():
    assert parse_args([]).seeds == [0]
    assert parse_args(["--seed", "3"]).seeds == [3]  # --seed S --reuse still trains with S, as before
    assert parse_args(["--seeds", "0,1"]).seeds == [0, 1]
    assert parse_args(["--seeds", " 2, 5 ", "--seed", "7"]).seeds == [2, 5]  # the simulation keeps --seed
    assert parse_args(["--seeds", "2, 5", "--seed", "7"]).seed == 7


@pytest.mark.parametrize("value, message", [("a,1", "takes whole numbers separated by commas, e.g. 0,1; not 'a,1'"),
                                            ("0.5", "takes whole numbers"),
                                            (",", "takes one or more training seeds"),
                                            ("0,-1", "seeds are 0 or more, not -1"),
                                            ("1,1", "names a seed twice")])
def test_bad_seeds_are_refused_with_a_clear_message(value, message, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--seeds", value])
    assert f"argument --seeds: {message}" in capsys.readouterr().err


def test_bad_seeds_are_refused_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit):
        learning.main(["--data-dir", str(tmp_path / "bench"), "--seeds", "x"])
    assert "argument --seeds" in capsys.readouterr().err
    assert not (tmp_path / "bench").exists()


# the runner


def test_base_is_evaluated_once_per_split_and_every_adapter_on_both():
    fakes = Fakes()
    plan = plan_trainings("swift,sft", {}, 2.0, 2e-4, refine_rounds=2, refine_methods="swift", average_last=2)
    rows = run_rows(plan, [0, 1], evaluate_on=fakes.evaluate_on, train=fakes.train, average=fakes.average)
    assert [call for call in fakes.evaluated if call[0] is None] == [(None, "dev"), (None, "test")]
    adapters = [adapter for adapter, split in fakes.evaluated if adapter is not None]
    assert len(adapters) == 2 * len(plan) * 2 and len(set(adapters)) == len(plan) * 2  # every adapter, twice
    assert [split for adapter, split in fakes.evaluated] == ["dev", "test"] * (1 + len(plan) * 2)
    # one row per method per seed, after base
    assert [(r["method"], r["seed"]) for r in rows] == [("base", None)] + [
        (step["name"], seed) for seed in (0, 1) for step in plan]
    assert all(set(r) == {"method", "seed", "train_s", "dev", "test"} for r in rows)


def test_each_seed_trains_the_whole_plan_on_its_own_seeds_and_adapters():
    fakes = Fakes()
    plan = plan_trainings("swift,sft", {}, 2.0, 2e-4, refine_rounds=3, refine_methods="swift", average_last=2)
    run_rows(plan, [0, 5], evaluate_on=fakes.evaluate_on, train=fakes.train, average=fakes.average)
    one, two, three = ("swift + 2 epochs at lr 0.0002" + r for r in ("", ", round 2", ", round 3"))
    # the first run trains with the seed, round r with seed + r - 1 (learner/jobs.py adds the parent's continuation
    # count on top); each seed's chain continues its own adapters, and sft trains once per seed
    assert fakes.trained == [run for s in (0, 5) for run in (
        ("swift", s, None), (one, s, f"swift@{s}"), (two, s + 1, f"{one}@{s}"), (three, s + 2, f"{two}@{s + 1}"),
        ("sft", s, None))]
    assert fakes.averaged == [([f"{two}@{s + 1}", f"{three}@{s + 2}"], f"{three}@{s + 2}") for s in (0, 5)]


def test_the_runner_hands_every_row_to_on_row_as_it_comes():
    fakes, seen = Fakes(), []
    plan = plan_trainings("swift", {}, 0.0, 2e-4)
    run_rows(plan, [0, 1], evaluate_on=fakes.evaluate_on, train=fakes.train, average=fakes.average,
             on_row=lambda rows: seen.append(len(rows)))
    assert seen == [1, 2, 3]


# the table


def test_the_table_has_dev_and_test_side_by_side_one_row_per_method_and_seed_and_the_means():
    fakes = Fakes()
    plan = plan_trainings("swift,sft", {}, 0.0, 2e-4)
    rows = run_rows(plan, [0, 1], evaluate_on=fakes.evaluate_on, train=fakes.train, average=fakes.average)
    table = render(rows, table_args(), command=bench_command(["--methods", "swift,sft", "--seeds", "0,1"]),
                   machine="Some CPU, 2 cores")
    header = next(line for line in table.splitlines() if line.startswith(HEADER))
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert cells[3:] == ["dev: mean reward ± stderr", "dev: asks ambiguous", "dev: asks clear",
                         "dev: asks naming the options", "test: mean reward ± stderr", "test: asks ambiguous",
                         "test: asks clear", "test: asks naming the options"]
    rows_ = body(table)
    assert [(r[0], r[1]) for r in rows_] == [
        ("base", "-"), ("swift", "0"), ("swift", "1"), ("swift", "mean over 2 seeds"),
        ("sft", "0"), ("sft", "1"), ("sft", "mean over 2 seeds")]
    assert all(len(r) == len(cells) for r in rows_)
    base, seed0, seed1, mean = rows_[:4]
    assert base[3:] == ["0.400 ± 0.030", "0.03", "0.02", "-", "0.300 ± 0.030", "0.03", "0.02", "-"]
    assert seed0[3] == "0.600 ± 0.030" and seed0[7] == "0.500 ± 0.030" and seed0[4] == "0.80"
    assert seed1[3] == "0.800 ± 0.030" and seed1[7] == "0.700 ± 0.030" and seed1[4] == "0.90"
    # the mean over seeds; ± is the standard error across the seeds (|0.8 - 0.6| / 2)
    assert mean[3] == "0.700 ± 0.100" and mean[7] == "0.600 ± 0.100" and mean[4] == "0.85" and mean[6] == "0.90"
    assert "Mean rows: the average over the seeds; ± is the standard error across seeds." in table


def test_the_table_names_its_command_machine_seeds_splits_and_behaviour_data():
    rows = [{"method": "base", "seed": None, "train_s": None, "dev": metrics(0.4, n=192, n_ambiguous=95),
             "test": metrics(0.3, n=279, n_ambiguous=137)},
            {"method": "swift", "seed": 0, "train_s": 1740.0, "dev": metrics(0.6), "test": metrics(0.5)}]
    table = render(rows, table_args(seeds=[0]), command=bench_command(["--methods", "swift", "--dev-limit", "5 0"]),
                   machine="Some CPU, 2 cores; load average 1.00 at start",
                   behaviour={"conversations": 498, "items": 166, "mean_reward": 0.763, "asks_named_options": 0.9})
    lines = table.splitlines()
    assert lines[0] == "# Learning results: dev and test"
    assert "Reproduce: `.venv/bin/python bench/learning.py --methods swift --dev-limit '5 0'`" in lines
    assert "Machine: Some CPU, 2 cores; load average 1.00 at start." in lines
    assert any(line.startswith("Training seeds: 0 (") and "simulation and evaluation seed 0" in line for line in lines)
    assert "(`dev.jsonl`, 192 items, 95 ambiguous)" in table and "(`test.jsonl`, 279 items, 137 ambiguous)" in table
    assert "test is for reporting only" in table and "[docs/TEST_SPLIT.md](TEST_SPLIT.md)" in table
    behaviour = next(line for line in lines if line.startswith("Behaviour data:"))
    assert "at most 500 conversations, whole families first. 498 conversations on 166 items, mean reward 0.763" \
        in behaviour
    assert [(r[0], r[1], r[2]) for r in body(table)] == [("base", "-", "-"), ("swift", "0", "29 min")]
    assert "mean over" not in table and "Mean rows" not in table  # one seed: no mean rows


def test_train_time_reads_in_seconds_minutes_or_hours():
    assert [learning.fmt_duration(s) for s in (None, 42.4, 1740.0, 3599.0, 9000.0)] == [
        "-", "42 s", "29 min", "1 h 00 min", "2 h 30 min"]


# main, with the model, training and evaluation faked


def test_main_evaluates_base_once_per_split_and_writes_the_current_results(tmp_path, monkeypatch):
    from logs_db.store import LogStore

    evaluated, trained = [], []

    class Engine:
        def __init__(self, *args, **kwargs):
            self.loaded = set()

        def load_adapter(self, adapter_id, path):
            self.loaded.add(adapter_id)

        def unload_adapter(self, adapter_id):
            self.loaded.remove(adapter_id)

    def evaluate(engine, items, *, adapter, seed, **kwargs):
        assert adapter is None or adapter in engine.loaded
        split = "test" if items[0].id.startswith("t-") else "dev"
        evaluated.append((adapter, split, len(items), seed))
        m = metrics(0.4 if adapter is None else 0.7 if split == "dev" else 0.65, n=len(items))
        return SimpleNamespace(metrics={k: m[k] for k in learning_metric_keys()}, details={"asks_named_options": 0.5})

    def run_training(settings, store: LogStore, *, method, parent_id, **kwargs):
        adapter_id = f"{method}-{settings.seed}"
        trained.append((method, settings.seed, parent_id))
        store.register_adapter(adapter_id=adapter_id, method=method, path=str(tmp_path / adapter_id),
                               parent_id=parent_id)
        return SimpleNamespace(adapter_id=adapter_id, path=tmp_path / adapter_id)

    monkeypatch.setattr(learning, "REPO", tmp_path)  # --write writes tmp_path/docs/RESULTS.md
    monkeypatch.setattr(learning, "resolve_model", lambda *args: tmp_path / "model")
    monkeypatch.setattr(learning, "TransformersEngine", Engine)
    monkeypatch.setattr(learning, "run_conversations", lambda *args, **kwargs: [])
    monkeypatch.setattr(learning, "evaluate", evaluate)
    monkeypatch.setattr(learning, "run_training", run_training)
    monkeypatch.setattr(learning, "describe", lambda: "Fake CPU, 2 cores")
    data = REPO / "agent" / "data"
    argv = ["--data-dir", str(tmp_path / "bench"), "--train-items", str(data / "train.jsonl"),
            "--dev-items", str(data / "dev.jsonl"), "--test-items", str(data / "test.jsonl"), "--dev-limit", "3",
            "--test-limit", "4", "--methods", "swift,sft", "--refine-epochs", "0", "--seeds", "0,1", "--write"]
    assert learning.main(argv) == 0
    assert [e for e in evaluated if e[0] is None] == [(None, "dev", 3, 0), (None, "test", 4, 0)]
    assert sorted(e[:2] for e in evaluated if e[0]) == sorted(
        (f"{m}-{s}", split) for m in ("swift", "sft") for s in (0, 1) for split in ("dev", "test"))
    assert {e[3] for e in evaluated} == {0}  # every model is graded on the same intents
    assert trained == [("swift", 0, None), ("sft", 0, None), ("swift", 1, None), ("sft", 1, None)]
    store = LogStore(tmp_path / "bench" / "clarify.duckdb")
    assert store.get_adapter("swift-0").eval_results["mean_reward"] == 0.7  # the dev result: what choices read
    assert store.execute("SELECT count(*) FROM eval_runs").fetchone()[0] == 2 + 4 * 2
    store.close()
    written = (tmp_path / "docs" / "RESULTS.md").read_text()
    assert written.startswith("# Learning results: dev and test\n")
    assert "Machine: Fake CPU, 2 cores." in written and "Training seeds: 0, 1 (" in written
    assert f"Reproduce: `.venv/bin/python bench/learning.py {' '.join(argv)}`" in written
    assert [(r[0], r[1]) for r in body(written)] == [
        ("base", "-"), ("swift", "0"), ("swift", "1"), ("swift", "mean over 2 seeds"),
        ("sft", "0"), ("sft", "1"), ("sft", "mean over 2 seeds")]


def learning_metric_keys():
    from agent.evaluate import METRIC_KEYS

    return METRIC_KEYS


def test_reuse_keeps_the_base_evaluations_of_the_same_items_and_seed(tmp_path, monkeypatch):
    evaluated = []

    class Engine:
        def __init__(self, *args, **kwargs):
            pass

    def evaluate(engine, items, *, adapter, seed, **kwargs):
        evaluated.append((adapter, len(items), seed))
        m = metrics(0.4, n=len(items))
        return SimpleNamespace(metrics={k: m[k] for k in learning_metric_keys()}, details={"seed": seed})

    monkeypatch.setattr(learning, "resolve_model", lambda *args: tmp_path / "model")
    monkeypatch.setattr(learning, "TransformersEngine", Engine)
    monkeypatch.setattr(learning, "run_conversations", lambda *args, **kwargs: [])
    monkeypatch.setattr(learning, "evaluate", evaluate)
    monkeypatch.setattr(learning, "describe", lambda: "Fake CPU")
    argv = ["--data-dir", str(tmp_path / "bench"), "--dev-limit", "3", "--test-limit", "4", "--methods", ""]
    for extra in ([], ["--reuse"], ["--reuse", "--seed", "1"]):
        learning.main([*argv, *extra])
    assert evaluated == [(None, 3, 0), (None, 4, 0), (None, 3, 1), (None, 4, 1)]
