"""The frozen test split (agent/data/test.jsonl): valid, balanced, new domains, disjoint from train/dev, pinned."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

from agent.grader import mentions
from agent.items import DATA_DIR, DEV_ITEMS, TRAIN_ITEMS, file_sha256, load_items

REPO = Path(__file__).resolve().parents[2]
TEST_ITEMS = DATA_DIR / "test.jsonl"
HANDWRITTEN = DATA_DIR / "test_handwritten.jsonl"
BUILDER = DATA_DIR / "build_test_split.py"
DOC = REPO / "docs" / "TEST_SPLIT.md"


def raw_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def items():
    return load_items(TEST_ITEMS)   # the loader `clarify eval --items` uses: every line is validated


@pytest.fixture(scope="module")
def raw():
    return raw_lines(TEST_ITEMS)


def test_size_and_balance(items):
    assert len(items) >= 240
    share = sum(it.ambiguous for it in items) / len(items)
    assert 0.40 <= share <= 0.60, share
    three_way = [it for it in items if len(it.interpretations) >= 3]
    assert len(three_way) >= 10
    assert all(it.id.startswith("t-") for it in items)


def test_domains_new_to_train(raw):
    train_domains = {it["id"].split("-")[0] for it in raw_lines(TRAIN_ITEMS)}
    generated = {it["domain"] for it in raw if it["source"] == "generated"}
    assert len(generated - train_domains) >= 4, (generated, train_domains)
    for domain in generated - train_domains:   # each new domain has both kinds of item
        kinds = {len(it["interpretations"]) >= 2 for it in raw if it["domain"] == domain}
        assert kinds == {True, False}, domain


def test_handwritten_items_are_in_the_split(raw):
    hand = raw_lines(HANDWRITTEN)
    assert len(hand) >= 40
    by_id = {it["id"]: it for it in raw}
    for it in hand:
        merged = by_id[it["id"]]
        assert merged["source"] == "handwritten"
        assert (merged["context"], merged["question"]) == (it["context"], it["question"])
        assert [ip["answer"] for ip in merged["interpretations"]] == [ip["answer"] for ip in it["interpretations"]]
    assert sum(it["source"] == "handwritten" for it in raw) == len(hand)
    ambiguous = sum(len(it["interpretations"]) >= 2 for it in hand)
    assert 0.4 <= ambiguous / len(hand) <= 0.7
    assert any(len(it["interpretations"]) >= 3 for it in hand)


def test_every_answer_is_in_its_notes(items):
    for it in items:
        for interp in it.interpretations:
            assert any(mentions(it.context, a) for a in interp.answers), (it.id, interp.answer)


def test_disjoint_from_train_and_dev(items):
    others = load_items(TRAIN_ITEMS) + load_items(DEV_ITEMS)
    assert not {it.id for it in items} & {it.id for it in others}
    assert not {(it.context, it.question) for it in items} & {(it.context, it.question) for it in others}
    assert not {it.context for it in items} & {it.context for it in others}


def test_file_matches_the_documented_sha256():
    match = re.search(r"sha256 of `agent/data/test\.jsonl`: `([0-9a-f]{64})`", DOC.read_text(encoding="utf-8"))
    assert match, "docs/TEST_SPLIT.md states the file's sha256"
    assert file_sha256(TEST_ITEMS) == match.group(1), "test.jsonl changed: rebuild on purpose and update the doc"


def test_builder_reproduces_the_file(tmp_path):
    spec = importlib.util.spec_from_file_location("build_test_split", BUILDER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        out = tmp_path / "test.jsonl"
        module.write_test_split(out)
    finally:
        sys.modules.pop(spec.name, None)
    assert out.read_bytes() == TEST_ITEMS.read_bytes()
