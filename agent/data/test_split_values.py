"""The values in the test split's fact tables (agent/data/build_test_split.py): each value's aliases, the
other spellings a grader accepts (given in the table, else made from the value's kind), and the order of
values ("the cheapest garage", "the book that's due first")."""

from __future__ import annotations

import re

from agent.data.test_split_templates import DAYS, MONTHS, NUM_WORDS, Attr, Entity


def value_of(entity: Entity, attr: Attr) -> tuple[str, list[str]]:
    """The entity's value of `attr` and its aliases (given, else made from the value's kind)."""
    raw = entity.vals[attr.key]
    value, aliases = (raw[0], list(raw[1])) if isinstance(raw, tuple) else (raw, auto_aliases(raw, attr.kind))
    seen = {value.casefold()}
    out = []
    for alias in aliases:
        if alias.casefold() not in seen:
            seen.add(alias.casefold())
            out.append(alias)
    return value, out


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def auto_aliases(v: str, kind: str) -> list[str]:
    if kind == "money":
        amount = v.lstrip("$")
        out = [f"{amount} dollars"]
        if "." not in amount:
            out.append(f"${amount}.00")
        return out
    if kind == "time":
        if v == "midnight":
            return ["12 am", "12:00 am"]
        m = re.fullmatch(r"(\d+)(?::(\d+))? (am|pm)", v)
        hour, minute, half = int(m[1]), m[2] or "00", m[3]
        out = [f"{hour}:{minute} {half[0]}.m."]            # "11:00 p.m.", "9:30 p.m."
        if m[2] is None:
            out[:0] = [f"{hour}:{minute} {half}", f"{hour} {half[0]}.m."]   # "11:00 pm", "11 p.m."
        if half == "pm" and hour != 12:                     # "23:00"
            out.append(f"{hour + 12}:{minute}")
        return out
    if kind == "date":
        month, day = v.split()
        return [f"{month[:3]} {day}", f"{day} {month}", f"{month} {ordinal(int(day))}"]
    if kind == "month":
        month, year = v.split()
        return [f"{month[:3]} {year}"]
    if kind == "day":
        return [v + "s"]
    if kind == "qty":
        number, unit = v.split(" ", 1)
        units = {"mg": "milligrams", "kg": "kilograms", "m": "meters", "cm": "centimeters", "ml": "milliliters",
                 "MB": "megabytes", "GB": "gigabytes"}
        if unit in units:   # "45cm", "45 centimeters"
            return [f"{number}{unit}", f"{number} {units[unit]}"]
        if number.isdigit() and int(number) in NUM_WORDS:   # "two refills", "eight hours"
            return [f"{NUM_WORDS[int(number)]} {unit}"]
        return []
    return []


def sort_key(v: str, kind: str) -> float:
    if kind == "money":
        return float(v.lstrip("$").replace(",", ""))
    if kind == "time":
        if v == "midnight":
            return 24 * 60
        m = re.fullmatch(r"(\d+)(?::(\d+))? (am|pm)", v)
        return (int(m[1]) % 12 + (12 if m[3] == "pm" else 0)) * 60 + int(m[2] or 0)
    if kind == "date":
        month, day = v.split()
        return MONTHS.index(month) * 40 + int(day)
    if kind == "month":
        month, year = v.split()
        return int(year) * 12 + MONTHS.index(month)
    if kind == "day":
        return DAYS.index(v)
    if kind == "qty":
        return float(v.split()[0])
    raise ValueError(f"no order for {kind} values")
