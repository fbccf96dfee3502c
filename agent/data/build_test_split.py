#!/usr/bin/env python3
"""Build the frozen test split ``agent/data/test.jsonl`` (reporting only; see docs/TEST_SPLIT.md).

Its own generator, independent of ``build_benchmark.py`` (which makes train and dev): its own
domains (pharmacy, parking, software releases, vet records, library loans, plant care, household
bills, school), its own fact tables and wording, and note styles the other splits rarely use
(unrelated facts mixed in, facts joined by semicolons or commas or packed into one list
sentence, three-way ambiguity, entities named indirectly, lowercase and typos in questions).
The fact tables are plain data in ``test_split_families_1.py`` and ``test_split_families_2.py``
(shapes, fillers and word lists: ``test_split_templates.py``; value aliases and order:
``test_split_values.py``); this file turns them into notes, questions and items.
The hand-written items of ``test_handwritten.jsonl`` are merged in, and the whole file is
shuffled with a fixed seed so ``--limit`` takes a mix.  Deterministic: the same inputs give the
same bytes.  Run::

    .venv/bin/python agent/data/build_test_split.py          # (re)write agent/data/test.jsonl

Every item is checked with the product's own loader (``agent.items``) and grader matching
(``agent.grader.mentions``: every answer occurs in its notes) before anything is written.
"""

from __future__ import annotations

import json
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from agent.data.test_split_families_1 import FAMILIES as FAMILIES_1  # noqa: E402
from agent.data.test_split_families_2 import FAMILIES as FAMILIES_2  # noqa: E402
from agent.data.test_split_templates import GENERAL_FILLERS, Attr, Entity, Family  # noqa: E402
from agent.data.test_split_values import sort_key, value_of  # noqa: E402
from agent.grader import mentions  # noqa: E402
from agent.items import parse_items  # noqa: E402

SEED = 7061
ID_PREFIX = "t-"
OUT = HERE / "test.jsonl"
HANDWRITTEN = HERE / "test_handwritten.jsonl"
MAX_SENTENCES = 6
MAX_CONTEXT = 560

FAMILIES: list[Family] = FAMILIES_1 + FAMILIES_2  # in this order: the generator's draws follow it
DOMAINS = sorted({f.domain for f in FAMILIES})

# ------------------------------------------------------------------------- sentences


@dataclass
class Sentence:
    text: str           # with its full stop
    lower_ok: bool      # its first letter may be lowercased after a semicolon or comma
    about: str = ""     # "fact:<attr>" / "list:<attr>" (all entities in one sentence) / "filler"
    joined: bool = False  # already two facts in one sentence


def cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def filler(text: str) -> Sentence:
    return Sentence(text.lstrip("!"), not text.startswith("!"), "filler")


def fact(rng: random.Random, ent: Entity, attr: Attr) -> Sentence:
    template = rng.choice(attr.facts)
    value, _ = value_of(ent, attr)
    text = template.format(E=cap(ent.mention), e=ent.mention, v=value)
    # After a semicolon "the lisinopril ..." or "chess club ..." may go lowercase; "Biscuit ..." may not.
    lower_ok = not template.startswith("{E}") or ent.mention[:1].islower()
    return Sentence(cap(text), lower_ok, f"fact:{attr.key}")


def list_sentence(ents: list[Entity], attr: Attr) -> Sentence:
    parts = [attr.pair.format(s=e.short, v=value_of(e, attr)[0]) for e in ents]
    body = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    # joined=True: a list sentence is never glued to another one
    return Sentence(f"{attr.intro}: {body}.", True, f"list:{attr.key}", joined=True)


def join(a: Sentence, b: Sentence, glue: str) -> Sentence:
    second = b.text
    if b.lower_ok:
        second = second[:1].lower() + second[1:]
    about = a.about if a.about.startswith("fact:") else b.about
    return Sentence(a.text[:-1] + glue + second, a.lower_ok, about, joined=True)


