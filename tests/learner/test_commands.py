"""`clarify train`: its plain progress lines (what a log file or CI shows of a long run), its options, and
`--set FIELD=VALUE` for the training options."""

from pathlib import Path

import pytest

from learner.commands import tenth_reached


def test_a_run_prints_one_line_per_tenth_and_the_last_step():
    logged: set = set()
    printed = [step for step in range(0, 101) if tenth_reached(step, 100, logged)]
    assert printed == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]


def test_a_short_run_prints_each_tenth_once_and_nothing_before_a_step():
    logged: set = set()
    assert not tenth_reached(0, 3, logged)
    assert [tenth_reached(s, 3, logged) for s in (1, 1, 2, 3)] == [True, False, True, True]
    assert not tenth_reached(5, 0, set())  # an unknown total prints nothing rather than failing


# `clarify train`'s options: the product's, and every training option behind `--set FIELD=VALUE`.

PRODUCT_OPTIONS = {"--method", "--source", "--since", "--until", "--from-adapter", "--refine-rounds", "--max-steps",
                   "--activate", "--no-activate", "--gate", "--no-gate", "--data-dir", "--model", "--threads",
                   "--engine", "--set", "--help"}


def _train(*args: str):
    from typer.testing import CliRunner

    from clarify.cli import app

    return CliRunner().invoke(app, ["train", *args])


def test_train_help_lists_the_product_options_and_set_only():
    import click
    import typer

    from clarify.cli import app

    train = typer.main.get_command(app).commands["train"]
    params = train.get_params(click.Context(train))
    assert {name for param in params for name in (*param.opts, *param.secondary_opts)} == PRODUCT_OPTIONS
    result = _train("--help")
    assert result.exit_code == 0 and "FIELD=VALUE" in result.output
    assert all(option in result.output for option in PRODUCT_OPTIONS - {"--no-activate", "--no-gate"})


@pytest.mark.parametrize("flag", [
    ["--epochs", "3"], ["--lr", "2e-4"], ["--lora-r", "8"], ["--batch-size", "4"], ["--notes-views", "1"],
    ["--rename-words", "0"], ["--max-needless-asks", "0.2"], ["--ask-views", "1"], ["--distractors", "1"],
    ["--calibration-share", "0.15"], ["--ask-renamed-views", "2"], ["--fold-clarifications"], ["--narrow-notes"],
    ["--seeds", "2"],
], ids=lambda flag: flag[0])
def test_removed_and_moved_flags_are_refused(flag, tmp_path):
    result = _train(*flag, "--data-dir", str(tmp_path))
    assert result.exit_code == 2 and "No such option" in result.output
    assert not (tmp_path / "clarify.duckdb").exists()


@pytest.fixture
def fake_training(monkeypatch):
    """train_with_rounds' stand-in: records what `clarify train` asked for and registers nothing."""
    from learner import rounds
    from learner.jobs import TrainOutcome

    calls = []

    def run(settings, store, **training):
        calls.append(training)
        return TrainOutcome("run-1", "swift-1", Path("adapters/swift-1"), {})

    monkeypatch.setattr(rounds, "train_with_rounds", run)
    return calls


def test_set_values_reach_the_training_config_with_each_fields_type(fake_training, tmp_path):
    from learner.train_adapter import TrainConfig

    result = _train("--set", "epochs=3", "--set", "learning_rate=2e-4", "--set", "notes_views=1", "--set", "bf16=no",
                    "--set", "target_modules=q_proj, v_proj", "--max-steps", "2", "--data-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    (call,) = fake_training
    assert call["overrides"] == {"epochs": 3.0, "learning_rate": 2e-4, "notes_views": 1, "bf16": False,
                                 "target_modules": ["q_proj", "v_proj"], "max_steps": 2}
    cfg = TrainConfig(method=call["method"], **call["overrides"])
    cfg.check_values()
    assert (type(cfg.epochs), type(cfg.notes_views), cfg.lora_r) == (float, int, TrainConfig().lora_r)


@pytest.mark.parametrize("pair, message", [
    ("epoch=3", "--set epoch=3: unknown TrainConfig field 'epoch'; fields: .*epochs"),
    ("distractors=1", "unknown TrainConfig field 'distractors'"),
    ("epochs=three", "--set epochs=three: epochs takes a number, not 'three'"),
    ("epochs=nan", "epochs must be a finite number, not nan"),
    ("notes_views=0", "--set notes_views=0: notes_views must be 1 or more"),
    ("bf16=maybe", "bf16 takes true or false, not 'maybe'"),
    ("target_modules=lm_head", "target_modules must be one or more of q_proj"),
    ("epochs", "--set epochs: expected FIELD=VALUE"),
    ("seed=1", "seed comes from the command's own options; use CLARIFY_SEED"),
    ("init_adapter=/tmp", r"use --from-adapter ID \(a registered adapter\)"),
    ("max_steps=5", "use --max-steps"),
])
def test_a_bad_set_is_refused_with_a_clear_error_before_any_work(fake_training, tmp_path, pair, message):
    import re

    result = _train("--set", pair, "--data-dir", str(tmp_path))
    assert result.exit_code == 2 and re.search(message, " ".join(result.output.split())), result.output
    assert fake_training == [] and not (tmp_path / "clarify.duckdb").exists()


def test_the_gate_opens_its_engine_as_every_command_does(settings, store, capsys):
    """An engine that cannot start ends `clarify train --gate` with the one line and exit code of
    clarify.cli_options.open_engine, before any evaluation."""
    import socket

    import typer

    from learner.commands import _gate

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(typer.Exit) as exit_:
        _gate(settings.with_overrides(engine="vllm", vllm_url=url), store, "some-adapter")
    assert exit_.value.exit_code == 2
    assert capsys.readouterr().err.strip().startswith(f"Error: could not start the vllm engine: Could not reach "
                                                      f"the vLLM server at {url}")
