"""The `clarify` command: registers each package's commands on one typer app."""

from __future__ import annotations

import os

import typer

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

app = typer.Typer(help="clarify: a chat agent that asks clarifying questions and learns from ratings.",
                  no_args_is_help=True, pretty_exceptions_enable=False)


@app.callback()
def main() -> None:
    """Chat (serve), measure (simulate, eval), learn (train, adapters), export the rated data (export)."""


def _register() -> None:
    from clarify import model_commands

    app.command("model")(model_commands.model)

    for module, names in (
        ("ui.commands", ("serve",)),
        ("agent.commands", ("simulate", "eval")),
        ("learner.commands", ("train", "export")),
    ):
        try:
            mod = __import__(module, fromlist=list(names))
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        for name in names:
            app.command(name)(getattr(mod, name + "_command"))
    try:
        from learner.commands import adapters_app
    except ModuleNotFoundError:
        pass
    else:
        app.add_typer(adapters_app, name="adapters")


_register()

if __name__ == "__main__":
    app()