def facts_block(rng: random.Random, ents: list[Entity], attr: Attr, style: str) -> list[Sentence]:
    """The facts of `attr` for `ents`: one sentence each, one list sentence, or joined by ';' / ','."""
    if style == "list" and len(ents) >= 2:
        return [list_sentence(ents, attr)]
    sents = [fact(rng, e, attr) for e in ents]
    if style == "semicolon" and len(sents) >= 2:
        out = sents[0]
        for s in sents[1:]:
            out = join(out, s, "; ")
        return [out]
    if style == "comma" and len(sents) >= 2:
        out = sents[0]
        for s in sents[1:-1]:
            out = join(out, s, ", ")
        return [join(out, sents[-1], ", and ")]
    return sents


# ------------------------------------------------------------------------- questions

TYPO_SAFE = re.compile(r"^[a-z]{4,}$")


def typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(["swap", "drop", "double"])
    if kind == "swap" and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    return word[:i] + word[i + 1:]


def render_question(rng: random.Random, template: str, ref: str, style: str) -> str:
    """A question from `template` with {ref}; `style`: plain | lower | typo | lower-typo.

    Typos only touch the template's own words (never the entity the user names)."""
    assert not template.startswith("{"), template
    if style in ("typo", "lower-typo"):
        words = template.split(" ")
        slots = [i for i, w in enumerate(words) if TYPO_SAFE.match(w.lower()) and "{" not in w]
        if slots:
            i = rng.choice(slots)
            words[i] = typo(words[i], rng)
        template = " ".join(words)
    q = template.replace("{ref}", ref)
    opener = rng.choice(["", "", "", "", "Hi, ", "Quick question: ", "Hey, "])
    if opener:
        q = opener + q[:1].lower() + q[1:]
    if style in ("lower", "lower-typo"):
        q = q.lower()
        if rng.random() < 0.6:
            q = q.rstrip("?")
    return q


QUESTION_STYLES = ["plain"] * 11 + ["lower"] * 4 + ["typo"] * 3 + ["lower-typo"] * 2


# ------------------------------------------------------------------------- items


def notes(rng: random.Random, fam: Family, core: list[list[Sentence]], extra_facts: list[Sentence],
          n_fillers: int, header: bool) -> str:
    """Core fact blocks (kept together in order within a block) + related facts + fillers, mixed."""
    pool = [filler(t) for t in fam.fillers] + [filler(t) for t in GENERAL_FILLERS]
    rng.shuffle(pool)
    units: list[Sentence] = [s for block in core for s in block]
    budget = MAX_SENTENCES - len(units)
    extra = extra_facts[:max(0, budget)]
    units += extra
    budget = MAX_SENTENCES - len(units)
    units += pool[:max(0, min(n_fillers, budget))]
    rng.shuffle(units)
    # Sometimes an unrelated fact shares a sentence with a fact (semicolon or comma).
    free = [i for i in range(len(units) - 1) if not units[i].joined and not units[i + 1].joined]
    if free and rng.random() < 0.35:
        i = rng.choice(free)
        glue = rng.choice(["; ", ", and "])
        units[i:i + 2] = [join(units[i], units[i + 1], glue)]
    # A header introduces a plain fact (not an unrelated remark, not "Closing times: ...").
    first = next((i for i, s in enumerate(units) if s.about.startswith("fact:")), None)
    header = header and bool(fam.intro) and first is not None
    if header:
        units.insert(0, units.pop(first))
    text = " ".join(s.text for s in units)
    if header:
        text = rng.choice(fam.intro) + " " + text
    return text


def interp(rng: random.Random, ent: Entity, attr: Attr) -> dict:
    value, aliases = value_of(ent, attr)
    return {"clarification": rng.choice(ent.clar), "answer": value, "aliases": aliases}


def other_facts(rng: random.Random, fam: Family, ents: list[Entity], skip: set[str]) -> list[Sentence]:
    """Facts about the same entities on other attributes: related, but they answer nothing asked."""
    out = [fact(rng, e, a) for a in fam.attrs if a.key not in skip for e in ents]
    rng.shuffle(out)
    return out


def pick_style(rng: random.Random, n: int) -> str:
    if n == 1:
        return "sentences"
    return rng.choice(["sentences", "sentences", "list", "semicolon", "comma"])


