"""The Databricks Asset Bundle in dbx/: every task's command line is accepted by our parser, and the YAML
fits the bundle's resource classes (databricks-bundles' Job, MlflowExperiment, RegisteredModel, which reject
unknown fields and wrong types) as far as that can be checked without a workspace."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from jobs.cli import build_parser

DBX = Path(__file__).resolve().parents[1] / "dbx"
TOP_LEVEL = {"bundle", "include", "variables", "artifacts", "targets", "resources", "workspace", "sync", "permissions",
             "run_as", "presets", "experimental"}


def load_bundle() -> tuple[dict, dict]:
    root = yaml.safe_load((DBX / "databricks.yml").read_text())
    resources: dict = {}
    for pattern in root.get("include", []):
        for path in sorted(DBX.glob(pattern)):
            for kind, items in yaml.safe_load(path.read_text())["resources"].items():
                for key, value in items.items():
                    assert key not in resources.get(kind, {}), f"{kind}.{key} declared twice"
                    resources.setdefault(kind, {})[key] = (path, value)
    return root, resources


def substitute(value, variables: dict):
    """${var.x} -> the variable's default; {{dynamic}} values -> a placeholder."""
    if isinstance(value, str):
        value = re.sub(r"\$\{var\.([A-Za-z_]+)\}", lambda m: str(variables[m.group(1)]["default"]), value)
        return re.sub(r"\{\{[^}]+\}\}", "0123456789abcdef", value)
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, variables) for k, v in value.items()}
    return value


def test_bundle_top_level_and_targets():
    root, resources = load_bundle()
    assert set(root) <= TOP_LEVEL and root["bundle"]["name"] == "lakesift"
    assert {"dev", "prod"} <= set(root["targets"])
    assert [t for t, v in root["targets"].items() if v.get("default")] == ["dev"]
    for target in root["targets"].values():
        assert set(target.get("variables", {})) <= set(root["variables"])
    assert {"jobs", "experiments", "registered_models"} <= set(resources)
    used = set(re.findall(r"\$\{var\.([A-Za-z_]+)\}", "".join(p.read_text() for p in DBX.rglob("*.yml"))))
    assert used <= set(root["variables"]), f"undeclared variables {used - set(root['variables'])}"
    artifact = root["artifacts"]["lakesift_wheel"]
    assert artifact["type"] == "whl" and (DBX / artifact["path"] / "pyproject.toml").is_file()


def test_resources_fit_the_bundle_schema():
    from databricks.bundles.experiments import MlflowExperiment
    from databricks.bundles.jobs import Job
    from databricks.bundles.registered_models import RegisteredModel

    root, resources = load_bundle()
    classes = {"jobs": Job, "experiments": MlflowExperiment, "registered_models": RegisteredModel}
    for kind, items in resources.items():
        for key, (_, value) in items.items():
            classes[kind].from_dict(substitute(value, root["variables"]))      # raises on unknown fields and types


def test_pipeline_runs_every_stage_in_order_with_gpu_where_needed():
    _, resources = load_bundle()
    job = resources["jobs"]["lakesift_pipeline"][1]
    tasks = {t["task_key"]: t for t in job["tasks"]}
    commands = {key: t["python_wheel_task"]["parameters"][0] for key, t in tasks.items()}
    for a, b in (("ingest", "extract"), ("extract", "dedup"), ("extract", "classify"), ("classify", "select"),
                 ("score_neural", "select"), ("select", "export"), ("select", "train_proxy"), ("train_proxy", "eval_proxy")):
        assert a in ancestors(tasks, b), f"{b} does not run after {a}"
    assert {k for k, t in tasks.items() if t["job_cluster_key"] == "gpu"} == {"score_neural", "train_proxy", "eval_proxy"}
    assert set(commands.values()) >= {"ingest", "extract", "dedup", "classify", "score-neural", "select", "export",
                                      "train-proxy", "eval-proxy"}
    assert job["schedule"]["quartz_cron_expression"]


def ancestors(tasks: dict, key: str) -> set[str]:
    out, todo = set(), [d["task_key"] for d in tasks[key].get("depends_on", [])]
    while todo:
        k = todo.pop()
        if k not in out:
            out.add(k)
            todo += [d["task_key"] for d in tasks[k].get("depends_on", [])]
    return out


def all_tasks():
    root, resources = load_bundle()
    for key, (path, job) in resources["jobs"].items():
        for task in job["tasks"]:
            yield pytest.param(path, task, root["variables"], id=f"{key}.{task['task_key']}")


@pytest.mark.parametrize("path,task,variables", list(all_tasks()))
def test_every_task_command_is_accepted_by_the_cli(path, task, variables):
    wheel = task["python_wheel_task"]
    assert wheel["package_name"] == "lakesift" and wheel["entry_point"] == "lakesift"
    args = build_parser().parse_args(substitute(wheel["parameters"], variables))       # SystemExit on a bad flag
    assert args.command == wheel["parameters"][0] and args.catalog and args.tracking_uri == "databricks"
    (lib,) = task["libraries"]
    assert (path.parent / lib["whl"]).parent.resolve() == DBX.parent / "dist"           # where `make dist` writes
