"""Seeds that are the same in every process."""

from __future__ import annotations

import subprocess
import sys

from agent.seeding import stable_int


def test_stable_int_is_the_same_for_the_same_parts_in_another_process():
    assert stable_int("a", 1) == stable_int("a", 1) != stable_int("a", 2)
    other = subprocess.run([sys.executable, "-c", "from agent.seeding import stable_int; print(stable_int('a', 1))"],
                           capture_output=True, text=True, check=True)
    assert int(other.stdout) == stable_int("a", 1)