def make_item(rng: random.Random, fam: Family, item_id: str, core: list[list[Sentence]], question: str,
              interps: list[dict], related: list[Sentence]) -> dict:
    n_related = rng.choice([0, 0, 1, 1, 2])
    n_fill = rng.choice([0, 1, 1, 2, 2, 3])
    for _ in range(8):
        ctx = notes(rng, fam, core, related[:n_related], n_fill, header=rng.random() < 0.3)
        if len(ctx) <= MAX_CONTEXT:
            break
        n_fill, n_related = max(0, n_fill - 1), max(0, n_related - 1)
    else:
        raise ValueError(f"{item_id}: notes too long")
    return {"id": item_id, "domain": fam.domain, "source": "generated", "context": ctx, "question": question,
            "interpretations": interps}


def family_items(rng: random.Random, fam: Family) -> list[dict]:
    items: list[dict] = []
    pre = f"{ID_PREFIX}{fam.domain}-{fam.key}"
    ents = fam.entities
    n = len(ents)
    rotation = 0
    qstyle = lambda: rng.choice(QUESTION_STYLES)  # noqa: E731

    def ambiguous(attr: Attr, chosen: list[Entity], suffix: str) -> dict:
        style = pick_style(rng, len(chosen))
        core = [facts_block(rng, chosen, attr, style)]
        q = render_question(rng, rng.choice(attr.questions), rng.choice(fam.generic), qstyle())
        interps = [interp(rng, e, attr) for e in chosen]
        rng.shuffle(interps)
        return make_item(rng, fam, f"{pre}-{attr.key}-{suffix}", core, q, interps,
                         other_facts(rng, fam, chosen, {attr.key}))

    def named(attr: Attr, target: Entity, suffix: str) -> dict:
        style = pick_style(rng, n)
        core = [facts_block(rng, ents, attr, style)]
        q = render_question(rng, rng.choice(attr.questions), rng.choice(target.refs), qstyle())
        return make_item(rng, fam, f"{pre}-{attr.key}-{suffix}-{target.key}", core, q,
                         [interp(rng, target, attr)], other_facts(rng, fam, ents, {attr.key}))

    for attr in fam.attrs:
        if not attr.target:
            continue
        values = [value_of(e, attr)[0] for e in ents]
        assert len(set(values)) == n, f"{fam.key}.{attr.key}: values must differ"
        if attr.ask:
            items.append(ambiguous(attr, ents, "amb"))
            if n == 3:   # the same question on two of the three: a two-way reading of the same table
                pair = sorted(rng.sample(ents, 2), key=ents.index)
                items.append(ambiguous(attr, pair, "amb-" + "-".join(e.key for e in pair)))
            else:
                items.append(ambiguous(attr, ents, "amb2"))
        target = ents[rotation % n]   # the clear counterpart: the same notes, one entity named
        rotation += 1
        items.append(named(attr, target, "clear"))

    # Entities named indirectly: the one with the lowest/highest value of an attribute the notes list.
    indirect: list[tuple[Entity, str, Attr]] = []
    for cmp_attr in fam.attrs:
        for side, phrases in (("lo", cmp_attr.lo), ("hi", cmp_attr.hi)):
            if not phrases:
                continue
            keys = [sort_key(value_of(e, cmp_attr)[0], cmp_attr.kind) for e in ents]
            assert len(set(keys)) == n, f"{fam.key}.{cmp_attr.key}: ties make 'the cheaper one' ambiguous"
            best = (min if side == "lo" else max)(range(n), key=lambda i: keys[i])
            indirect.append((ents[best], phrases[0 if n == 2 else 1], cmp_attr))
    for ent_key, ref, attr_key in fam.indirect:
        indirect.append((next(e for e in ents if e.key == ent_key), ref,
                         next(a for a in fam.attrs if a.key == attr_key)))
    rng.shuffle(indirect)
    for target, ref, cmp_attr in indirect[:3]:
        asked = [a for a in fam.attrs if a.key != cmp_attr.key and a.target]
        if not asked:
            continue
        attr = rng.choice(asked)
        core = [facts_block(rng, ents, cmp_attr, pick_style(rng, n)), facts_block(rng, ents, attr, pick_style(rng, n))]
        q = render_question(rng, rng.choice(attr.questions), ref, rng.choice(["plain", "plain", "lower"]))
        items.append(make_item(rng, fam, f"{pre}-{attr.key}-ind-{target.key}-by-{cmp_attr.key}", core, q,
                               [interp(rng, target, attr)], []))

    # Notes about one entity only: the generic question has a single answer.
    asked = [a for a in fam.attrs if a.ask]
    attr = rng.choice(asked)
    target = rng.choice(ents)
    related = [fact(rng, target, a) for a in fam.attrs if a.key != attr.key]
    rng.shuffle(related)
    q = render_question(rng, rng.choice(attr.questions), rng.choice(fam.generic), qstyle())
    items.append(make_item(rng, fam, f"{pre}-{attr.key}-solo-{target.key}", [[fact(rng, target, attr)]], q,
                           [interp(rng, target, attr)], related))
    return items


