"""Benchmark items (JSON Lines): reference notes, a question, and its possible interpretations.

One item per line::

    {"id": "georgia-capital",
     "context": "Georgia is a country ...; its capital is Tbilisi. Georgia is also a US state; its capital is Atlanta.",
     "question": "What is the capital of Georgia?",
     "interpretations": [
        {"clarification": "I mean the country.", "answer": "Tbilisi", "aliases": []},
        {"clarification": "The US state.", "answer": "Atlanta", "aliases": []}]}

An item with two or more interpretations is ambiguous. A bad line is refused
with its line number and the reason (``ItemError``); nothing is half-loaded.
Unknown extra keys are ignored (room for tags or provenance).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

DATA_DIR = Path(__file__).resolve().parent / "data"
TRAIN_ITEMS = DATA_DIR / "train.jsonl"
DEV_ITEMS = DATA_DIR / "dev.jsonl"
TEST_ITEMS = DATA_DIR / "test.jsonl"   # the frozen test split: for reporting only (docs/TEST_SPLIT.md)


class ItemError(ValueError):
    """An items file cannot be used; the message names the file, the line and the reason."""


@dataclass(frozen=True)
class Interpretation:
    clarification: str
    answer: str
    aliases: tuple[str, ...] = ()

    @property
    def answers(self) -> tuple[str, ...]:
        """The answer and its aliases: any of them counts as this interpretation's answer."""
        return (self.answer, *self.aliases)


@dataclass(frozen=True)
class Item:
    id: str
    context: str
    question: str
    interpretations: tuple[Interpretation, ...]

    @property
    def ambiguous(self) -> bool:
        return len(self.interpretations) >= 2


def _text(obj: dict, key: str, where: str) -> str:
    if key not in obj:
        raise ItemError(f"{where}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, str):
        raise ItemError(f"{where}: field {key!r} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ItemError(f"{where}: field {key!r} is empty")
    return value.strip()


def parse_item(obj: object, where: str = "item") -> Item:
    """One decoded JSON object -> Item, or ItemError naming `where` and what is wrong."""
    from .grader import answer_key as normalize

    if not isinstance(obj, dict):
        raise ItemError(f"{where}: an item must be a JSON object, got {type(obj).__name__}")
    item_id = _text(obj, "id", where)
    where = f"{where} (id {item_id!r})"
    context = _text(obj, "context", where)
    question = _text(obj, "question", where)
    raw = obj.get("interpretations")
    if "interpretations" not in obj:
        raise ItemError(f"{where}: missing field 'interpretations'")
    if not isinstance(raw, list):
        raise ItemError(f"{where}: field 'interpretations' must be a list, got {type(raw).__name__}")
    if not raw:
        raise ItemError(f"{where}: 'interpretations' is empty (an item needs at least one)")
    interpretations = []
    owner: dict[str, int] = {}  # normalized answer -> interpretation index
    for i, entry in enumerate(raw):
        at = f"{where}, interpretation {i + 1}"
        if not isinstance(entry, dict):
            raise ItemError(f"{at}: must be a JSON object, got {type(entry).__name__}")
        clarification = _text(entry, "clarification", at)
        answer = _text(entry, "answer", at)
        aliases = entry.get("aliases", [])
        if aliases is None:
            aliases = []
        if not isinstance(aliases, list):
            raise ItemError(f"{at}: field 'aliases' must be a list of strings, got {type(aliases).__name__}")
        for alias in aliases:
            if not isinstance(alias, str):
                raise ItemError(f"{at}: every alias must be a string, got {type(alias).__name__}")
            if not alias.strip():
                raise ItemError(f"{at}: an alias is empty")
        interp = Interpretation(clarification, answer, tuple(a.strip() for a in aliases))
        for text in interp.answers:
            key = normalize(text)
            if not any(ch.isalnum() for ch in key):
                raise ItemError(f"{at}: answer or alias {text!r} has no letters or digits to match")
            if owner.get(key, i) != i:
                raise ItemError(
                    f"{at}: answer or alias {text!r} is also an answer of interpretation {owner[key] + 1} "
                    "(the grader could never tell them apart)"
                )
            owner[key] = i
        interpretations.append(interp)
    return Item(item_id, context, question, tuple(interpretations))


def parse_items(lines: Iterable[str], source: str = "<items>") -> list[Item]:
    """Parse JSON Lines text (blank lines skipped); raises ItemError on the first bad line."""
    items: list[Item] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise ItemError(f"{where}: not valid JSON ({exc})") from None
        item = parse_item(obj, where)
        if item.id in seen:
            raise ItemError(f"{where}: duplicate id {item.id!r} (first used on line {seen[item.id]})")
        seen[item.id] = number
        items.append(item)
    return items


def load_items(path: str | Path, limit: int | None = None) -> list[Item]:
    """Read and validate a whole items file (every line is checked even with `limit`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ItemError(f"{path}: no such items file") from None
    except IsADirectoryError:
        raise ItemError(f"{path}: is a folder, not an items file") from None
    except UnicodeDecodeError as exc:
        raise ItemError(f"{path}: not UTF-8 text ({exc.reason})") from None
    items = parse_items(text.splitlines(), source=str(path))
    if not items:
        raise ItemError(f"{path}: no items in the file")
    if limit is not None:
        if limit < 1:
            raise ItemError(f"limit must be at least 1, got {limit}")
        items = items[:limit]
    return items


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
