"""scripts/trail.py on the JSON logs the real functions write in a local run (the sandbox
sends them to stderr): the steps of one conversation in order, with function, outcome and
reason; the same through CloudWatch Logs Insights (moto) with --stack; usage errors."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localdev.runner import run_chain
from localdev.sandbox import Sandbox
from localdev.template import _load_yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "trail.py"
SAMPLE = json.loads((REPO / "events" / "genesys-voice-customer-start.json").read_text())


def load_trail() -> Any:
    spec = importlib.util.spec_from_file_location("trail", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def start_event(conversation_id: str, participant_id: str) -> dict[str, Any]:
    event = copy.deepcopy(SAMPLE)
    event["id"] = str(uuid.uuid4())
    detail = event["detail"]
    detail["topicName"] = f"v2.detail.events.conversation.{conversation_id}.customer.start"
    detail["metadata"]["CorrelationId"] = str(uuid.uuid4())
    detail["eventBody"].update(conversationId=conversation_id, participantId=participant_id)
    return event


def live_call(box: Sandbox) -> tuple[str, dict[str, Any]]:
    # The token first, as the schedule mints it: locally a function with no token runs the
    # refresher in its own process, and the refresher's lines would join the trail.
    box.invoke("TokenRefresherFunction", {"force": True})
    conversation = box.emulator.create_conversation(
        media_type="VOICE",
        participants=[{"purpose": "customer", "attributes": {"case_id": "CASE-1001"}}],
    )
    (customer,) = conversation["participants"]
    return conversation["id"], start_event(conversation["id"], customer["id"])


def run_trail(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def columns(output: str) -> list[str]:
    """The step lines after their timestamp (date and time), spaces collapsed."""
    return [" ".join(line.split()[2:]) for line in output.splitlines()[1:]]


def test_the_trail_of_a_local_run_lists_its_steps_in_order(
    box: Sandbox, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    conversation_id, event = live_call(box)
    other_id, other_event = live_call(box)  # another conversation at the same time
    capfd.readouterr()
    run_chain(box, event)
    run_chain(box, other_event)
    logs = tmp_path / "pipeline.log"
    logs.write_text(capfd.readouterr().err)

    # upper case, as a person may paste it from Genesys: ids are compared case-insensitively
    result = run_trail(conversation_id.upper(), "--logs", str(logs))

    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0]
    correlation = event["detail"]["metadata"]["CorrelationId"]
    assert header == f"conversation {conversation_id}; correlation ids {correlation}"
    assert columns(result.stdout) == [
        "FetchAttributesFunction fetched",
        "SyncExternalFunction synced",
        "PatchAttributesFunction patched",
    ]
    assert other_id not in result.stdout


def test_the_trail_says_why_a_step_did_nothing_or_failed(
    box: Sandbox, capfd: pytest.CaptureFixture[str]
) -> None:
    gone = str(uuid.uuid4())
    ended_id, ended_event = live_call(box)
    box.emulator.end_conversation(ended_id)
    failing_id, failing_event = live_call(box)
    capfd.readouterr()
    box.invoke("FetchAttributesFunction", start_event(gone, str(uuid.uuid4())))
    box.invoke("FetchAttributesFunction", ended_event)
    box.external.fail_next("401")
    run_chain(box, failing_event)
    logs = capfd.readouterr().err

    trails = {
        conversation: run_trail(conversation, "--logs", "-", stdin=logs).stdout
        for conversation in (gone, ended_id, failing_id)
    }

    assert columns(trails[gone]) == [
        "FetchAttributesFunction not_found conversation not found (gone)"
    ]
    assert columns(trails[ended_id]) == ["FetchAttributesFunction dropped conversation has ended"]
    refused = "external system refused our credentials (401)"
    assert columns(trails[failing_id]) == [
        "FetchAttributesFunction fetched",
        f"SyncExternalFunction error {refused}",  # "Step failed; dead-lettered"
        f"SyncExternalFunction failed {refused}",  # "Sent to the dead-letter queue"
    ]


def test_nothing_found_is_said_on_stderr_with_status_1(tmp_path: Path) -> None:
    logs = tmp_path / "empty.log"
    logs.write_text('{"level":"INFO","message":"unrelated"}\nnot json\n')
    conversation_id = str(uuid.uuid4())

    result = run_trail(conversation_id, "--logs", str(logs))

    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (
        f"trail.py: no log line about conversation {conversation_id} in {logs}\n"
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "the following arguments are required"),
        (["not-a-uuid", "--logs", "-"], "CONVERSATION_ID must be a UUID"),
        ([str(uuid.uuid4())], "one of the arguments --stack --logs is required"),
        ([str(uuid.uuid4()), "--logs", "/nonexistent/trail.log"], "cannot read --logs"),
        ([str(uuid.uuid4()), "--stack", "s", "--logs", "-"], "not allowed with argument"),
        ([str(uuid.uuid4()), "--stack", "s", "--hours", "0"], "--hours must be > 0"),
    ],
)
def test_usage_errors_are_one_line_and_status_2(args: list[str], says: str) -> None:
    result = run_trail(*args, stdin="")
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and says in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_the_stack_trail_runs_logs_insights_over_the_stack_function_log_groups(
    box: Sandbox, capfd: pytest.CaptureFixture[str]
) -> None:
    conversation_id, event = live_call(box)
    other_id, other_event = live_call(box)
    capfd.readouterr()
    run_chain(box, event)
    run_chain(box, other_event)
    records = [json.loads(line) for line in capfd.readouterr().err.splitlines() if "{" in line]
    local = run_trail(conversation_id, "--logs", "-", stdin="\n".join(map(json.dumps, records)))
    trail = load_trail()
    names = ("FetchAttributes", "SyncExternal", "PatchAttributes")

    with mock_aws():
        groups: dict[str, Any] = {
            f"{name}Logs": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": {"LogGroupName": f"/aws/lambda/stack-{name}Function-X1"},
            }
            for name in names
        }
        groups["AccessLogs"] = {"Type": "AWS::Logs::LogGroup", "Properties": {}}
        boto3.client("cloudformation").create_stack(
            StackName="stack", TemplateBody=json.dumps({"Resources": groups})
        )
        logs = boto3.client("logs")
        for name in names:  # both conversations' lines, as in a real log group
            group = f"/aws/lambda/stack-{name}Function-X1"
            logs.create_log_stream(logGroupName=group, logStreamName="instance")
            logs.put_log_events(
                logGroupName=group,
                logStreamName="instance",
                logEvents=[
                    {"timestamp": _epoch_ms(record["timestamp"]), "message": json.dumps(record)}
                    for record in records
                    if record.get("function_name") == f"{name}Function"
                ],
            )
        status = trail.main([conversation_id, "--stack", "stack"], aws=boto3.client)

    assert status == 0
    assert capfd.readouterr().out == local.stdout
    assert columns(local.stdout)[0] == "FetchAttributesFunction fetched"
    assert other_id not in local.stdout


def _epoch_ms(timestamp: str) -> int:
    from datetime import datetime

    return int(datetime.strptime(timestamp, "%Y-%m-%d %H:%M:%S,%f%z").timestamp() * 1000)


def test_the_saved_queries_filter_as_the_script_does() -> None:
    trail = load_trail()
    resources = _load_yaml((REPO / "template.yaml").read_text())["Resources"]
    conversation = resources["ConversationTrailQuery"]["Properties"]["QueryString"]
    correlation = resources["CorrelationTrailQuery"]["Properties"]["QueryString"]
    assert f"| {trail.conversation_filter('CONVERSATION-ID')}\n" in conversation
    assert f"| {trail.correlation_filter(['CORRELATION-ID'])}\n" in correlation


def test_a_stack_aws_cannot_read_is_one_line_and_status_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    trail = load_trail()
    with mock_aws():
        status = trail.main([str(uuid.uuid4()), "--stack", "missing"], aws=boto3.client)
    assert status == 1
    printed = capsys.readouterr()
    assert printed.out == ""
    (line,) = printed.err.splitlines()
    assert line.startswith("trail.py: cannot read stack missing, last 24 h: ")
    assert "does not exist" in line
