"""Spark's work as it happens, with the time left: for a stage running 5 seconds or more, a line on stderr
every 10 seconds, e.g. `  Spark: stage 14, 37/50 tasks, 0:12 elapsed, about 0:05 left`. Whole lines (never a
line rewritten in place), so they read the same in a terminal, a log file and a Databricks job's output,
and never run into the command's own output.

The time left is each running stage's own pace (tasks done over the seconds since it was first seen)
applied to its tasks still to do; stages running side by side are as slow as the slowest. Fed by Spark's
status tracker (a classic session, polled twice a second) or by the progress reports Spark Connect sends
with each result (a Connect session). The CLI turns it on for a terminal (LAKESIFT_CONSOLE_PROGRESS=1; set
it to 1 for job logs too, 0 for never).

Reads   the session's stage progress; writes progress lines to stderr, nothing else; no state survives the process.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


class TaskProgress:
    """Progress lines of the stages Spark is running: update() with (stage id, tasks done, tasks)."""

    def __init__(self, out: TextIO | None = None, after: float = 5.0, every: float = 10.0, poll: float = 0.5,
                 now=time.monotonic):
        self.out = out or sys.stderr
        self.after, self.every, self.poll, self.now = after, every, poll, now
        self.seen: dict[int, float] = {}       # stage id -> when first seen running
        self.last = float("-inf")              # when the last line was written
        self.lock = threading.Lock()

    def line(self, stages: list[tuple[int, int, int]]) -> str:
        """The progress line of the running stages (empty when none runs)."""
        running = [(s, d, n) for s, d, n in stages if n and d < n]
        if not running:
            return ""
        t = self.now()
        left = []
        for stage, done, total in running:
            started = self.seen.setdefault(stage, t)
            if done and t > started:           # a pace needs time seen running
                left.append((t - started) * (total - done) / done)
        first = min(self.seen[s] for s, _, _ in running)
        done, total = sum(d for _, d, _ in running), sum(n for _, _, n in running)
        ids = ", ".join(str(s) for s, _, _ in running[:3]) + (" …" if len(running) > 3 else "")
        eta = f", about {clock(max(left))} left" if len(left) == len(running) else ""
        return (f"  Spark: stage{'s' if len(running) > 1 else ''} {ids}, {done}/{total} tasks, "
                f"{clock(t - first)} elapsed{eta}")

    def update(self, stages: list[tuple[int, int, int]]) -> None:
        with self.lock:
            text = self.line(stages)
            running = {s for s, d, n in stages if n and d < n}
            self.seen = {s: t for s, t in self.seen.items() if s in running}
            if not text:
                return
            t = self.now()
            if t - min(self.seen.values()) >= self.after and t - self.last >= self.every:
                self.last = t
                self.out.write(text + "\n")
                self.out.flush()


def watch(spark, out: TextIO | None = None) -> TaskProgress:
    """Show the session's progress on `out` (stderr) until the process ends."""
    from jobs.runtime.spark import is_connect

    progress = TaskProgress(out)
    if is_connect(spark):
        def handler(stages, inflight_tasks, operation_id, done):
            progress.update([] if done else [(s.stage_id, s.num_completed_tasks, s.num_tasks)
                                             for s in stages or () if not s.done])

        spark.registerProgressHandler(handler)
        return progress
    tracker = spark.sparkContext.statusTracker()

    def poll() -> None:
        while True:
            infos = [tracker.getStageInfo(s) for s in tracker.getActiveStageIds()]
            progress.update([(i.stageId, i.numCompletedTasks, i.numTasks) for i in infos if i is not None])
            time.sleep(progress.poll)

    threading.Thread(target=poll, name="lakesift-progress", daemon=True).start()
    return progress
