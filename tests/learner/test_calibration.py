"""The ask threshold: chosen on renamed copies of the logged questions, from what asking and answering earned
on each."""

from __future__ import annotations

import json
import math
import random
import shutil

import pytest

from agent.policy import Message
from learner.calibration import (
    CALIBRATION_COPIES, MIN_QUESTIONS, CalibrationError, DecisionProblem, action_values, calibrate_folder,
    calibration_questions, choose_threshold, question_key, ranking_auc,
)
from learner.examples import Conversation


def _conv(cid: str, key: str, reward: float, asked: bool, question: str = "Which one?") -> Conversation:
    user = Message("user", question, "user")
    first = Message("assistant", "Do you mean A or B?", "ask") if asked else Message("assistant", "A.", "answer")
    return Conversation(cid, key, f"notes of {key}", reward, [user, first])


def _logged(n_keys: int, per_key: int = 3) -> list[Conversation]:
    return [_conv(f"{k}-{j}", f"item-{k}", 0.5, j == 0) for k in range(n_keys) for j in range(per_key)]


def test_a_question_is_its_notes_and_its_opening_question():
    assert question_key(_conv("a", "k", 1, True, "Q1?")) == question_key(_conv("b", "k", 0, False, "Q1?"))
    assert question_key(_conv("a", "k", 1, True, "Q1?")) != question_key(_conv("b", "k", 1, True, "Q2?"))


def test_action_values_average_per_question_and_borrow_the_overall_mean_for_a_missing_action():
    logged = [_conv("a1", "x", 1.0, True), _conv("a2", "x", 0.6, True), _conv("b1", "x", 0.0, False),
              _conv("c1", "y", 0.5, False)]  # y: never asked
    values = action_values(logged)
    assert values[question_key(logged[0])] == pytest.approx((0.8, 0.0))
    assert values[question_key(logged[3])] == pytest.approx((0.8, 0.5))  # ask: the mean of all asks


def _problems(pairs):
    return [DecisionProblem(f"q{i}", p, ask, answer) for i, (p, ask, answer) in enumerate(pairs)]


def test_the_threshold_separates_questions_where_asking_paid_from_those_where_answering_did():
    rng = random.Random(1)
    # Ambiguous: P(ask) 0.15-0.45 (under greedy's 0.5), asking earns 0.9, answering 0.3.
    # Clear: P(ask) 0.001-0.05, answering earns 0.9, asking 0.8.
    pairs = ([(rng.uniform(0.15, 0.45), 0.9, 0.3) for _ in range(12)]
             + [(rng.uniform(0.001, 0.05), 0.8, 0.9) for _ in range(12)])
    threshold = choose_threshold(_problems(pairs))
    assert 0.05 < threshold < 0.15
    assert choose_threshold(_problems(pairs)) == threshold  # seeded: the same data, the same threshold


def test_when_asking_never_pays_the_threshold_is_above_every_question():
    pairs = [(p, 0.2, 0.9) for p in (0.9, 0.7, 0.6, 0.3, 0.2, 0.1, 0.05, 0.01)]
    assert choose_threshold(_problems(pairs)) > 0.9


def test_ties_keep_the_greedy_decision():
    # Asking and answering earn the same everywhere: nothing to gain, so the threshold stays at 0.5's side.
    pairs = [(p, 0.5, 0.5) for p in (0.9, 0.8, 0.7, 0.2, 0.1, 0.05, 0.02, 0.01)]
    threshold = choose_threshold(_problems(pairs))
    assert 0.2 < threshold < 0.7


def test_ranking_auc_counts_pairs_of_paid_and_needless_questions_and_ignores_ties_in_value():
    # asking paid at P 0.6 and 0.2; answering paid at 0.4 and 0.1; a tie in value at 0.9 counts for neither.
    pairs = [(0.6, 0.9, 0.3), (0.2, 0.9, 0.3), (0.4, 0.3, 0.9), (0.1, 0.3, 0.9), (0.9, 0.5, 0.5)]
    assert ranking_auc(_problems(pairs)) == 0.75  # 3 of the 4 (paid, needless) pairs in order
    assert ranking_auc(_problems([(p, a, 1 - a) for p, a in ((0.1, 0.9), (0.2, 0.1))])) == 0.0
    assert ranking_auc(_problems([(0.5, 0.9, 0.1)] * 3)) is None  # no question where answering paid


