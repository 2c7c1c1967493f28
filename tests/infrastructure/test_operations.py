"""Operations held by template.yaml: the dashboard shows every metric the code emits, the
alarms fire before the dead-letter queues fill, the saved queries read every function's
logs. The metric names are found by reading the code (not by trusting the catalog), so a
metric added anywhere without a catalog entry fails here, by name."""

from __future__ import annotations

import ast
import functools
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from attribute_bridge import handling
from attribute_bridge import metric_names as names

from localdev.template import _load_yaml, load_template

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_TEXT = (REPO / "template.yaml").read_text(encoding="utf-8")
RAW: dict[str, Any] = _load_yaml(TEMPLATE_TEXT)
RESOURCES: dict[str, Any] = RAW["Resources"]
CODE = sorted(
    [
        *(REPO / "layers" / "shared" / "attribute_bridge").rglob("*.py"),
        *(REPO / "functions").glob("*/*.py"),
    ]
)
SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


def load_generator() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("dashboard", REPO / "scripts" / "dashboard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------- the code's names


def _wrappers(tree: ast.Module) -> dict[str, tuple[str, int]]:
    """Functions of a module that pass one of their parameters on as a metric name:
    name -> (parameter, position). Powertools' add_metric(name=...) and the catalog's
    emit(name) are the roots; `def count(metric): metrics.add_metric(name=metric)` is one."""
    found = {"add_metric": ("name", -1), "emit": ("name", 0)}
    changed = True
    while changed:
        changed = False
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef) or function.name in found:
                continue
            parameters = [a.arg for a in function.args.args + function.args.kwonlyargs]
            for call in ast.walk(function):
                argument = _metric_argument(call, found) if isinstance(call, ast.Call) else None
                if isinstance(argument, ast.Name) and argument.id in parameters:
                    position = parameters.index(argument.id)
                    found[function.name] = (argument.id, position)
                    changed = True
                    break
    return found


def _called(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute) and call.func.attr in ("add_metric", "emit"):
        return call.func.attr
    return None


def _metric_argument(call: ast.Call, wrappers: dict[str, tuple[str, int]]) -> ast.expr | None:
    name = _called(call)
    if name not in wrappers:
        return None
    parameter, position = wrappers[name]
    for keyword in call.keywords:
        if keyword.arg == parameter:
            return keyword.value
    return call.args[position] if 0 <= position < len(call.args) else None


def emitted_names(
    sources: list[tuple[str, str]] | None = None,
) -> tuple[dict[str, list[str]], list[str]]:
    """Metric names the code emits -> where; and the calls whose name could not be read."""
    emitted: dict[str, list[str]] = {}
    unreadable: list[str] = []
    emitted_outcomes = set(handling.OUTCOME_METRICS.values())
    if sources is None:
        sources = [(str(p.relative_to(REPO)), p.read_text(encoding="utf-8")) for p in CODE]
    for path, text in sources:
        tree = ast.parse(text)
        wrappers = _wrappers(tree)
        passed_on = {parameter for parameter, _ in wrappers.values()}
        for call in ast.walk(tree):
            if not isinstance(call, ast.Call):
                continue
            argument = _metric_argument(call, wrappers)
            if argument is None:
                continue
            where = f"{path}:{call.lineno}"
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                emitted.setdefault(argument.value, []).append(where)
            elif isinstance(argument, ast.Attribute) and hasattr(names, argument.attr):
                emitted.setdefault(getattr(names, argument.attr), []).append(where)
            elif isinstance(argument, ast.Name) and argument.id in passed_on:
                pass  # a wrapper passing its parameter on: its callers are read
            elif "OUTCOME_METRICS" in ast.unparse(argument):
                for name in emitted_outcomes:
                    emitted.setdefault(name, []).append(where)
                emitted.setdefault(names.OTHER_OUTCOME, []).append(where)
            else:
                unreadable.append(f"{where}: {ast.unparse(call)}")
    return emitted, unreadable


def test_the_code_reading_finds_the_metrics_of_every_emitting_place() -> None:
    emitted, _ = emitted_names()
    # one of each kind: handling's outcomes, a handler's literal, the API's _count/_error,
    # the Genesys client's and the external system's catalog constants
    for name in ("Fetched", "Rejected", "SyncCapReached", "ApiRead", "Conflict"):
        assert name in emitted, name
    assert names.GENESYS_RATE_LIMIT_HEADROOM in emitted
    assert names.EXTERNAL_LATENCY in emitted
    assert any("attributes_api" in where for where in emitted["NotFound"])


def test_the_code_reading_sees_a_new_metric_however_it_is_emitted() -> None:
    new_code = """
def _count(metric):
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)

def _error(status, metric, message):
    _count(metric)

def handler():
    metrics.add_metric(name="BrandNew", unit="Count", value=1)
    _error(400, "ViaError", "bad")
    metric_names.emit(metric_names.GENESYS_REQUEST)
    metrics.add_metric(name=pick(), unit="Count", value=1)
"""
    emitted, unreadable = emitted_names([("functions/new/app.py", new_code)])
    assert set(emitted) == {"BrandNew", "ViaError", names.GENESYS_REQUEST}
    assert unreadable == [
        "functions/new/app.py:12: metrics.add_metric(name=pick(), unit='Count', value=1)"
    ]


