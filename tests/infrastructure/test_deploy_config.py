"""README "Deploy" and samconfig.toml agree, and each environment deploys what it says.

samconfig.toml is read by the SAM CLI's own configuration reader (the one `sam deploy
--config-env X` uses, run in SAM's venv), not by a copy of its rules: an environment it
does not find resolves to nothing at all, which is how a deploy silently lost its stack
name, its capabilities and its parameters before.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from localdev.template import _load_yaml

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
SAMCONFIG = tomllib.loads((REPO / "samconfig.toml").read_text(encoding="utf-8"))
TEMPLATE: dict[str, Any] = _load_yaml((REPO / "template.yaml").read_text(encoding="utf-8"))
SAM_PYTHON = REPO / ".venv" / "sam" / "bin" / "python"
# Template parameters the dataactions branch adds (CONTRACT.md "Data actions"); once
# merged they are in template.yaml itself and this set can go.
PARAMETERS_PROMISED_BY_CONTRACT = {"GenesysOrgId"}

_RESOLVE = """
import json, sys
from pathlib import Path
import click
from samcli.cli.cli_config_file import ConfigProvider
from samcli.cli.types import CfnParameterOverridesType
from samcli.commands.deploy.command import cli as deploy
resolved = {}
with click.Context(deploy, info_name="deploy"):
    for env in sys.argv[2:]:
        config = ConfigProvider(section="parameters")(Path(sys.argv[1]), env, ["deploy"])
        overrides = config.get("parameter_overrides")
        config["parameter_overrides"] = (
            CfnParameterOverridesType().convert(overrides, None, None) if overrides else {}
        )
        resolved[env] = config
