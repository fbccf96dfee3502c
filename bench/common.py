"""Shared by the bench scripts: the machine a benchmark ran on, N threads released at the same moment, and the
sections of a results document that several scripts write (docs/RESULTS.md)."""

from __future__ import annotations

import os
import platform
import re
import threading
import time
from pathlib import Path
from typing import Callable


def describe() -> str:
    """CPU model, cores, RAM and load average, for a table header."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        kb = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
        ram = f", {kb / 1024 ** 2:.0f} GB RAM"
    load = os.getloadavg()[0]
    return f"{model}, {os.cpu_count()} cores{ram}; load average {load:.2f} at start"


def at_once(worker: Callable[[int, threading.Barrier], None], n: int) -> float:
    """Run worker(i, gate) in n threads; each calls gate.wait() when ready, and all are released together.
    Returns the moment of release (time.perf_counter()) once every worker has finished."""
    gate = threading.Barrier(n + 1)
    threads = [threading.Thread(target=worker, args=(i, gate)) for i in range(n)]
    for t in threads:
        t.start()
    gate.wait()
    released = time.perf_counter()
    for t in threads:
        t.join()
    return released


def _section(name: str) -> re.Pattern:
    return re.compile(rf"<!-- {re.escape(name)} -->\n.*?<!-- /{re.escape(name)} -->\n?", re.DOTALL)


_ANY_SECTION = re.compile(r"<!-- ([\w-]+) -->\n.*?<!-- /\1 -->\n?", re.DOTALL)


def write_section(path: Path, name: str, text: str) -> None:
    """Put `text` into the document at `path` between ``<!-- name -->`` and ``<!-- /name -->``: in place of that
    section's earlier text, else at the end (the file is created when missing). The rest is left as it was."""
    block = f"<!-- {name} -->\n{text.rstrip()}\n<!-- /{name} -->\n"
    old = path.read_text() if path.exists() else ""
    if _section(name).search(old):
        new = _section(name).sub(lambda _: block, old, count=1)
    else:
        new = old.rstrip("\n") + "\n\n" + block if old.strip() else block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new)


def with_sections(path: Path, text: str) -> str:
    """`text` followed by the marked sections (write_section) of the document at `path`: what a script that writes
    the whole document keeps of the sections other scripts wrote there."""
    old = path.read_text() if path.exists() else ""
    sections = [m.group(0).rstrip("\n") + "\n" for m in _ANY_SECTION.finditer(old)]
    return "\n".join([text.rstrip("\n") + "\n", *sections])
