"""Generated references: docs/CLI.md from the typer app, docs/SETTINGS.md from the Settings fields.

    python -m clarify.reference_docs            # print which files are stale (exit 1 if any)
    python -m clarify.reference_docs --write    # write them

tests/test_reference_docs.py fails when a file differs from what this module renders, so the CLI's help
texts and the Settings' descriptions are the one place to edit; the markdown follows. The output depends on
neither the terminal (no width, no colours) nor the environment (defaults are read from the code).
"""

from __future__ import annotations

import argparse
import difflib
import enum
import sys
import typing
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CLI_DOC = REPO / "docs" / "CLI.md"
SETTINGS_DOC = REPO / "docs" / "SETTINGS.md"
GENERATOR = "`.venv/bin/python -m clarify.reference_docs --write`"
# typer's shell-completion options are the same for every typer program; they are not clarify's.
SKIPPED_OPTIONS = {"install_completion", "show_completion"}


def one_line(text: str | None) -> str:
    """A table cell: whitespace collapsed, pipes escaped."""
    return " ".join((text or "").split()).replace("|", "\\|")


def paragraphs(text: str | None) -> str:
    """A help text as markdown paragraphs: each paragraph's lines joined."""
    blocks = [" ".join(block.split()) for block in (text or "").strip().split("\n\n")]
    return "\n\n".join(block for block in blocks if block)


def show_value(value: Any) -> str:
    """A default as it is written on the command line or in the environment, in backticks; '-' for none."""
    if value is None or value == () or value == []:
        return "-"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        value = "true" if value else "false"
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    return f"`{value}`"


# -- CLI ------------------------------------------------------------------------------------------------------------


def is_group(command) -> bool:
    return hasattr(command, "commands")


def param_type(param, ctx) -> str:
    """The type the help shows (typer's `<int>` without the brackets; click's type name as a fallback)."""
    try:
        label = param.display_type(ctx)
    except (AttributeError, TypeError):
        label = getattr(getattr(param, "type", None), "name", "") or ""
    label = str(label).strip().strip("<>").removesuffix(" range")
    if (getattr(param, "multiple", False) or param.nargs != 1) and label.startswith("list[") and label.endswith("]"):
        label = label[len("list["):-1]  # a repeatable option or a variadic argument: each value's type
    return "flag" if getattr(param, "is_flag", False) and label in ("bool", "boolean") else label


def option_names(param) -> str:
    return " / ".join(f"`{o}`" for o in [*param.opts, *getattr(param, "secondary_opts", [])])


def render_params(command, ctx) -> list[str]:
    params = [p for p in command.params if not getattr(p, "hidden", False) and p.name not in SKIPPED_OPTIONS]
    arguments = [p for p in params if p.param_type_name == "argument"]
    options = [p for p in params if p.param_type_name == "option"]
    lines: list[str] = []
    if arguments:
        lines += ["", "| argument | type | required | description |", "|---|---|---|---|"]
        for p in arguments:
            name = (p.metavar or p.name).upper()
            many = " (one or more)" if p.nargs != 1 else ""
            lines.append(f"| `{name}` | {param_type(p, ctx)}{many} | {'yes' if p.required else 'no'} | "
                         f"{one_line(getattr(p, 'help', ''))} |")
    if options:
        lines += ["", "| option | type | default | description |", "|---|---|---|---|"]
        for p in options:
            kind = param_type(p, ctx)
            if p.multiple:
                kind += ", repeatable"
            if p.metavar and not p.is_flag:
                kind = f"`{p.metavar}` ({kind})"
            default = "required" if p.required else show_value(p.default)
            lines.append(f"| {option_names(p)} | {kind} | {default} | {one_line(p.help)} |")
    return lines


def usage(command, path: str) -> str:
    pieces = [path]
    if any(p.param_type_name == "option" and p.name not in SKIPPED_OPTIONS for p in command.params):
        pieces.append("[OPTIONS]")
    for p in command.params:
        if p.param_type_name == "argument":
            name = (p.metavar or p.name).upper() + ("..." if p.nargs != 1 else "")
            pieces.append(name if p.required else f"[{name}]")
    if is_group(command):
        pieces.append("COMMAND [ARGS]...")
    return " ".join(pieces)


def render_command(command, path: str, ctx, lines: list[str]) -> None:
    level = "#" * min(path.count(" ") + 2, 4)
    lines += ["", f"{level} `{path}`", "", f"Usage: `{usage(command, path)}`"]
    if command.help:
        lines += ["", paragraphs(command.help)]
    lines += render_params(command, ctx)
    if is_group(command):
        lines += ["", "| command | what it does |", "|---|---|"]
        for name in sorted(command.commands):
            sub = command.commands[name]
            if not getattr(sub, "hidden", False):
                summary = paragraphs(sub.help).split("\n\n")[0] if sub.help else ""
                lines.append(f"| [`{path} {name}`](#{anchor(path + ' ' + name)}) | {one_line(summary)} |")
        for name in sorted(command.commands):
            sub = command.commands[name]
            if not getattr(sub, "hidden", False):
                render_command(sub, f"{path} {name}", ctx, lines)