def test_every_metric_the_code_emits_is_in_the_catalog() -> None:
    emitted, unreadable = emitted_names()
    missing = {name: where for name, where in emitted.items() if name not in names.BY_NAME}
    assert not missing, (
        "metrics emitted but missing from layers/shared/attribute_bridge/metric_names.py "
        f"CATALOG (add them, then `make dashboard`): {sorted(missing)} at {missing}"
    )
    assert not unreadable, f"metric names this test cannot read (use a literal): {unreadable}"


def test_the_catalog_names_only_metrics_the_code_emits() -> None:
    emitted, _ = emitted_names()
    stale = sorted(set(names.BY_NAME) - set(emitted))
    assert not stale, f"catalog entries nothing emits any more (remove them): {stale}"


def test_every_handler_function_has_its_dashboard_panels() -> None:
    handled = set()
    for path in (REPO / "functions").glob("*/app.py"):
        for call in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(call, ast.Call) and _called(call) == "handle":
                (function,) = [k.value for k in call.keywords if k.arg == "function"]
                assert isinstance(function, ast.Constant)
                handled.add(function.value)
    missing = sorted(handled - set(names.FUNCTIONS))
    assert not missing, f"handlers missing from metric_names.FUNCTIONS: {missing}"
    for resources in names.FUNCTIONS.values():
        for logical_id in resources.values():
            assert logical_id is None or logical_id in RESOURCES, logical_id


# ---------------------------------------------------------------------------- the dashboard