def test_too_few_questions_give_no_threshold():
    assert choose_threshold(_problems([(0.5, 1.0, 0.0)] * (MIN_QUESTIONS - 1))) is None


def test_calibrating_a_folder_without_its_snapshot_is_a_clear_error(tmp_path):
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "clarify_adapter.json").write_text(json.dumps({"snapshot": str(tmp_path / "gone.parquet")}))
    with pytest.raises(CalibrationError, match="is gone"):
        calibrate_folder("unused", folder)


def test_ask_threshold_bounds_are_probabilities():
    pairs = [(p, 0.9, 0.1) for p in (1e-7, 2e-7, 3e-7, 4e-7, 5e-7, 6e-7, 7e-7, 8e-7)]
    threshold = choose_threshold(_problems(pairs))
    assert 0 < threshold < 1 and not math.isnan(threshold)


def test_a_needless_question_budget_caps_the_asks_where_answering_paid():
    rng = random.Random(3)
    # The ranking overlaps: asking gains 0.5 on the ambiguous questions and costs only 0.1 on the clear ones,
    # so the most logged reward asks on nearly everything.
    pairs = ([(rng.uniform(0.2, 0.6), 0.9, 0.4) for _ in range(15)]
             + [(rng.uniform(0.05, 0.5), 0.8, 0.9) for _ in range(15)])
    problems = _problems(pairs)
    free, capped = choose_threshold(problems, 1.0), choose_threshold(problems, 0.2)
    needless = lambda t: sum(p.p_ask > t for p in problems if p.ask_value < p.answer_value) / 15  # noqa: E731
    assert needless(free) > 0.5
    assert capped > free and needless(capped) <= 0.2 + 1 / 15  # the bootstrap median may land one question off
    assert choose_threshold(problems, 0.0) >= max(p.p_ask for p in problems if p.ask_value < p.answer_value) - 1e-9


def test_the_threshold_is_set_on_renamed_copies_of_the_trained_questions():
    notes = "Order 8801 ships Tuesday from Denver. Order 8802 ships Friday from Boston."
    trained = [Conversation(f"c{i}", f"item-{i}", notes, 0.5,
                            [Message("user", "When does order 8801 ship from Denver?", "user"),
                             Message("assistant", "Tuesday.", "answer")]) for i in range(3)]
    source, copies = calibration_questions(trained)
    assert source == "renamed copies of the trained questions"
    assert set(copies) == {question_key(c) for c in trained}  # keyed by the original question: its logged values
    assert all(len(views) == CALIBRATION_COPIES and len({v.context for v in views}) == CALIBRATION_COPIES
               for views in copies.values())  # different draws, their P(ask) averaged
    for conv in (view for views in copies.values() for view in views):
        question = conv.messages[0].content
        assert "8801" not in conv.context and "8801" not in question  # every number renamed
        number = question.split()[3]
        assert f"Order {number} ships Tuesday" in conv.context  # the same way in the question and the notes
    assert calibration_questions(trained)[1] == copies  # seeded: the same copies every time


