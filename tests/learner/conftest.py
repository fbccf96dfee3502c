"""Shared learner-test data: a small log where asking paid on some questions and answering on others."""

from __future__ import annotations

from pathlib import Path

import pytest

GEORGIA = "Georgia is a country in the Caucasus; its capital is Tbilisi. Georgia is also a US state; its capital is Atlanta."
PARIS = "The Eiffel Tower stands in Paris. It was finished in 1889."


def _log_mixed(database: Path) -> None:
    """12 questions logged twice each, once asking first and once answering: asking paid on the ambiguous
    Georgia ones, answering paid on the clear Paris ones, so the calibration has both kinds to rank."""
    from logs_db.store import LogStore

    with LogStore(database) as store:
        for i in range(6):
            for asks in (True, False):
                cid = store.new_conversation(source="simulated", context=GEORGIA, context_key=f"georgia-{i}")
                store.add_turn(cid, role="user", kind="user", text=f"What is the capital of Georgia? ({i})")
                if asks:
                    store.add_turn(cid, role="assistant", kind="ask", text="Do you mean the country or the US state?")
                    store.add_turn(cid, role="user", kind="user", text="The country.")
                store.add_turn(cid, role="assistant", kind="answer",
                               text="Tbilisi." if asks else "Atlanta.")
                store.set_conversation_reward(cid, 0.9 if asks else 0.0)
                cid = store.new_conversation(source="simulated", context=PARIS, context_key=f"paris-{i}")
                store.add_turn(cid, role="user", kind="user", text=f"Where is the Eiffel Tower? ({i})")
                if asks:
                    store.add_turn(cid, role="assistant", kind="ask", text="Do you mean the one in Paris?")
                    store.add_turn(cid, role="user", kind="user", text="Yes.")
                store.add_turn(cid, role="assistant", kind="answer", text="In Paris.")
                store.set_conversation_reward(cid, 0.5 if asks else 1.0)


@pytest.fixture
def mixed_data_dir(tmp_path) -> Path:
    """A data folder whose database holds `_log_mixed`'s conversations."""
    data = tmp_path / "data"
    data.mkdir()
    _log_mixed(data / "clarify.duckdb")
    return data


@pytest.fixture
def train_cli(mixed_data_dir, model_path):
    """`clarify train FLAGS` as a one-step smoke run on the mixed log: (its output, the adapters by id)."""
    def run(*flags: str) -> tuple[str, dict]:
        from typer.testing import CliRunner

        from clarify.cli import app
        from logs_db.store import LogStore

        result = CliRunner().invoke(app, ["train", *flags, "--max-steps", "1", "--set", "batch_size=4", "--data-dir",
                                          str(mixed_data_dir), "--model", str(model_path), "--threads", "1"])
        assert result.exit_code == 0, result.output
        with LogStore(mixed_data_dir / "clarify.duckdb") as store:
            return result.output, {a.id: a for a in store.list_adapters()}

    return run
