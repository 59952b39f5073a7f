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


def substitute(value, variables: dict, resources: dict | None = None):
    """${var.x} -> the variable's default; ${resources.KIND.KEY.FIELD} -> that field of the resource (its
    variables substituted); {{dynamic}} values -> a placeholder."""
    if isinstance(value, str):
        value = re.sub(r"\$\{var\.([A-Za-z_]+)\}", lambda m: str(variables[m.group(1)]["default"]), value)
        if resources is not None:
            value = re.sub(r"\$\{resources\.(\w+)\.(\w+)\.(\w+)\}",
                           lambda m: str(substitute(resources[m.group(1)][m.group(2)][1][m.group(3)], variables)), value)
        return re.sub(r"\{\{[^}]+\}\}", "0123456789abcdef", value)
    if isinstance(value, list):
        return [substitute(v, variables, resources) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, variables, resources) for k, v in value.items()}
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
            classes[kind].from_dict(substitute(value, root["variables"], resources))   # raises on unknown fields and types


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
            yield pytest.param(path, job, task, root["variables"], resources, id=f"{key}.{task['task_key']}")


@pytest.mark.parametrize("path,job,task,variables,resources", list(all_tasks()))
def test_every_task_command_is_accepted_by_the_cli(path, job, task, variables, resources):
    wheel = task["python_wheel_task"]
    assert wheel["package_name"] == "lakesift" and wheel["entry_point"] == "lakesift"
    args = build_parser().parse_args(substitute(wheel["parameters"], variables, resources))   # SystemExit on a bad flag
    assert args.command == wheel["parameters"][0] and args.catalog and args.tracking_uri == "databricks"
    if "environment_key" in task:                  # serverless: the environment installs the wheel
        (env,) = [e for e in job["environments"] if e["environment_key"] == task["environment_key"]]
        (wheel_file,) = env["spec"]["dependencies"]
        assert "job_cluster_key" not in task and "libraries" not in task
    else:
        ((_, wheel_file),) = [next(iter(lib.items())) for lib in task["libraries"]]
    assert (path.parent / wheel_file).parent.resolve() == DBX.parent / "dist"          # where `make dist` writes


def dev_mode(resources: dict, user: str) -> dict:
    """The resources as `mode: development` deploys them: registered models' names get dev_<user>_ in front,
    experiments. last path component [dev <user>] (development mode as Databricks documents it)."""
    out = {kind: dict(items) for kind, items in resources.items()}
    for key, (path, model) in resources["registered_models"].items():
        out["registered_models"][key] = (path, {**model, "name": f"dev_{user}_{model['name']}"})
    for key, (path, exp) in resources["experiments"].items():
        folder, _, name = exp["name"].rpartition("/")
        out["experiments"][key] = (path, {**exp, "name": f"{folder}/[dev {user}] {name}"})
    return out


def test_tasks_use_the_names_the_bundle_deploys():
    """In dev mode the bundle renames the experiment and models: the tasks name them through the resources, so
    every task logs to the deployed experiment and reads and registers the deployed models."""
    root, resources = load_bundle()
    for deployed in (resources, dev_mode(resources, "ada")):
        (experiment,) = [substitute(e["name"], root["variables"]) for _, e in deployed["experiments"].values()]
        models = {substitute(f"{m['catalog_name']}.{m['schema_name']}.{m['name']}", root["variables"])
                  for _, m in deployed["registered_models"].values()}
        for _, job in deployed["jobs"].values():
            for task in job["tasks"]:
                argv = substitute(task["python_wheel_task"]["parameters"], root["variables"], deployed)
                args = build_parser().parse_args(argv)
                assert args.experiment == experiment, task["task_key"]
                named = [a.split("=", 1)[-1].removeprefix("models:/").split("@")[0] for a in argv
                         if "lakesift_quality" in a or "lakesift_embedding" in a]
                assert set(named) <= models, (task["task_key"], named, models)
        assert deployed is resources or all(m.startswith("main.lakesift_models.dev_ada_") for m in models)


SCHEMA = DBX.parents[1] / "shared" / "databricks" / "bundle-jsonschema.json"


def test_bundle_validates_against_the_databricks_bundle_schema():
    """databricks.yml with the files it includes, checked against the JSON schema `databricks bundle validate`
    uses (../shared/databricks; its Go-syntax patterns are matched with the `regex` package)."""
    import json

    import jsonschema
    import regex

    if not SCHEMA.is_file():
        pytest.skip(f"the bundle schema is not here ({SCHEMA}): it ships beside the project, not in it")
    schema = json.loads(SCHEMA.read_text())

    def pattern(validator, wanted, instance, _schema):
        if validator.is_type(instance, "string") and not regex.search(wanted, instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {wanted!r}")

    checker = jsonschema.validators.extend(jsonschema.validators.validator_for(schema), {"pattern": pattern})(schema)
    merged = yaml.safe_load((DBX / "databricks.yml").read_text())
    for pattern_ in merged.get("include", []):
        for path in sorted(DBX.glob(pattern_)):
            for kind, items in yaml.safe_load(path.read_text())["resources"].items():
                merged.setdefault("resources", {}).setdefault(kind, {}).update(items)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in checker.iter_errors(merged)]
    assert not errors, "\n".join(errors)
    assert {"lakesift_pipeline", "lakesift_pipeline_serverless"} <= set(merged["resources"]["jobs"])
    # a broken bundle is caught: an unknown task field
    merged["resources"]["jobs"]["lakesift_pipeline"]["tasks"][0]["cluster_typo"] = "x"
    assert any("cluster_typo" in e.message for e in checker.iter_errors(merged))