# ------------------------------------------------------------------------- checks, output


def check(items: list[dict]) -> None:
    """The product's loader accepts every line; answers occur in the notes; ids and pairs unique."""
    lines = [json.dumps(it, ensure_ascii=False) for it in items]
    parse_items(lines, source="test.jsonl")
    pairs = set()
    for it in items:
        if not it["id"].startswith(ID_PREFIX):
            raise ValueError(f"{it['id']}: test ids start with {ID_PREFIX!r}")
        pair = (it["context"], it["question"])
        if pair in pairs:
            raise ValueError(f"{it['id']}: the same notes and question twice")
        pairs.add(pair)
        for ip in it["interpretations"]:
            if not mentions(it["context"], ip["answer"]):
                raise ValueError(f"{it['id']}: answer {ip['answer']!r} is not in the notes")
            others = [o for o in it["interpretations"] if o is not ip]
            for alias in ip["aliases"]:
                for o in others:
                    for a in [o["answer"], *o["aliases"]]:
                        if mentions(a, alias) or mentions(alias, a):
                            raise ValueError(f"{it['id']}: alias {alias!r} overlaps {a!r}")


def generated_items() -> list[dict]:
    rng = random.Random(SEED)
    items: list[dict] = []
    for fam in FAMILIES:
        items += family_items(rng, fam)
    return items


def handwritten_items(path: Path = HANDWRITTEN) -> list[dict]:
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        obj = json.loads(line)
        obj.setdefault("source", "handwritten")
        if obj["source"] != "handwritten":
            raise ValueError(f"{path}:{number}: source must be 'handwritten'")
        items.append({"id": obj["id"], "domain": obj["domain"], "source": "handwritten",
                      "context": obj["context"], "question": obj["question"],
                      "interpretations": [{"clarification": ip["clarification"], "answer": ip["answer"],
                                           "aliases": list(ip.get("aliases", []))}
                                          for ip in obj["interpretations"]]})
    return items


def build_items() -> list[dict]:
    items = generated_items() + handwritten_items()
    random.Random(SEED + 1).shuffle(items)
    check(items)
    return items


def write_test_split(path: str | Path = OUT) -> list[dict]:
    """Build the split and write it to `path` (UTF-8 JSON Lines, one item a line); returns the items."""
    items = build_items()
    text = "".join(json.dumps(it, ensure_ascii=False) + "\n" for it in items)
    Path(path).write_bytes(text.encode("utf-8"))
    return items


def main() -> None:
    items = write_test_split(OUT)
    amb = sum(len(it["interpretations"]) >= 2 for it in items)
    three = sum(len(it["interpretations"]) >= 3 for it in items)
    hand = sum(it["source"] == "handwritten" for it in items)
    print(f"{OUT}: {len(items)} items, {amb} ambiguous ({three} three-way), {hand} hand-written, "
          f"generated domains: {', '.join(DOMAINS)}")


if __name__ == "__main__":
    main()
