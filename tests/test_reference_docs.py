"""The generated references are current, and the README stays a short reference with working links."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from clarify import reference_docs

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
README_MAX_BYTES = 12 * 1024
# The README's first lines: the two commands that need no set-up (Makefile: serve, test).
TWO_COMMANDS = re.compile(r"\A# clarify\n\n```bash\nmake serve[^\n]*\nmake test[^\n]*\n```\n")
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("doc", [reference_docs.CLI_DOC, reference_docs.SETTINGS_DOC], ids=lambda p: p.name)
def test_generated_reference_is_current(doc):
    expected = reference_docs.rendered()[doc]
    assert doc.exists(), f"{doc.name} is missing: run .venv/bin/python -m clarify.reference_docs --write"
    stale = reference_docs.stale({doc: expected})
    assert not stale, f"{doc.name} is stale: run .venv/bin/python -m clarify.reference_docs --write\n{stale[doc]}"


def test_cli_reference_covers_every_command():
    import typer.main

    from clarify.cli import app

    text = reference_docs.render_cli()

    def walk(command, path):
        assert f"`{path}`" in text, path
        for option in command.params:
            if option.param_type_name == "option" and option.name not in reference_docs.SKIPPED_OPTIONS:
                assert f"`{option.opts[0]}`" in text, (path, option.name)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "clarify")
    assert "\x1b[" not in text  # no ANSI colours


def test_settings_reference_lists_every_field_with_its_env_var():
    from clarify.settings import Settings

    text = reference_docs.render_settings()
    for name in Settings.model_fields:
        assert f"| `{name}` | `CLARIFY_{name.upper()}` |" in text


def test_readme_is_short_and_starts_with_the_two_commands():
    raw = README.read_bytes()
    assert len(raw) <= README_MAX_BYTES, f"README.md is {len(raw)} bytes, the limit is {README_MAX_BYTES}"
    assert TWO_COMMANDS.match(raw.decode("utf-8")), "README.md must open with `make serve` then `make test`"


def test_readme_relative_links_point_at_files():
    text = README.read_text(encoding="utf-8")
    targets = [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t) and not t.startswith("#")]
    assert any(t.startswith("docs/") for t in targets)
    missing = [t for t in targets if not (REPO / t.split("#")[0]).exists()]
    assert not missing, f"README.md links to missing files: {missing}"
    for doc in ("docs/CLI.md", "docs/SETTINGS.md"):
        assert doc in targets, f"README.md should link {doc}"