def test_cli_calibrate_sets_the_threshold_on_renamed_questions_and_refuses_bad_input(tmp_path, model_path,
                                                                                      lora_template):
    """Also for an adapter whose metadata holds the keys of options since removed (renamed copies in the decision,
    held-out questions): it calibrates with its training settings, and the removed keys are dropped."""
    from typer.testing import CliRunner

    from clarify.cli import app
    from logs_db.snapshot import export_snapshot
    from logs_db.store import LogStore

    data = tmp_path / "data"
    with LogStore(data / "clarify.duckdb") as store:
        for i in range(12):  # 12 questions, each logged once asking (reward 0.9) and once guessing (0)
            notes = f"Georgia {i} is a country; its capital is Tbilisi. Georgia {i} is a US state; its capital is Atlanta."
            for asked in (True, False):
                cid = store.new_conversation(source="simulated", context=notes, context_key=f"georgia-{i}")
                store.add_turn(cid, role="user", kind="user", text=f"What is the capital of Georgia {i}?")
                store.add_turn(cid, role="assistant", kind="ask" if asked else "answer",
                               text="Do you mean the country or the state?" if asked else "Atlanta.")
                store.set_conversation_reward(cid, 0.9 if asked else 0.0)
        snapshot = export_snapshot(store, data / "snapshots" / "s.parquet").path
        folder = data / "adapters" / "lora-a"
        shutil.copytree(lora_template, folder)
        (folder / "clarify_adapter.json").write_text(json.dumps({
            "method": "swift", "snapshot": str(snapshot), "ask_renamed_views": 2, "ask_vocabulary": ["tbilisi"],
            "calibration_share": 0.15, "ask_views": 3,
            "config": {"horizon": 1, "ask_views": 3, "calibration_share": 0.15, "distractors": 1,
                       "ask_renamed_views": 2, "fold_clarifications": True, "narrow_notes": True}}))
        store.register_adapter(adapter_id="lora-a", method="swift", path=str(folder))
    run = lambda *args: CliRunner().invoke(app, [*args, "--data-dir", str(data)])  # noqa: E731
    result = run("adapters", "calibrate", "lora-a", "--model", str(model_path))
    assert result.exit_code == 0, result.output
    meta = json.loads((folder / "clarify_adapter.json").read_text())
    assert meta["method"] == "swift" and meta["config"]["distractors"] == 1  # the rest of the metadata is kept
    assert not {"ask_renamed_views", "ask_vocabulary", "calibration_share", "ask_views"} & set(meta)
    assert meta["calibration"]["questions"] == "renamed copies of the trained questions"
    assert meta["calibration"]["n_questions"] == 12 and meta["calibration"]["answering_paid"] == 0
    assert meta["calibration"]["ranking_auc"] is None  # asking paid on every question: nothing to rank against
    assert f"ask threshold: {meta['ask_threshold']}. On 12 renamed copies" in result.output
    assert "pooled" not in result.output  # P(ask) is read once, on the prompt as given
    assert meta["calibration"]["at_threshold"]["logged_value"] >= meta["calibration"]["at_0.5"]["logged_value"]
    from agent.decision import AskDecision, read_ask_decision

    assert read_ask_decision(folder) == AskDecision(meta["ask_threshold"])  # what the engines will apply
    for args, message in ((("adapters", "calibrate", "nope"), "nope"),
                          (("adapters", "calibrate", "lora-a", "--ask-renamed-views", "2"), "No such option"),
                          (("adapters", "calibrate", "lora-a", "--share", "0.15"), "No such option"),
                          (("adapters", "calibrate", "lora-a", "--max-needless-asks", "2"), "from 0 to 1"),
                          (("adapters", "calibrate", "lora-a", "--ask-views", "3"), "No such option")):
        refused = run(*args, "--model", str(model_path))
        assert refused.exit_code == 2 and message in refused.output


def test_calibration_reads_at_most_a_fixed_sample_of_questions(monkeypatch):
    import learner.calibration as calibration

    monkeypatch.setattr(calibration, "MAX_CALIBRATION_QUESTIONS", 10)
    logged = _logged(40)
    _, copies = calibration_questions(logged)
    assert len(copies) == 10
    assert set(copies) == set(calibration_questions(list(reversed(logged)))[1])  # the same sample each time


def test_the_calibration_summary_shows_the_ranking_when_there_is_one():
    from learner.commands import describe_calibration

    at = {"asked": 5, "needless": 1, "logged_value": 0.7}
    stats = {"questions": "renamed copies of the trained questions", "n_questions": 10, "answering_paid": 4,
             "at_threshold": at, "at_0.5": at, "ranking_auc": 0.8125}
    result = {"ask_threshold": 0.1, "calibration": stats}
    assert "Ranking AUC (asking paid above answering paid): 0.8125." in describe_calibration(result)
    assert "Ranking AUC" not in describe_calibration({**result, "calibration": {**stats, "ranking_auc": None}})
