"""The CLI's plain progress lines (what a log file or CI shows of a long `clarify train`)."""

from learner.commands import tenth_reached


def test_a_run_prints_one_line_per_tenth_and_the_last_step():
    logged: set = set()
    printed = [step for step in range(0, 101) if tenth_reached(step, 100, logged)]
    assert printed == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]


def test_a_short_run_prints_each_tenth_once_and_nothing_before_a_step():
    logged: set = set()
    assert not tenth_reached(0, 3, logged)
    assert [tenth_reached(s, 3, logged) for s in (1, 1, 2, 3)] == [True, False, True, True]
    assert not tenth_reached(5, 0, set())  # an unknown total prints nothing rather than failing
