"""Shared by the bench scripts: the machine a benchmark ran on, and N threads released at the same moment."""

from __future__ import annotations

import os
import platform
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
