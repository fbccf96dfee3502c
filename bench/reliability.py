"""Reliability and security report: runs tests/reliability and writes docs/RELIABILITY.md.

Every row of the report is one test (one case of a parametrized test): its docstring says the scenario, what
was done and what was checked (tests/reliability/conftest.py records them), and the run says the result. The
load tests also leave their latency numbers, one table row per engine. Nothing here is measured by hand: rerun
it to refresh the report.

Usage: .venv/bin/python bench/reliability.py [--write] [-k EXPR]
  --write  write docs/RELIABILITY.md (otherwise print the report)
  -k EXPR  only the matching tests: printed, a partial report marked as such; with --write, each section whose
           tests all ran replaces that section of the report, noting its own run (e.g. -k test_load refreshes
           the Load section), and the rest of the report stays as it was
Exit code: 0 when every test passed (or was skipped), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "docs" / "RELIABILITY.md"
BAD_INPUT = ("test_bad_input_chat", "test_bad_input_cli", "test_bad_input_http")
SECTIONS = [  # section of the report -> its test modules, whose rows it shows in this order
    ("Load", ("test_load",)),
    ("Faults", ("test_faults",)),
    ("Bad input", BAD_INPUT),
    ("Access", ("test_access",)),
]
COMMAND = ".venv/bin/python bench/reliability.py --write"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--write", action="store_true", help=f"write {REPORT.relative_to(REPO)}")
    p.add_argument("-k", dest="keyword", default=None, help="only the tests matching this pytest -k expression")
    return p.parse_args(argv)


def run_tests(results: Path, keyword: str | None) -> int:
    env = {**os.environ, "CLARIFY_RELIABILITY_RESULTS": str(results), "HF_HUB_OFFLINE": "1",
           "GRADIO_ANALYTICS_ENABLED": "False", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "pytest", "tests/reliability", "-q", "-p", "no:cacheprovider"]
    if keyword:
        cmd += ["-k", keyword]
    print("$", " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=REPO, env=env)


def parse_doc(doc: str) -> tuple[str, str, str]:
    """(scenario, done, checked) from a test docstring: first line, then "Done:" and "Checked:" paragraphs."""
    text = " ".join(line.strip() for line in doc.strip().splitlines())
    match = re.match(r"(?P<scenario>.*?)\s*Done:\s*(?P<done>.*?)\s*Checked:\s*(?P<checked>.*)$", text)
    if not match:
        return text or "(no description)", "", ""
    return match["scenario"], match["done"], match["checked"]


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def seconds(total: float) -> str:
    return f"{total:.0f} s" if total >= 1 else "<1 s"


def result_text(records: list[dict]) -> str:
    """One test's result; for a parametrized test, all its cases' (the failed and skipped ones by name)."""
    total = sum(r["duration"] for r in records)
    passed = sum(r["outcome"] == "passed" for r in records)
    many = len(records) > 1
    parts = [f"pass ({f'{passed} cases, ' if many else ''}{seconds(total)})"] if passed else []
    for r in records:
        label = f"{r['case']}: " if many else ""
        if r["outcome"] == "skipped":
            parts.append(f"skipped ({label}{r['message'].removeprefix('Skipped: ')})")
        elif r["outcome"] == "failed":
            parts.append(f"**FAIL** ({label}{r['message']})")
    return "; ".join(parts)


def rows(records: list[dict]) -> list[str]:
    """One row per test; the cases of a parametrized test share a row when only its first line names the case."""
    out, groups = [], []
    for r in records:
        if groups and groups[-1][0]["test"] == r["test"] and "{case}" not in parse_doc(r["doc"])[1] + \
                parse_doc(r["doc"])[2]:
            groups[-1].append(r)
        else:
            groups.append([r])
    for group in groups:
        scenario, done, checked = parse_doc(group[0]["doc"])
        cases = "; ".join(r["case"] for r in group if r["case"])
        fill = lambda s: s.replace("{case}", cases)  # noqa: E731
        out.append(f"| {cell(fill(scenario))} | {cell(fill(done))} | {cell(fill(checked))} "
                   f"| {cell(result_text(group))} |")
    return out


def load_table(loads: list[dict]) -> list[str]:
    if not loads:
        return ["The load tests did not run in this report's run."]
    in_s = lambda ms: f"{ms / 1000:.1f} s"  # noqa: E731
    return [
        "Concurrent clients against one `clarify serve`, each sending its messages (a new conversation every 4) "
        "and rating every reply; one row per engine. *transformers*: `--engine transformers`, the bundled model on "
        "1 CPU thread, replies of at most 2 new tokens, so the serving path (queue, log, ratings) carries the load "
        "rather than the model. *vllm*: the engine `clarify serve` picks by default (the supervised vLLM server, "
        "the bundled model) with full-length replies (the default cap of new tokens). The app runs at most 4 sends "
        "at once (Gradio's concurrency limit per event), so a turn's latency includes waiting for other clients' "
        "turns.",
        "",
        "| engine | clients x turns | reply cap | reply length mean / max | turns | ratings | request errors | wall "
        "| throughput | turn p50 | turn p99 | turn max | first text p50 | first text p99 | rating p50 | rating p99 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(f"| {load['engine']} | {load['clients']} x {load['turns_per_client']} | {load['max_new_tokens']} tokens "
          f"| {load['reply_chars_mean']} / {load['reply_chars_max']} chars | {load['turns']} | {load['ratings']} "
          f"| {load['errors']} | {load['wall_seconds']:.0f} s | {load['turns_per_second']:.2f} turns/s "
          f"| {in_s(load['turn_p50_ms'])} | {in_s(load['turn_p99_ms'])} | {in_s(load['turn_max_ms'])} "
          f"| {in_s(load['first_text_p50_ms'])} | {in_s(load['first_text_p99_ms'])} "
          f"| {load['rating_p50_ms']} ms | {load['rating_p99_ms']} ms |" for load in loads),
        "",
        "A turn's latency runs from the client's queue/join request to the last streamed update of the reply; its "
        "first text, to the first streamed update that carries reply text; a rating's, from its request to its "
        "answer.",
    ]


def render(records: list[dict], loads: list[dict], keyword: str | None, wall: float) -> str:
    counts = {o: sum(r["outcome"] == o for r in records) for o in ("passed", "failed", "skipped")}
    bad_input = sum(r["module"] in BAD_INPUT for r in records)
    lines = [
        "# Reliability and security",
        "",
        f"Generated by `{COMMAND}` on {time.strftime('%Y-%m-%d %H:%M')} ({platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}): it runs `pytest tests/reliability` and turns "
        "each test (each case of a parametrized test) into a row. What a row says it did and checked is the test's "
        "own docstring; the result is that run's. The tests are part of `make test`.",
        "",
        f"**{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped** "
        f"({len(records)} tests, {bad_input} of them bad-input cases; {wall / 60:.0f} min)."
        + (f" Partial run: `-k {keyword}`." if keyword else ""),
        "",
        "Real parts throughout: `clarify serve` subprocesses or the real app in process on 127.0.0.1, the bundled "
        "model, real DuckDB files, real signals (SIGKILL), the real trainer process and a real vLLM server.",
    ]
    for title, modules in SECTIONS:
        group = [r for module in modules for r in records if r["module"] == module]
        if not group:
            continue
        lines += ["", f"## {title}", ""]
        if "test_load" in modules:
            lines += load_table(loads) + [""]
        lines += ["| scenario | what was done | what was checked | result |", "|---|---|---|---|"]
        lines += rows(group)
    lines += [
        "",
        "## Notes",
        "",
        "- *Disk full* is a child process whose file writes all fail (`RLIMIT_FSIZE` = 0: \"File too large\"), "
        "which needs no root; a tiny tmpfs would need root to mount. *Read-only folder* is skipped as root (root "
        "ignores permission bits); a folder that is a file, or under a file, fails for everyone.",
        "- Access control is enforced on the HTTP routes by `ui.access.AdminGuard` (401 before sign-in, 403 for a "
        "non-admin calling an admin event, on queue/join and on the run/api/call routes) and again inside each "
        "admin handler.",
        "- The vLLM fault and load tests are skipped where the vLLM environment is not installed (`make vllm`). "
        "In the test suite (`make test`, CI) the vLLM load test runs 4 clients x 4 turns (its server start alone "
        "takes over a minute); this report runs it in full.",
        "",
        f"Regenerate: `{COMMAND}` (about {max(1, round(wall / 60))} min on this machine).",
    ]
    return "\n".join(lines) + "\n"


def complete_sections(records: list[dict], deselected: list[str]) -> list[str]:
    """The titles of the sections whose tests all ran (none of their modules' tests was left out by -k)."""
    left_out = {nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py") for nodeid in deselected}
    ran = {r["module"] for r in records}
    return [title for title, modules in SECTIONS if ran & set(modules) and not left_out & set(modules)]


def section_pattern(title: str) -> re.Pattern:
    """A section of the report: its "## title" line up to the next "## " heading."""
    return re.compile(rf"^## {re.escape(title)}\n.*?(?=^## )", re.M | re.S)


def merge_sections(old: str, partial: str, titles: list[str], note: str) -> str:
    """The report `old` with the sections `titles` taken from the partial report, each opening with `note`."""
    for title in titles:
        pattern = section_pattern(title)
        if not pattern.search(old):
            raise SystemExit(f"{REPORT.relative_to(REPO)} has no section '{title}': run the full report")
        section = pattern.search(partial).group(0).replace("\n\n", f"\n\n{note}\n\n", 1)
        old = pattern.sub(lambda _: section, old, count=1)
    return old


def partial_note(records: list[dict], keyword: str, wall: float) -> str:
    counts = {o: sum(r["outcome"] == o for r in records) for o in ("passed", "failed", "skipped")}
    return (f"This section is from a later run than the rest: `{COMMAND} -k {shlex.quote(keyword)}` on "
            f"{time.strftime('%Y-%m-%d %H:%M')} ({platform.machine()}, {os.cpu_count()} CPUs): {counts['passed']} "
            f"passed, {counts['failed']} failed, {counts['skipped']} skipped ({wall / 60:.0f} min).")


def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="clarify-reliability-") as tmp:
        results = Path(tmp)
        started = time.monotonic()
        code = run_tests(results, args.keyword)
        wall = time.monotonic() - started
        tests_file = results / "tests.json"
        if not tests_file.exists():
            print("no test results were recorded (did pytest collect tests/reliability?)", file=sys.stderr)
            return 1
        records = json.loads(tests_file.read_text())
        deselected = json.loads((results / "deselected.json").read_text())
        loads = [json.loads(f.read_text()) for f in sorted(results.glob("load-*.json"))]
    report = render(records, loads, args.keyword, wall)
    if args.write and args.keyword and REPORT.exists():
        titles = complete_sections(records, deselected)
        partly = [title for title, modules in SECTIONS
                  if title not in titles and any(r["module"] in modules for r in records)]
        for title in partly:
            print(f"section '{title}' left as it was: only part of its tests ran", file=sys.stderr)
        if titles:
            note = partial_note(records, args.keyword, wall)
            REPORT.write_text(merge_sections(REPORT.read_text(), report, titles, note))
            print(f"wrote the {', '.join(titles)} section(s) of {REPORT.relative_to(REPO)}")
    elif args.write:
        REPORT.write_text(report)
        print(f"wrote {REPORT.relative_to(REPO)}")
    else:
        print(report)
    failed = any(r["outcome"] == "failed" for r in records)
    return 1 if failed or code not in (0, 5) else 0


if __name__ == "__main__":
    sys.exit(main())
