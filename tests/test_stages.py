"""The stage declarations are the one source: the command line, `lakesift run`'s plan and the Databricks bundle
agree with them, every default is stated once, and the code has no import cycles."""
from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from jobs import cli, pipeline
from jobs.runtime.config import JobConfig
from jobs.stages import BY_NAME, STAGES
from tests.test_dbx_bundle import ancestors, load_bundle, substitute

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = {  # a value for each required option, to build a Config from the command line
    "inputs": ["a.warc.gz"], "model": "models:/m@champion", "name": "m", "positives": ["ref.txt"], "kind": "embedding",
    "scorer": "embedding", "recipe": "raw", "run": "0123456789abcdef0123456789abcdef", "recipes": ["raw", "dclm_like"],
}


def required_args(config: type) -> tuple[list[str], dict]:
    argv, values = [], {}
    for f in dataclasses.fields(config):
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in {
                b.name for b in dataclasses.fields(JobConfig)}:
            value = REQUIRED[f.name]
            argv += [f.metadata["flag"] or f"--{f.name.replace('_', '-')}", *(value if isinstance(value, list) else [value])]
            values[f.name] = tuple(value) if isinstance(value, list) else value
    return argv, values


def test_stage_names_are_unique_and_every_option_has_help():
    assert len(BY_NAME) == len(STAGES)
    for stage in STAGES:
        for f in stage.options():
            assert f.metadata.get("help"), f"{stage.name}: option {f.name} has no help"


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_cli_defaults_are_the_config_defaults(stage, tmp_path, monkeypatch):
    """Parsing only the required options gives exactly the Config built with its own defaults."""
    monkeypatch.setenv("LAKESIFT_EVALS", str(tmp_path))          # decontaminate needs evaluation sets
    monkeypatch.setenv("LAKESIFT_HELDOUT", str(tmp_path / "h.txt"))
    (tmp_path / "ref.txt").write_text("x")
    monkeypatch.chdir(tmp_path)
    argv, values = required_args(stage.config)
    args = cli.build_parser().parse_args([stage.name, "--home", str(tmp_path), *argv])
    assert cli.make_config(stage.config, args) == stage.config(home=str(tmp_path), **values)


def test_cli_options_reach_the_config(tmp_path):
    args = cli.build_parser().parse_args(["dedup", "--home", str(tmp_path), "--bands", "9", "--crawl", "A", "--crawl", "B",
                                          "--auto-bands", "--verify", "estimate"])
    cfg = cli.make_config(BY_NAME["dedup"].config, args)
    assert (cfg.bands, cfg.crawls, cfg.auto_bands, cfg.verify, cfg.rows) == (9, ("A", "B"), True, "estimate", 8)
    args = cli.build_parser().parse_args(["train-quality", "--home", str(tmp_path), "--name", "q", "--positives", "p",
                                          "--components", "fasttext,length", "heuristics"])
    assert cli.make_config(BY_NAME["train-quality"].config, args).components == ("fasttext", "length", "heuristics")
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["dedup", "--verify", "maybe"])


def test_run_plan_follows_the_stage_order(tmp_path):
    ref, evals = tmp_path / "ref.txt", tmp_path / "evals"
    ref.write_text("reference text")
    evals.mkdir()
    cfg = pipeline.Config(home=str(tmp_path), inputs=("x.warc.gz",), recipes=("raw", "dclm_like"),
                          reference_text=(str(ref),), evals=str(evals), heldout=(str(ref),), neural="embedding",
                          ablate="tiny")
    steps = pipeline.plan(cfg)
    order = [STAGES.index(s.stage) for s in steps]
    assert order == sorted(order)
    assert {s.stage.name for s in steps} == {s.name for s in STAGES} - {"train-proxy", "eval-proxy"}
    assert [s.label for s in steps if s.stage.name == "select"] == ["select raw", "select dclm_like"]


def test_run_checks_its_inputs_before_spark_starts(tmp_path):
    with pytest.raises(ValueError, match="--reference-text"):
        pipeline.Config(home=str(tmp_path), inputs=("x",), recipes=("raw", "dclm_like"))
    with pytest.raises(ValueError, match="not found: .*nope.txt"):
        pipeline.Config(home=str(tmp_path), inputs=("x",), recipes=("raw",), reference_text=(str(tmp_path / "nope.txt"),))
    with pytest.raises(ValueError, match="unknown recipe|not found|no recipe"):
        pipeline.Config(home=str(tmp_path), inputs=("x",), recipes=("no_such_recipe",))


def test_bundle_tasks_agree_with_the_stages():
    """Every task runs a stage's command, after every task whose stage writes what it reads, and restates no
    default."""
    root, resources = load_bundle()
    job = resources["jobs"]["lakesift_pipeline"][1]
    tasks = {t["task_key"]: t for t in job["tasks"]}
    stage_of = {k: BY_NAME[t["python_wheel_task"]["parameters"][0]] for k, t in tasks.items()}
    for key, stage in stage_of.items():
        for other, writer in stage_of.items():
            if other != key and set(writer.writes) & set(stage.reads) and STAGES.index(writer) < STAGES.index(stage):
                assert other in ancestors(tasks, key), f"task {key} reads what {other} writes but does not wait for it"
        params = substitute(tasks[key]["python_wheel_task"]["parameters"], root["variables"])
        args = cli.build_parser().parse_args(params)
        given = set(params)
        for f in stage.options():
            flag = f.metadata["flag"] or f"--{f.name.replace('_', '-')}"
            if flag in given and f.default is not dataclasses.MISSING and f.default not in (None, ()):
                value = getattr(args, f.name)
                assert value != f.default, f"task {key} restates the default {flag} {f.default}"


def test_no_import_cycles():
    """Module-level and function-level imports among our packages form no cycle."""
    modules = {}
    for package in ("jobs", "udfs", "schemas"):
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            modules[name] = path
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            deps |= {t for t in targets if t in modules and t != name}
        graph[name] = deps
    # package __init__ modules are namespaces here: a cycle through one is not a real cycle
    graph = {k: {d for d in v if modules[d].name != "__init__.py"} for k, v in graph.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(trail[trail.index(dep):] + [node, dep])
                                     if dep in trail else f"import cycle: {node} -> {dep}")
            if dep not in state:
                visit(dep, trail + [node])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
