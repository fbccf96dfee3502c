"""Reliability and security report: runs tests/reliability and writes docs/RELIABILITY.md.

Every row of the report is one test (one case of a parametrized test): its docstring says the scenario, what
was done and what was checked (tests/reliability/conftest.py records them), and the run says the result. The
load test also leaves its latency numbers. Nothing here is measured by hand: rerun it to refresh the report.

Usage: .venv/bin/python bench/reliability.py [--write] [-k EXPR]
  --write  write docs/RELIABILITY.md (otherwise print the report)
  -k EXPR  only the matching tests (a partial report, marked as such)
Exit code: 0 when every test passed (or was skipped), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
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


def load_table(load: dict | None) -> list[str]:
    if not load:
        return ["The load test did not run in this report's run."]
    return [
        f"{load['clients']} clients x {load['turns_per_client']} turns against one `clarify serve` (transformers "
        f"engine, the bundled model on 1 CPU thread, replies of at most {load['max_new_tokens']} new tokens; the "
        f"CPU thread is shared by all {load['clients']} clients, so a turn's latency is mostly waiting for the others' "
        "turns).",
        "",
        "| turns | ratings | request errors | wall | throughput | turn p50 | turn p99 | turn max | rating p50 | rating p99 |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {load['turns']} | {load['ratings']} | {load['errors']} | {load['wall_seconds']:.0f} s "
        f"| {load['turns_per_second']:.2f} turns/s | {load['turn_p50_ms'] / 1000:.1f} s | {load['turn_p99_ms'] / 1000:.1f} s "
        f"| {load['turn_max_ms'] / 1000:.1f} s | {load['rating_p50_ms']} ms | {load['rating_p99_ms']} ms |",
        "",
        "A turn's latency runs from the client's queue/join request to the last streamed update of the reply; "
        "a rating's, from its request to its answer.",
    ]


def render(records: list[dict], load: dict | None, keyword: str | None, wall: float) -> str:
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
            lines += load_table(load) + [""]
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
        "- The vLLM fault test is skipped where the vLLM environment is not installed (`make vllm`).",
        "",
        f"Regenerate: `{COMMAND}` (about {max(1, round(wall / 60))} min on this machine).",
    ]
    return "\n".join(lines) + "\n"


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
        load_file = results / "load.json"
        load = json.loads(load_file.read_text()) if load_file.exists() else None
    report = render(records, load, args.keyword, wall)
    if args.write:
        REPORT.write_text(report)
        print(f"wrote {REPORT.relative_to(REPO)}")
    else:
        print(report)
    failed = any(r["outcome"] == "failed" for r in records)
    return 1 if failed or code not in (0, 5) else 0


if __name__ == "__main__":
    sys.exit(main())