def dashboard_body() -> dict[str, Any]:
    (dashboard,) = [r for r in RESOURCES.values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    text = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    body: dict[str, Any] = json.loads(SUB_VARIABLE.sub("placeholder", text))
    return body


def dashboard_metrics() -> Iterator[tuple[str, str, dict[str, str]]]:
    for widget in dashboard_body()["widgets"]:
        for row in widget["properties"].get("metrics", []):
            namespace, metric, *rest = row
            pairs = [item for item in rest if isinstance(item, str)]
            yield namespace, metric, dict(zip(pairs[::2], pairs[1::2], strict=True))


def test_the_template_holds_what_the_generator_writes() -> None:
    generator = load_generator()
    assert generator.rewritten(TEMPLATE_TEXT) == TEMPLATE_TEXT, (
        "template.yaml's generated operations block is stale: run `make dashboard`"
    )


def test_every_emitted_metric_is_on_the_dashboard_for_each_of_its_sources() -> None:
    emitted, _ = emitted_names()
    variables = RAW["Globals"]["Function"]["Environment"]["Variables"]
    namespace = variables["POWERTOOLS_METRICS_NAMESPACE"]
    shown = {
        (metric, dimensions.get("function", names.SERVICE_WIDE))
        for ns, metric, dimensions in dashboard_metrics()
        if ns == namespace and dimensions.get("service") == variables["POWERTOOLS_SERVICE_NAME"]
    }
    missing = sorted(
        f"{metric.name} ({source})"
        for metric in names.CATALOG
        for source in metric.sources
        if (metric.name, source) not in shown
    )
    assert not missing, f"metrics not on the dashboard (run `make dashboard`): {missing}"
    assert not set(emitted) - {name for name, _ in shown}


def test_the_dashboard_shows_each_function_dead_letter_queue_and_alarm() -> None:
    text = RESOURCES["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    referenced = set(SUB_VARIABLE.findall(text))
    functions = [k for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"]
    queues = [k for k, v in RESOURCES.items() if v["Type"] == "AWS::SQS::Queue"]
    alarms = [k for k, v in RESOURCES.items() if v["Type"] == "AWS::CloudWatch::Alarm"]
    missing = sorted(
        ({*functions, *(f"{q}.QueueName" for q in queues), *(f"{a}.Arn" for a in alarms)})
        - referenced
    )
    assert not missing, (
        f"not on the dashboard: {missing} (a function: add it to metric_names.FUNCTIONS, "
        "with queue None if it has no dead-letter queue; then `make dashboard`)"
    )


def test_dashboard_widgets_fit_the_grid_without_overlapping() -> None:
    taken: set[tuple[int, int]] = set()
    for widget in dashboard_body()["widgets"]:
        assert widget["x"] >= 0 and widget["x"] + widget["width"] <= 24
        cells = {
            (widget["x"] + dx, widget["y"] + dy)
            for dx in range(widget["width"])
            for dy in range(widget["height"])
        }
        assert not cells & taken, widget["properties"].get("title")
        taken |= cells


def sam_transformed() -> dict[str, Any]:
    """The template after CloudFormation's LanguageExtensions (its Fn::Ifs resolved for the
    defaults) and the real SAM transform: what would be deployed."""
    from samtranslator.translator.transform import transform

    chosen = load_template(REPO / "template.yaml")

    def resolve_ifs(node: Any) -> Any:
        if isinstance(node, list):
            return [resolve_ifs(item) for item in node]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Fn::If"}:
            name, when_true, when_false = node["Fn::If"]
            return resolve_ifs(when_true if chosen.condition(name) else when_false)
        resolved = {key: resolve_ifs(value) for key, value in node.items()}
        return {k: v for k, v in resolved.items() if v != {"Ref": "AWS::NoValue"}}

    template = resolve_ifs(_load_yaml(TEMPLATE_TEXT))
    for resource in template["Resources"].values():
        for uri in ("CodeUri", "ContentUri"):
            if uri in resource.get("Properties", {}):
                resource["Properties"][uri] = "s3://artifacts/code.zip"

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    translated: dict[str, Any] = transform(template, {}, NoManagedPolicies())
    return translated


@functools.cache
def _deployed_resources() -> dict[str, Any]:
    resources: dict[str, Any] = sam_transformed()["Resources"]
    return resources


@pytest.fixture
def deployed() -> dict[str, Any]:
    """Built once per run, inside a test (the SAM translator needs the test's region)."""
    return _deployed_resources()


GETATT_TYPES = {
    "QueueName": "AWS::SQS::Queue",
    "Arn": "AWS::CloudWatch::Alarm",
}


def test_every_name_the_deployed_dashboard_uses_exists(deployed: dict[str, Any]) -> None:
    text = deployed["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    for variable in SUB_VARIABLE.findall(text):
        if variable.startswith("AWS::"):
            continue
        logical_id, _, attribute = variable.partition(".")
        assert logical_id in deployed, variable
        kind = GETATT_TYPES.get(attribute, "AWS::Lambda::Function")
        assert deployed[logical_id]["Type"] == kind, variable


def test_the_saved_queries_read_every_function_log_group(deployed: dict[str, Any]) -> None:
    functions = {k for k, v in deployed.items() if v["Type"] == "AWS::Lambda::Function"}
    groups = {
        k: v["Properties"]["LogGroupName"]["Fn::Sub"]
        for k, v in deployed.items()
        if v["Type"] == "AWS::Logs::LogGroup" and "LogGroupName" in v["Properties"]
    }
    function_groups = {k for k, name in groups.items() if name.startswith("/aws/lambda/${")}
    assert {SUB_VARIABLE.search(groups[k]).group(1) for k in function_groups} == functions  # type: ignore[union-attr]
    queries = [v for v in deployed.values() if v["Type"] == "AWS::Logs::QueryDefinition"]
    assert len(queries) == 2
    for query in queries:
        read = {ref["Ref"] for ref in query["Properties"]["LogGroupNames"]}
        assert read == function_groups


# ---------------------------------------------------------------------------- the alarms

EARLY_ALARMS = {
    "StepsFailingAlarm": names.FAILED,
    "InputRejectedAlarm": names.REJECTED,
    "GenesysRateLimitedAlarm": names.GENESYS_RATE_LIMITED,
    "ExternalSystemFailingAlarm": names.EXTERNAL_FAILURE,
    "TokenMintFailedAlarm": names.FAILED,
}


@pytest.mark.parametrize(("alarm", "metric"), sorted(EARLY_ALARMS.items()))
def test_early_alarms_watch_their_metric_from_every_source(
    deployed: dict[str, Any], alarm: str, metric: str
) -> None:
    properties = deployed[alarm]["Properties"]
    queries = properties["Metrics"]
    stats = [q for q in queries if "MetricStat" in q]
    assert len(stats) <= 10  # CloudWatch's limit for a metric math alarm
    (watched,) = [q for q in queries if q.get("ReturnData")]
    ids = {q["Id"] for q in queries}
    assert set(re.findall(r"\b[a-z]\w*\b", watched["Expression"])) - {"FILL", "SUM"} <= ids | {
        "IF",
        "MAX",
    }
    read = {
        (
            q["MetricStat"]["Metric"]["MetricName"],
            {d["Name"]: d["Value"] for d in q["MetricStat"]["Metric"]["Dimensions"]}.get(
                "function", names.SERVICE_WIDE
            ),
        )
        for q in stats
        if q["MetricStat"]["Metric"]["Namespace"] == "GenesysParticipantAttributes"
    }
    sources = {source for name, source in read if name == metric}
    expected = (
        {"TokenRefresher"}
        if alarm == "TokenMintFailedAlarm"
        else set(names.BY_NAME[metric].sources)
    )
    assert sources == expected
    assert properties["TreatMissingData"] == "notBreaching"
    assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    # before the dead-letter queue: decided within five minutes of the trouble
    period = stats[0]["MetricStat"]["Period"]
    assert period * properties["EvaluationPeriods"] <= 300


def test_every_alarm_has_a_runbook_line_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    operating = readme.split("## Operating it", 1)[1].split("\n## ", 1)[0]
    for alarm in (k for k, v in RESOURCES.items() if v["Type"] == "AWS::CloudWatch::Alarm"):
        short = alarm.removesuffix("Alarm")
        if short.endswith("DLQ"):
            continue  # the dead-letter alarms share the replay section
        assert f"**{short}**" in operating, f"README, Operating it: no runbook line for {alarm}"