def anchor(path: str) -> str:
    """GitHub's anchor of a heading `path` (in backticks): lower case, spaces to dashes."""
    return path.lower().replace(" ", "-")


def render_cli() -> str:
    import typer.main

    from clarify.cli import app

    root = typer.main.get_command(app)
    ctx = root.make_context("clarify", [], resilient_parsing=True) if hasattr(root, "make_context") else None
    lines = [
        "# CLI reference",
        "",
        f"Generated from the typer app (`clarify/cli.py` registers each package's commands) by {GENERATOR}; "
        "`tests/test_reference_docs.py` fails when this file is stale. Edit the commands' help texts, not this "
        "file. Every command also answers `--help`.",
        "",
        "Flags override `CLARIFY_*` environment variables, which override the defaults "
        "([SETTINGS.md](SETTINGS.md)); a default shown as `-` means the setting's value is used.",
    ]
    render_command(root, "clarify", ctx, lines)
    return "\n".join(lines) + "\n"


# -- Settings -------------------------------------------------------------------------------------------------------


def type_name(annotation: Any) -> str:
    """A field's type in words: `path`, `int`, one of literal values, `... or none`."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        parts = [type_name(a) for a in args if a is not type(None)]
        return " or ".join(parts) + (" or none" if type(None) in args else "")
    if annotation is Path or (isinstance(annotation, type) and issubclass(annotation, Path)):
        return "path"
    if isinstance(annotation, type):
        return {"str": "text"}.get(annotation.__name__, annotation.__name__)
    return str(annotation)


def bounds(field) -> str:
    """The field's numeric constraints (ge, gt, le, lt) as `>= 1, <= 5`."""
    signs = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    found = []
    for item in field.metadata:
        for attr, sign in signs.items():
            value = getattr(item, attr, None)
            if value is not None:
                found.append(f"{sign} {value}")
    return ", ".join(found)


def env_name(settings_cls, name: str) -> str:
    prefix = settings_cls.model_config.get("env_prefix", "")
    return f"{prefix}{name}".upper()


def render_settings() -> str:
    from clarify.settings import Settings

    lines = [
        "# Settings reference",
        "",
        f"Every field of `clarify.settings.Settings`, generated by {GENERATOR}; `tests/test_reference_docs.py` "
        "fails when this file is stale. Edit the fields' descriptions in `clarify/settings.py`, not this file.",
        "",
        "Precedence: command-line flags ([CLI.md](CLI.md)) > environment variables > these defaults. Environment "
        "variable names are the field's name with the prefix "
        f"`{Settings.model_config.get('env_prefix', '')}`, in any case. A value outside the range is refused "
        "with the field's name.",
        "",
        "| field | env var | type | default | range | description |",
        "|---|---|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        default = "required" if field.is_required() else show_value(field.get_default(call_default_factory=True))
        lines.append(f"| `{name}` | `{env_name(Settings, name)}` | {type_name(field.annotation)} | {default} | "
                     f"{bounds(field)} | {one_line(field.description)} |")
    return "\n".join(lines) + "\n"


# -- check / write --------------------------------------------------------------------------------------------------


def rendered() -> dict[Path, str]:
    return {CLI_DOC: render_cli(), SETTINGS_DOC: render_settings()}


def stale(docs: dict[Path, str] | None = None) -> dict[Path, str]:
    """The files whose content differs from what would be generated, with a unified diff each."""
    out = {}
    for path, text in (docs or rendered()).items():
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            rel = path.relative_to(REPO)
            out[path] = "".join(difflib.unified_diff(current.splitlines(True), text.splitlines(True),
                                                     f"{rel} (on disk)", f"{rel} (generated)"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write the stale files (else print the diffs, exit 1)")
    args = parser.parse_args(argv)
    docs = rendered()
    changes = stale(docs)
    if args.write:
        for path in changes:
            path.write_text(docs[path], encoding="utf-8")
            print(f"wrote {path.relative_to(REPO)}")
        return 0
    for diff in changes.values():
        sys.stdout.write(diff)
    if changes:
        print(f"stale: {', '.join(str(p.relative_to(REPO)) for p in changes)} (run {GENERATOR.strip('`')})")
        return 1
    print("docs/CLI.md and docs/SETTINGS.md are up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
