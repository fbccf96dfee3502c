"""Items files: the fixed JSON Lines contract, and clear errors with line numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.items import DEV_ITEMS, TRAIN_ITEMS, ItemError, file_sha256, load_items, parse_items

FIXTURE = Path(__file__).parent / "fixtures" / "items.jsonl"
GOOD = {"id": "a", "context": "notes", "question": "q?",
        "interpretations": [{"clarification": "c1", "answer": "A1", "aliases": ["a-one"]},
                            {"clarification": "c2", "answer": "A2", "aliases": []}]}


def line(**changes) -> str:
    obj = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        if value is KeyError:
            obj.pop(key)
        else:
            obj[key] = value
    return json.dumps(obj)


def interp(**changes) -> list:
    entry = {"clarification": "c", "answer": "A"}
    entry.update({k: v for k, v in changes.items() if v is not KeyError})
    for k, v in changes.items():
        if v is KeyError:
            entry.pop(k)
    return [entry]


def test_fixture_and_ambiguity():
    items = load_items(FIXTURE)
    assert [i.id for i in items][:2] == ["georgia-capital", "cafe-espresso"]
    assert items[0].ambiguous and not items[2].ambiguous
    assert items[0].interpretations[0].answers == ("Tbilisi",)
    assert items[1].interpretations[1].answers == ("$4", "4 dollars")
    assert load_items(FIXTURE, limit=2) == items[:2]


def test_blank_lines_skipped_and_aliases_optional():
    obj = json.loads(line())
    obj["interpretations"][1].pop("aliases")
    items = parse_items(["", line(), "   ", json.dumps(obj | {"id": "b"})])
    assert [i.id for i in items] == ["a", "b"] and items[1].interpretations[1].aliases == ()


@pytest.mark.parametrize("bad,reason", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    (line(id=KeyError), "missing field 'id'"),
    (line(id=7), "field 'id' must be a string"),
    (line(id="  "), "field 'id' is empty"),
    (line(context=""), "field 'context' is empty"),
    (line(question=None), "field 'question' must be a string"),
    (line(interpretations=KeyError), "missing field 'interpretations'"),
    (line(interpretations={}), "'interpretations' must be a list"),
    (line(interpretations=[]), "'interpretations' is empty"),
    (line(interpretations=["x"]), "interpretation 1: must be a JSON object"),
    (line(interpretations=interp(answer="")), "interpretation 1: field 'answer' is empty"),
    (line(interpretations=interp(clarification=KeyError)), "missing field 'clarification'"),
    (line(interpretations=interp(aliases="x")), "'aliases' must be a list"),
    (line(interpretations=interp(aliases=[3])), "every alias must be a string"),
    (line(interpretations=interp(aliases=[""])), "an alias is empty"),
    (line(interpretations=interp(answer="?!")), "no letters or digits"),
    (line(interpretations=interp() + [{"clarification": "d", "answer": "a."}]), "also an answer of interpretation 1"),
])
def test_invalid_items_name_line_and_reason(tmp_path, bad, reason):
    path = tmp_path / "items.jsonl"
    path.write_text(line(id="ok") + "\n\n" + bad + "\n")
    with pytest.raises(ItemError) as exc:
        load_items(path)
    message = str(exc.value)
    assert f"{path}:3" in message and reason in message and "\n" not in message


def test_duplicate_id(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join([line(), line(id="b"), line()]))
    with pytest.raises(ItemError, match=r":3: duplicate id 'a' \(first used on line 1\)"):
        load_items(path)


def test_missing_empty_and_non_utf8_files(tmp_path):
    with pytest.raises(ItemError, match="no such items file"):
        load_items(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ItemError, match="no items"):
        load_items(tmp_path / "empty.jsonl")
    (tmp_path / "bin.jsonl").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ItemError, match="not UTF-8"):
        load_items(tmp_path / "bin.jsonl")


def test_sha256_is_of_bytes(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"abc")
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.parametrize("path", [TRAIN_ITEMS, DEV_ITEMS], ids=["train", "dev"])
def test_bundled_splits_load(path):
    if not path.exists():
        pytest.skip(f"{path} not written yet")
    items = load_items(path)
    assert len(items) >= 20
    assert any(i.ambiguous for i in items) and any(not i.ambiguous for i in items)
