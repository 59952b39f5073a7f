"""An MLflow run for every job run.

params  = the job's config; metrics = rows in/out per outcome and seconds; params `read.<table>` and
`wrote.<table>` = the Delta versions read and written. A job run inside another (the demo pipeline,
an ablation) becomes its child. A run that raises is marked FAILED, never left RUNNING.
Local default: sqlite store <home>/mlflow.db with artifacts in <home>/mlartifacts.
"""
from __future__ import annotations

import contextlib
import contextvars
import fcntl
import os
import re
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

from jobs.runtime.config import JobConfig

_parent_run: contextvars.ContextVar[str | None] = contextvars.ContextVar("lakesift_parent_run", default=None)


def tracking_uri(cfg: JobConfig) -> str:
    if cfg.tracking_uri:
        return cfg.tracking_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return "databricks"
    if "://" in cfg.home:
        raise ValueError(f"home {cfg.home} is remote: give --tracking-uri for MLflow")
    return f"sqlite:///{cfg.home}/mlflow.db"


def artifact_root(cfg: JobConfig) -> str | None:
    uri = tracking_uri(cfg)
    return f"{cfg.home}/mlartifacts" if uri.startswith("sqlite:///") else None


@contextlib.contextmanager
def _store_lock(cfg: JobConfig) -> Iterator[None]:
    """Serialise first-time creation of the local store and experiment between processes."""
    if not tracking_uri(cfg).startswith("sqlite:///"):
        yield
        return
    Path(cfg.home).mkdir(parents=True, exist_ok=True)
    with open(os.path.join(cfg.home, ".mlflow.lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def client_and_experiment(cfg: JobConfig):
    """(MlflowClient, experiment id), creating the store and experiment on first use."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    with _store_lock(cfg):
        client = MlflowClient(tracking_uri(cfg), registry_uri=tracking_uri(cfg))
        exp = client.get_experiment_by_name(cfg.experiment)
        if exp is not None:
            return client, exp.experiment_id
        try:
            return client, client.create_experiment(cfg.experiment, artifact_location=artifact_root(cfg))
        except MlflowException:   # another process created it between our look and our create
            return client, client.get_experiment_by_name(cfg.experiment).experiment_id


def code_version() -> str:
    """The git commit of a source checkout, else the installed package version."""
    here = Path(__file__).resolve().parents[2]
    if (here / ".git").exists():
        try:
            out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
            if out.returncode == 0:
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return "lakesift-" + version("lakesift")
    except PackageNotFoundError:
        return "unknown"


_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


def is_model_uri(uri: str) -> bool:
    return bool(_MODEL_URI.match(uri or ""))


def download_model(cfg: JobConfig, uri: str) -> tuple[str, str, str]:
    """(local folder, name, version) of models:/NAME@ALIAS or models:/NAME/VERSION: the registered
    version's files, downloaded (nothing is deserialised here)."""
    import mlflow.artifacts

    m = _MODEL_URI.match(uri)
    if not m:
        raise ValueError(f"not a model URI: {uri} (use models:/NAME@ALIAS or models:/NAME/VERSION)")
    client, _ = client_and_experiment(cfg)
    mv = (client.get_model_version_by_alias(m["name"], m["alias"]) if m["alias"]
          else client.get_model_version(m["name"], m["version"]))
    dst = tempfile.mkdtemp(prefix="lakesift-model-")
    local = mlflow.artifacts.download_artifacts(artifact_uri=mv.source, dst_path=dst, tracking_uri=tracking_uri(cfg))
    # a folder name unique per download, so shipping two models to executors never collides
    unique = os.path.join(dst, f"{m['name']}-v{mv.version}-{os.path.basename(dst)}")
    os.rename(local, unique)
    return unique, m["name"], str(mv.version)


class JobRun:
    """Handle on one MLflow run: what a job logs while it works."""

    def __init__(self, client, run_id: str, cfg: JobConfig):
        self.client = client
        self.run_id = run_id
        self.cfg = cfg
        self.counts: dict[str, float] = {}
        self.versions: dict[str, int] = {}

    def params(self, **params) -> None:
        from mlflow.entities import Param

        items = [Param(k, "" if v is None else str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def metrics(self, step: int | None = None, **values: float) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step or 0) for k, v in values.items() if v is not None]
        if step is None:
            self.counts.update({k: float(v) for k, v in values.items() if v is not None})
        for i in range(0, len(items), 500):
            self.client.log_batch(self.run_id, metrics=items[i:i + 500])

    def table_read(self, table: str, version: int) -> None:
        self.versions[f"read.{table}"] = version
        self.params(**{f"read.{table}": version})

    def table_written(self, table: str, version: int) -> None:
        self.versions[f"wrote.{table}"] = version
        self.params(**{f"wrote.{table}": version})

    def text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def figure(self, figure, artifact_file: str) -> None:
        """Log a matplotlib figure, then close it (pyplot keeps every open figure alive)."""
        import matplotlib.pyplot as plt

        self.client.log_figure(self.run_id, figure, artifact_file)
        plt.close(figure)

    def file(self, path: str, artifact_path: str | None = None) -> None:
        """A file, or a folder's whole contents, under artifact_path."""
        if os.path.isdir(path):
            self.client.log_artifacts(self.run_id, path, artifact_path)
        else:
            self.client.log_artifact(self.run_id, path, artifact_path)

    def tag(self, **tags) -> None:
        for k, v in tags.items():
            self.client.set_tag(self.run_id, k, str(v))


def process_id(pid: int) -> str | None:
    """host:pid:start-time of a process of this machine (the start time tells a reused pid apart); None when
    there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            start = fh.read().rsplit(b")", 1)[1].split()[19].decode()      # field 22, after the command name
    except (OSError, IndexError):
        return None
    return f"{socket.gethostname()}:{pid}:{start}"


def close_abandoned_runs(client, experiment_id: str) -> list[str]:
    """Mark KILLED the RUNNING runs that a process of this machine opened and that ended without closing
    them (kill -9, a lost machine power): the MLflow UI then shows what happened. Every job does this when it
    starts (one search for RUNNING runs); returns the run ids closed."""
    host, closed = socket.gethostname(), []
    for run in client.search_runs([experiment_id], f"attributes.status = 'RUNNING' and tags.`{PROCESS_TAG}` LIKE '{host}:%'",
                                  max_results=1000):
        owner = run.data.tags[PROCESS_TAG]
        if process_id(int(owner.split(":")[1])) != owner:
            client.set_tag(run.info.run_id, "lakesift.error", f"abandoned: process {owner} ended without closing the run")
            client.set_terminated(run.info.run_id, "KILLED")
            closed.append(run.info.run_id)
    return closed


PROCESS_TAG = "lakesift.process"


def inputs_named(inputs) -> str:
    """Input files as a run name says them: the first one's name, and how many more."""
    names = [os.path.basename(str(p).rstrip("/")) or str(p) for p in inputs]
    return (names[0] + (f" +{len(names) - 1} more" if len(names) > 1 else "")) if names else "nothing"


@contextlib.contextmanager
def job_run(cfg: JobConfig, job: str, name: str | None = None, **tags: str) -> Iterator[JobRun]:
    """Open an MLflow run for `job`; child of the enclosing job run, if any; FAILED if the body raises.
    `name`: the run's name in the MLflow UI, what it did ("select dclm_like"), with the crawls the job was
    limited to; the `lakesift.job` tag keeps the job itself."""
    client, experiment_id = client_and_experiment(cfg)
    close_abandoned_runs(client, experiment_id)
    run_tags = {"lakesift.job": job, "lakesift.code_version": code_version(), **{k: str(v) for k, v in tags.items()}}
    process = process_id(os.getpid())
    if process:                                   # Linux: lets a later job tell an abandoned run from a live one
        run_tags[PROCESS_TAG] = process
    parent = _parent_run.get()
    if parent:
        run_tags["mlflow.parentRunId"] = parent
    crawls = sorted(getattr(cfg, "crawls", ()) or ())
    if crawls:
        name = f"{name or job} [{', '.join(crawls[:3])}{f' +{len(crawls) - 3}' if len(crawls) > 3 else ''}]"
    run = client.create_run(experiment_id, run_name=name or job, tags=run_tags)
    handle = JobRun(client, run.info.run_id, cfg)
    handle.params(**cfg.mlflow_params())
    token = _parent_run.set(run.info.run_id)
    started = time.perf_counter()
    try:
        yield handle
    except BaseException as exc:
        _parent_run.reset(token)
        with contextlib.suppress(Exception):
            handle.metrics(seconds=time.perf_counter() - started)
            handle.tag(**{"lakesift.error": f"{type(exc).__name__}: {exc}"[:4000]})
        client.set_terminated(run.info.run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    _parent_run.reset(token)
    handle.metrics(seconds=time.perf_counter() - started)
    client.set_terminated(run.info.run_id, "FINISHED")