print(json.dumps(resolved))
"""


@cache
def sam_resolved(*environments: str) -> dict[str, dict[str, Any]]:
    """What `sam deploy --config-env ENV` takes from samconfig.toml, per environment."""
    result = subprocess.run(
        [str(SAM_PYTHON), "-c", _RESOLVE, str(REPO / "samconfig.toml"), *environments],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    resolved: dict[str, dict[str, Any]] = json.loads(result.stdout)
    return resolved


def deploy_section() -> str:
    start = README.index("\n## Deploy\n")
    end = README.index("\n## ", start + 1)
    return README[start:end]


def shell_commands(text: str) -> list[str]:
    """Commands in the ```sh blocks, continuation lines joined."""
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for command in block.replace("\\\n", " ").splitlines():
            command = command.strip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def sam_deploy_commands() -> list[str]:
    return [c for c in shell_commands(deploy_section()) if c.startswith("sam deploy")]


DEPLOY_ENVIRONMENTS = sorted(
    env for env, value in SAMCONFIG.items() if isinstance(value, dict) and "deploy" in value
)
README_ENVIRONMENTS = sorted(set(re.findall(r"--config-env[ =]([\w-]+)", README)))


def test_every_environment_the_readme_names_is_a_samconfig_deploy_environment() -> None:
    assert README_ENVIRONMENTS, "README names no environment"
    assert set(README_ENVIRONMENTS) <= set(DEPLOY_ENVIRONMENTS)
    assert DEPLOY_ENVIRONMENTS == ["dev", "prod"]
    assert "`dev` and `prod`" in deploy_section()


def test_readme_sam_deploy_commands_name_an_environment_and_no_overrides() -> None:
    commands = sam_deploy_commands()
    assert commands, "the Deploy section has no sam deploy command"
    for command in commands:
        environment = re.search(r"--config-env[ =]([\w-]+)", command)
        assert environment, f"{command!r}: without --config-env SAM uses [default]"
        assert environment.group(1) in DEPLOY_ENVIRONMENTS
        # On the command line it replaces samconfig's list instead of adding to it.
        assert "--parameter-overrides" not in command


@pytest.mark.parametrize("environment", DEPLOY_ENVIRONMENTS)
def test_each_environment_resolves_to_a_complete_deploy(environment: str) -> None:
    config = sam_resolved(*DEPLOY_ENVIRONMENTS)[environment]
    assert config["stack_name"] == f"participant-attributes-{environment}"
    capabilities = config["capabilities"].split()
    assert {"CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"} <= set(capabilities)
    assert config["resolve_s3"] is True
    assert config["region"]
    overrides = config["parameter_overrides"]
    assert overrides["Stage"] == environment
    declared = set(TEMPLATE["Parameters"])
    assert set(overrides) - declared <= PARAMETERS_PROMISED_BY_CONTRACT
    # The credentials' and the token's names are left to the per-stage defaults.
    for name, value in overrides.items():
        if name.endswith("Parameter") and "/genesys/" in value:
            assert f"/{environment}/" in value, f"{name}={value} is shared between stages"
    source = overrides["GenesysEventSourceName"]
    assert re.match(TEMPLATE["Parameters"]["GenesysEventSourceName"]["AllowedPattern"], source)
    assert source.split("/")[3] == overrides["GenesysOrgId"]
    assert overrides["CreateGenesysEventBus"] == "true"


def test_stages_do_not_share_a_partner_event_source() -> None:
    resolved = sam_resolved(*DEPLOY_ENVIRONMENTS)
    sources = [resolved[env]["parameter_overrides"]["GenesysEventSourceName"] for env in resolved]
    assert len(set(sources)) == len(sources)


def test_a_deploy_without_an_environment_has_no_stack_to_deploy_by_accident() -> None:
    assert "stack_name" not in sam_resolved("default")["default"]
    # and an unknown environment resolves to nothing: why the README must name real ones
    assert sam_resolved("staging")["staging"] == {"parameter_overrides": {}}


def test_readme_ssm_names_are_per_stage() -> None:
    names = re.findall(r"--name (/participant-attributes/\S+)", deploy_section())
    assert names
    for name in names:
        assert re.match(r"^/participant-attributes/(dev|prod)/", name), name


def test_readme_names_the_role_permission_not_scopes() -> None:
    section = deploy_section()
    assert "scope `conversations`" not in README
    assert "`conversation:communication:view`" in section
    assert "**no scopes**" in section


def test_readme_gives_the_whole_order_as_commands() -> None:
    commands = shell_commands(deploy_section())
    order = [
        "terraform -chdir=genesys/terraform/connect apply",
        "sam deploy --config-env dev",
        "terraform -chdir=genesys/terraform/data-actions apply",
        "python -m localdev doctor",
    ]
    positions = [next(i for i, command in enumerate(commands) if step in command) for step in order]
    assert positions == sorted(positions)
    for stage in ("connect", "data-actions"):
        assert (REPO / f"genesys/terraform/{stage}/dev.tfvars.example").is_file()


def _tfvars(stage: str) -> dict[str, Any]:
    import hcl2

    path = REPO / "genesys" / "terraform" / stage / "dev.tfvars.example"
    with path.open(encoding="utf-8") as handle:
        parsed = hcl2.load(handle)
    return {k: v.strip('"') if isinstance(v, str) else v for k, v in parsed.items()}


def test_the_terraform_examples_match_the_dev_environment() -> None:
    """Copied as they are, the tfvars examples and samconfig's dev describe one stage."""
    dev = sam_resolved(*DEPLOY_ENVIRONMENTS)["dev"]
    overrides = dev["parameter_overrides"]
    connect, data_actions = _tfvars("connect"), _tfvars("data-actions")
    assert connect["stage"] == data_actions["stage"] == overrides["Stage"] == "dev"
    assert connect["aws_region"] == data_actions["aws_region"] == dev["region"]
    assert overrides["GenesysEventSourceName"] == (
        f"aws.partner/genesys.com/cloud/{connect['genesys_org_id']}/{connect['event_source_suffix']}"
    )
    assert data_actions["stack_name"] == dev["stack_name"]
