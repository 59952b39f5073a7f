"""Interactive commands with and without `lakesift serve` (issue 25): wall seconds of `lakesift tables`, a
`lakesift sql` aggregate over silver.documents, a recipe check that fails (a typo) and `lakesift select`, each
run as a user types it (a fresh `lakesift` process) on the demo lakehouse, once attached to a running
`lakesift serve` and once starting its own Spark (LAKESIFT_ATTACH=0). Warm medians: the first attached run
of each command is left out (the server compiles its first plans then).

Target: with serve running, `tables` and the `sql` aggregate each under 3 s here.
Writes bench/results/serve.json. The demo lakehouse is built first when missing ($LAKESIFT_BENCH_HOME,
default /tmp/lakesift-serve-bench; `lakesift demo`, 400 pages, about 4 minutes).
"""
from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, report

HOME = os.environ.get("LAKESIFT_BENCH_HOME", "/tmp/lakesift-serve-bench")
RUNS, ALONE_RUNS = 5, 3
QUERY = "SELECT language, count(*) AS docs, sum(word_count) AS words FROM silver.documents GROUP BY 1 ORDER BY 2 DESC"
TARGET_SECONDS = 3.0


def lakesift(*args: str, env: dict | None = None, check: bool = True) -> float:
    started = time.perf_counter()
    proc = subprocess.run([str(Path(sys.executable).with_name("lakesift")), *args, "--home", HOME], cwd=ROOT,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"lakesift {' '.join(args)} failed: {proc.stderr[-2000:]}")
    return time.perf_counter() - started


def main() -> None:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    if not os.path.isdir(os.path.join(HOME, "silver", "documents")):
        print(f"building the demo lakehouse in {HOME} …", flush=True)
        lakesift("demo")
    typo = Path(tempfile.mkdtemp()) / "typo.yaml"
    typo.write_text("name: typo\ndescription: a misspelt column\npredicates:\n  - name: long_enough\n"
                    "    where: d.wrod_count >= 50\n")
    commands = {
        "tables": ("tables",),
        "sql aggregate over silver.documents": ("sql", QUERY),
        "recipe with a typo (error)": ("select", "--recipe", str(typo)),
        "select dclm_like": ("select", "--recipe", "dclm_like"),
    }
    alone = {name: [lakesift(*args, env={"LAKESIFT_ATTACH": "0"}, check="typo" not in name) for _ in range(ALONE_RUNS)]
             for name, args in commands.items()}
    port = 15000 + os.getpid() % 1000
    server = subprocess.Popen([str(Path(sys.executable).with_name("lakesift")), "serve", "--port", str(port),
                               "--home", HOME], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)
    started = time.perf_counter()
    record = Path(HOME) / "_serve" / "connect.json"
    try:
        while not record.exists():
            if server.poll() is not None:
                raise RuntimeError(f"lakesift serve stopped: {server.stderr.read()[-2000:]}")
            time.sleep(0.2)
        startup = time.perf_counter() - started
        attached = {name: [lakesift(*args, check="typo" not in name) for _ in range(RUNS + 1)]
                    for name, args in commands.items()}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    rows, figures = [], {}
    for name in commands:
        warm = attached[name][1:]
        figures[name] = {"alone_seconds": [round(t, 2) for t in alone[name]],
                         "attached_first_seconds": round(attached[name][0], 2),
                         "attached_warm_seconds": [round(t, 2) for t in warm]}
        rows.append([name, round(statistics.median(alone[name]), 2), round(attached[name][0], 2),
                     round(statistics.median(warm), 2), round(statistics.median(alone[name]) / statistics.median(warm), 1)])
    met = all(statistics.median(attached[n][1:]) < TARGET_SECONDS
              for n in ("tables", "sql aggregate over silver.documents"))
    documents = json.loads(subprocess.run(
        [str(Path(sys.executable).with_name("lakesift")), "sql", "SELECT count(*) AS n FROM silver.documents",
         "--format", "json", "--home", HOME], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "LAKESIFT_ATTACH": "0"}).stdout)["n"]
    report("serve", ["command", "alone median s", "attached first s", "attached warm median s", "speedup"], rows, {
        "command": "python -m bench.serve",
        "lakehouse": {"home": HOME, "documents": documents},
        "serve_startup_seconds": round(startup, 1),
        "runs": {"alone": ALONE_RUNS, "attached_warm": RUNS},
        "figures": figures,
        "target": f"tables and the sql aggregate under {TARGET_SECONDS} s attached (warm median)",
        "target_met": met,
    })
    print(f"lakesift serve started in {startup:.1f} s; target (tables and sql under {TARGET_SECONDS} s warm): "
          f"{'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
