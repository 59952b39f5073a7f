"""End to end through the `lakesift` command in fresh processes: the demo, SQL and views from a new process,
proxy models, the notebooks, the MLflow UI. (A SIGKILL in the middle of extract and two jobs at once are in
hostile/test_crash_and_concurrency.py: a file of their own, so `make test`'s two workers share the long tests.)"""
from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, run_cli

pytestmark = pytest.mark.slow


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    return proc


def in_process(capsys, *args: str) -> str:
    """`lakesift ARGS` through the same entry point, in this process and its Spark session (fast); returns stdout."""
    from jobs.cli import main

    capsys.readouterr()
    assert main(list(args)) == 0, capsys.readouterr().err[-3000:]
    return capsys.readouterr().out


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo, every stage, through Spark Connect: SPARK_REMOTE=local[2] is pyspark 4's local Connect server
    (SparkSession.builder.remote("local[2]")), so the whole chain runs without a SparkContext in the client.
    The classic session runs the same stages in test_pipeline.py, the hostile tests and the rest."""
    home = str(tmp_path_factory.mktemp("demo") / "lakehouse")
    return home, ok(run_cli("-v", "demo", "--pages", "120", home=home, env={"SPARK_REMOTE": "local[2]"}))


def test_demo_then_sql_from_new_processes(demo, spark, capsys):
    home, demo = demo
    assert "stage" in demo.stdout and "ingest" in demo.stdout and "lakesift sql" in demo.stdout
    assert "Spark Connect session to local[2]" in demo.stderr
    for stage in ("decontaminate", "score-neural", "select dclm_like", "export dclm_like", "ablate tiny"):
        assert stage in demo.stdout, stage
    assert "export dclm_like done" in demo.stderr and "speedup vs raw" in demo.stdout     # funnels, then the comparison

    query = "SELECT language, count(*) AS docs FROM silver.documents GROUP BY language ORDER BY docs DESC, language"
    as_json = [json.loads(line) for line in ok(run_cli("sql", query, "--format", "json", home=home)).stdout.splitlines()]
    assert sum(r["docs"] for r in as_json) == 120 and as_json[0]["language"] == "en"
    as_csv = list(csv.DictReader(io.StringIO(in_process(capsys, "sql", query, "--format", "csv", "--home", home))))
    assert [(r["language"], int(r["docs"])) for r in as_csv] == [(r["language"], r["docs"]) for r in as_json]
    as_table = in_process(capsys, "sql", query, "--home", home).splitlines()
    assert as_table[0].split("|")[0].strip() == "language" and len(as_table) == 2 + len(as_json)

    from jobs.runtime.config import JobConfig
    from jobs.runtime.tables import register_lakehouse

    register_lakehouse(spark, JobConfig(home=home))              # the rest is checked in this process
    errors = [r.error_class for r in spark.sql("SELECT error_class FROM bronze.ingest_errors").collect()]
    assert errors == ["CorruptBytes"]          # the sample crawl's one corrupt record

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{home}/mlflow.db")
    (exp,) = [e for e in client.search_experiments() if e.name == "lakesift"]
    runs = client.search_runs([exp.experiment_id])
    parent = [r for r in runs if r.data.tags["lakesift.job"] == "run"][0]
    children = [r.data.tags["lakesift.job"] for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    expected = {"ingest", "extract_documents", "compute_heuristics", "compute_minhash", "cluster_duplicates",
                "detect_contamination", "train_quality", "classify_quality", "train_neural", "score_neural", "select",
                "export", "ablate"}
    assert expected <= set(children) and children.count("select") == 2
    names = {r.info.run_name for r in runs}          # each run's name says what it did
    assert {"select raw", "select dclm_like", "export dclm_like (jsonl.gz)", "ablate tiny: raw vs dclm_like"} <= names
    assert parent.info.run_name.startswith("run DEMO-2026-01-seed7-120p.warc.gz -> raw, dclm_like"), parent.info.run_name
    assert all(r.info.status == "FINISHED" for r in runs)
    champion = client.get_model_version_by_alias("lakesift_quality", "champion")
    assert champion.run_id in {r.info.run_id for r in runs}

    corpus = {r["recipe"]: r.asDict() for r in spark.sql(
        "SELECT recipe, count(*) AS docs, min(recipe_fingerprint) AS fp FROM gold.corpus GROUP BY 1").collect()}
    assert corpus["raw"]["docs"] == 120 and 0 < corpus["dclm_like"]["docs"] < 120
    # a second run finds every stage up to date
    again = ok(run_cli("demo", "--pages", "120", home=home))
    assert again.stderr.count("up to date") == 13 and "speedup vs raw" in again.stdout
    manifests = list(Path(home).glob("exports/dclm_like/v*/manifest.json"))
    assert len(manifests) == 1 and json.loads(manifests[0].read_text())["documents"] == corpus["dclm_like"]["docs"]

    # The same chain as separate commands, as a user types them (through the CLI's entry point; that new
    # processes find the tables by name is shown above).
    reference = str(Path(home) / "samples" / "reference-text.txt")
    trained = in_process(capsys, "train-quality", "--name", "cli_quality", "--positives", reference, "--dim", "16", "--home", home)
    assert "models:/cli_quality@champion = version 1" in trained and "ROC-AUC" in trained
    bad = Path(home) / "one-class.jsonl"
    bad.write_text("".join(json.dumps({"text": f"page {i}", "label": 1}) + "\n" for i in range(25)))
    from jobs.cli import main

    capsys.readouterr()
    assert main(["train-quality", "--name", "cli_quality", "--positives", reference, "--labels", str(bad), "--home", home]) == 2
    assert "every label is 1; both classes (0 and 1) are needed" in capsys.readouterr().err
    from mlflow import MlflowClient as _Client

    assert len(_Client(f"sqlite:///{home}/mlflow.db").search_model_versions("name = 'cli_quality'")) == 1   # nothing trained
    assert "documents scored by cli_quality v1" in in_process(capsys, "classify", "--model", "models:/cli_quality@champion", "--home", home)
    selected = in_process(capsys, "select", "--recipe", "dclm_like", "--signal", "quality.model=cli_quality", "--home", home)
    assert "quality_top_10pct" in selected and "recipe dclm_like" in selected and "thresholds quality_top_10pct >=" in selected
    exported = in_process(capsys, "export", "--recipe", "dclm_like", "--format", "parquet", "--shards", "2",
                          "--output", str(Path(home) / "cli-export"), "--home", home)
    assert "2 parquet shards" in exported and (Path(home) / "cli-export" / "manifest.json").exists()


def test_bad_sql_is_a_clear_error(home, capsys):
    from jobs.cli import main

    capsys.readouterr()
    assert main(["sql", "SELECT nope FROM silver.missing_table", "--home", home]) == 1
    err = capsys.readouterr().err
    assert "TABLE_OR_VIEW_NOT_FOUND" in err and "Traceback" not in err


def _json_rows(proc: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in ok(proc).stdout.splitlines()]


def test_views_answer_common_questions(demo, spark, capsys):
    home, _ = demo
    listed = in_process(capsys, "views", "--home", home)
    for view in ("gold.v_recipe_funnel", "silver.v_signal_distributions", "silver.v_quality_distributions",
                 "silver.v_duplicate_cluster_sizes"):
        assert view in listed and f"{view} (not created" not in listed
    funnel = [json.loads(line) for line in in_process(capsys, "sql", "SELECT * FROM gold.v_recipe_funnel WHERE recipe = "
                                                      "'dclm_like' ORDER BY step, drop_reason", "--format", "json",
                                                      "--home", home).splitlines()]
    kept = funnel[0]["kept_documents"]
    assert kept + sum(r["dropped_documents"] for r in funnel) == 120           # the funnel reconciles
    assert funnel[-1]["documents_left"] == kept and all(a["documents_left"] >= b["documents_left"] for a, b in zip(funnel, funnel[1:]))
    from jobs.runtime.config import JobConfig
    from jobs.runtime.tables import register_lakehouse

    register_lakehouse(spark, JobConfig(home=home))
    sizes = spark.sql("SELECT sum(documents) AS docs, sum(duplicates_removed) AS removed FROM "
                      "silver.v_duplicate_cluster_sizes WHERE scope = 'crawl'").first()
    assert sizes.docs == 120 and 0 < sizes.removed < 120
    dist = spark.sql("SELECT sum(documents) AS n FROM silver.v_signal_distributions").first()
    assert dist.n == 120


def test_proxy_models_from_the_cli(demo, spark, capsys, tmp_path):
    home, _ = demo
    evals = tmp_path / "evals"              # a COPA-format file of our own: no dependency on ../shared/data
    evals.mkdir()
    (evals / "copa.jsonl").write_text("".join(json.dumps({"query": f"Question {i}, therefore", "gold": i % 2,
                                                          "choices": ["it rained.", "the sun shone."]}) + "\n"
                                              for i in range(12)) + "not json\n")
    heldout = str(Path(home) / "samples" / "heldout-text.txt")
    trained = in_process(capsys, "train-proxy", "--recipe", "raw", "--tokens", "20000", "--seed", "1", "--heldout", heldout,
                         "--home", home)
    run_id = trained.split("run ", 1)[1].split(":", 1)[0]
    assert "held-out" in trained and "evaluate it: lakesift eval-proxy --run" in trained
    evaluated = in_process(capsys, "eval-proxy", "--run", run_id, "--limit", "8", "--task", "copa", "--evals", str(evals),
                           "--home", home)
    assert "copa" in evaluated and "CORE-like" in evaluated and "1 malformed evaluation lines skipped" in evaluated
    ablated = in_process(capsys, "ablate", "--recipes", "raw", "heuristics_dedup", "--seeds", "1", "--tokens", "20000",
                         "--limit", "2", "--evals", str(evals), "--heldout", heldout, "--home", home)
    assert "speedup vs raw" in ablated and "2 child runs" in ablated

    from jobs.runtime.config import JobConfig
    from jobs.runtime.tables import register_lakehouse

    register_lakehouse(spark, JobConfig(home=home))
    results = spark.sql("SELECT recipe, runs FROM gold.v_proxy_results WHERE task = 'heldout' ORDER BY recipe").collect()
    assert [(r.recipe, r.runs) for r in results] == [("dclm_like", 1), ("heuristics_dedup", 1), ("raw", 3)]   # demo: 1 + 1

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{home}/mlflow.db")
    (exp,) = [e for e in client.search_experiments() if e.name == "lakesift"]
    (parent,) = client.search_runs([exp.experiment_id], "tags.`lakesift.job` = 'ablate' and tags.recipes = 'raw,heuristics_dedup'")
    children = client.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    jobs = [c.data.tags["lakesift.job"] for c in children]        # heuristics_dedup had no corpus: selected first
    assert sorted(jobs) == ["select", "train_proxy", "train_proxy"]
    assert "speedup.heuristics_dedup" in parent.data.metrics or "final_bpb.heuristics_dedup" in parent.data.metrics
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"comparison.txt", "heldout_bpb_vs_tokens.png"} <= artifacts


def test_notebooks_run_on_the_demo_lakehouse_and_plot(demo, tmp_path):
    """Each notebook runs as a script (one process and Spark session for the three) and saves its figures."""
    home, _ = demo
    expected = {"explore_signals.py": {"signal_histograms", "threshold_what_ifs", "quality_scores"},
                "inspect_duplicates.py": {"cluster_sizes", "largest_cluster_jaccard"},
                "compare_recipes.py": {"recipe_funnels"}}
    runner = ("import os, runpy, sys\n"
              "sys.path.insert(0, sys.argv[1])\n"
              "for name in sys.argv[2:]:\n"
              "    runpy.run_path(os.path.join(sys.argv[1], name), run_name='__main__')\n")
    env = {**os.environ, "LAKESIFT_HOME": home, "LAKESIFT_SPARK_MASTER": "local[2]",
           "LAKESIFT_NOTEBOOK_OUT": str(tmp_path / "notebook-output")}
    proc = subprocess.run([sys.executable, "-c", runner, str(ROOT / "notebooks"), *expected], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for notebook, figures in expected.items():
        made = {p.stem for p in (tmp_path / "notebook-output").glob("*.png") if p.stat().st_size > 5000}
        assert figures <= made, f"{notebook}: {made}"
        assert (ROOT / "notebooks" / notebook).read_text().splitlines()[0] == "# Databricks notebook source"


def test_spark_sql_shell_and_jdbc_endpoint(demo):
    import pyspark

    home, _ = demo
    shell = ok(subprocess.run([sys.executable, "-m", "jobs.cli", "--home", home, "spark-sql", "--", "-e",
                               "SELECT count(*) FROM silver.documents; "
                               "SELECT sum(documents) FROM silver.v_duplicate_cluster_sizes WHERE scope = 'crawl'"],
                              cwd=ROOT, capture_output=True, text=True, timeout=300))
    assert shell.stdout.split() == ["120", "120"]
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "jobs.cli", "serve-sql", "--port", str(port), "--home", home], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.time() + 120
        for line in server.stderr:
            if "JDBC endpoint" in line or time.time() > deadline:
                break
        assert f"jdbc:hive2://127.0.0.1:{port}/" in line
        beeline = Path(pyspark.__file__).parent / "bin" / "beeline"
        result = subprocess.run([str(beeline), "-u", f"jdbc:hive2://127.0.0.1:{port}/", "--outputformat=csv2", "-e",
                                 "SELECT recipe, count(*) AS docs FROM gold.corpus WHERE recipe = 'raw' GROUP BY 1"],
                                capture_output=True, text=True, timeout=180, env={**os.environ, "SPARK_HOME": str(beeline.parents[1])})
        assert "raw,120" in result.stdout.split(), result.stdout + result.stderr[-2000:]
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0


def test_mlflow_ui_serves_the_demo_runs(demo):
    import shutil
    import urllib.request

    home, _ = demo
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "jobs.cli", "ui", "--port", str(port), "--home", home], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=lakesift", timeout=5) as r:
                    experiment = json.loads(r.read())["experiment"]
                break
            except OSError:
                assert server.poll() is None and time.time() < deadline, server.stderr.read().decode()[-2000:]
                time.sleep(1)
        request = urllib.request.Request(f"{base}/api/2.0/mlflow/runs/search", method="POST",
                                         data=json.dumps({"experiment_ids": [experiment["experiment_id"]],
                                                          "filter": "tags.`lakesift.job` = 'run'"}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as r:
            runs = json.loads(r.read())["runs"]
        assert runs and runs[0]["info"]["status"] == "FINISHED"
        browser = shutil.which("chromium") or shutil.which("chromium-browser")
        if browser:                       # the experiment page, rendered: not an error page
            page = f"{base}/#/experiments/{experiment['experiment_id']}/runs"
            flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--virtual-time-budget=25000", "--window-size=1400,900"]
            dom = subprocess.run([*flags, "--dump-dom", page], capture_output=True, text=True, timeout=120).stdout
            assert "lakesift" in dom and f">{runs[0]['info']['run_name']}<" in dom and "matching runs" in dom
    finally:
        server.send_signal(signal.SIGTERM)            # `lakesift ui` alone: it must take its MLflow server down
        server.wait(timeout=30)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(base, timeout=2)
        except OSError:
            break                                     # nothing listens any more
        time.sleep(0.5)
    else:
        os.killpg(server.pid, signal.SIGKILL)
        raise AssertionError("the MLflow server kept serving after `lakesift ui` was stopped")


def test_lakesift_serve_answers_attached_commands(demo, spark):
    """`lakesift serve` over the demo lakehouse: new commands attach to it (no JVM of their own), answer as a
    session of their own would, keep `lakesift sql` read-only, and stop attaching when it stops."""
    from jobs.runtime.config import JobConfig
    from jobs.runtime.spark import attach_url

    home, _ = demo
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "jobs.cli", "serve", "--port", str(port), "--home", home],
                              cwd=ROOT, env={**os.environ, "LAKESIFT_SPARK_MASTER": "local[2]"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    record = Path(home) / "_serve" / "connect.json"
    try:
        deadline = time.monotonic() + 240
        while not record.exists():
            assert server.poll() is None, server.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "lakesift serve did not start in 240 s"
            time.sleep(0.5)
        assert json.loads(record.read_text())["url"] == f"sc://127.0.0.1:{port}"
        tables = ok(run_cli("-v", "tables", home=home))
        assert f"attached to lakesift serve at sc://127.0.0.1:{port}" in tables.stderr
        assert "silver.documents" in tables.stdout and "gold.corpus" in tables.stdout
        query = "SELECT language, count(*) AS docs FROM silver.documents GROUP BY 1"
        attached = [json.loads(line) for line in ok(run_cli("sql", query, "--format", "json", home=home)).stdout.splitlines()]
        here = spark.read.format("delta").load(f"{home}/silver/documents").groupBy("language").count().collect()
        assert sorted((r["language"], r["docs"]) for r in attached) == sorted((r["language"], r["count"]) for r in here)
        refused = run_cli("sql", "DROP TABLE silver.documents", home=home)          # read-only through Connect too
        assert refused.returncode == 2 and "DropTable" in refused.stderr
        again = run_cli("serve", "--port", str(free_port()), home=home)
        assert again.returncode == 2 and "already answers" in again.stderr
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    assert not record.exists() and attach_url(JobConfig(home=home)) is None     # nothing left to attach to
