"""Progress lines with the time left (jobs/progress.py), on a clock the test moves."""
from __future__ import annotations

import io

from jobs.progress import TaskProgress, clock


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_time_left_follows_each_stage_pace_and_lines_are_spaced():
    now, out = Clock(), io.StringIO()
    progress = TaskProgress(out, after=5, every=10, now=now)
    progress.update([(7, 0, 40)])                       # first seen: no line before 5 s
    now.t += 4
    progress.update([(7, 10, 40)])
    assert out.getvalue() == ""
    now.t += 2                                          # 6 s, 20 of 40 done: as long again
    progress.update([(7, 20, 40)])
    assert out.getvalue() == "  Spark: stage 7, 20/40 tasks, 0:06 elapsed, about 0:06 left\n"
    now.t += 3                                          # within 10 s of the last line: nothing
    progress.update([(7, 30, 40)])
    assert out.getvalue().count("\n") == 1
    now.t += 7                                          # two stages side by side: the slower one's time left
    progress.update([(7, 35, 40), (9, 1, 100)])
    last = out.getvalue().splitlines()[-1]
    assert last == "  Spark: stages 7, 9, 36/140 tasks, 0:16 elapsed"      # stage 9 just seen: no pace yet
    now.t += 10
    progress.update([(9, 10, 100)])                     # stage 7 finished; 9 at 10 per 10 s: 90 s left
    assert out.getvalue().splitlines()[-1] == "  Spark: stage 9, 10/100 tasks, 0:10 elapsed, about 1:30 left"
    progress.update([])                                 # idle: forgets the stages
    assert progress.seen == {}


def test_clock():
    assert [clock(s) for s in (0, 59.6, 61, 3599, 3600, 7384)] == ["0:00", "1:00", "1:01", "59:59", "1:00:00", "2:03:04"]
