"""genesys/terraform/ checked without Terraform (neither it nor the providers can be
downloaded here): every .tf file parses (python-hcl2); every resource, data source,
argument and block exists in the provider schemas kept in tests/data/terraform/ (derived
from the providers' documentation, see its README), required ones are present, read-only
ones are not set; module sources are pinned and their inputs exist; every variable and
local is declared and used; references name attributes that exist. Then what this
service needs of it: topics = the template's, per-stage SSM names, the secret never in an
output, the role's permissions, the data-action files it reads.

What this cannot catch: whatever only `terraform plan`/`apply` against a real Genesys org
would (the API's own validation, an integration type's config schema). README says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
import pytest

from localdev.template import _load_yaml, load_template

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "genesys" / "terraform"
DATA = REPO / "tests" / "data" / "terraform"
ROOTS = sorted(p for p in TERRAFORM.iterdir() if p.is_dir() and any(p.glob("*.tf")))
TF_FILES = sorted(TERRAFORM.rglob("*.tf"))
GENESYS_SCHEMA = json.loads((DATA / "genesyscloud_provider_schema.json").read_text())
AWS_SCHEMA = json.loads((DATA / "aws_provider_schema.json").read_text())
PROVIDERS = {"genesyscloud": GENESYS_SCHEMA, "aws": AWS_SCHEMA}
# The action files the data-actions stage reads: a sample of ours, and the real ones.
RAW_TEMPLATE: dict[str, Any] = _load_yaml((REPO / "template.yaml").read_text())
ACTION_FILES = [
    DATA / "sample-lambda-action.json",
    DATA / "sample-web-action.json",
    *sorted((REPO / "genesys/data-actions").glob("*.json")),
]

META_ARGUMENTS = {"count", "for_each", "depends_on", "provider", "lifecycle"}
MODULE_META_ARGUMENTS = {"source", "version", "count", "for_each", "depends_on", "providers"}
# Stack outputs the data-actions stage reads that template.yaml gains on the dataactions
# branch (CONTRACT.md "Data actions"); once merged they are in the template itself.
OUTPUTS_PROMISED_BY_CONTRACT = {"GenesysDataActionRoleArn", "ResolveAttributesFunctionArn"}

_VAR = re.compile(r"\bvar\.([A-Za-z_][\w-]*)")
_LOCAL = re.compile(r"\blocal\.([A-Za-z_][\w-]*)")
_MODULE = re.compile(r"\bmodule\.([A-Za-z_][\w-]*)\.([A-Za-z_]\w*)")
_DATA = re.compile(r"\bdata\.([a-z][a-z0-9_]*)\.([A-Za-z_][\w-]*)(?:\.([A-Za-z_]\w*))?")
_RESOURCE = re.compile(
    r"(?<![\w.])((?:genesyscloud|aws)_[a-z0-9_]+)\.([A-Za-z_][\w-]*)(?:\.([A-Za-z_]\w*))?"
)
_PINNED_REF = re.compile(r"^(?:[0-9a-f]{40}|v?\d+\.\d+\.\d+)$")


# ---------------------------------------------------------------------------- reading


def unquote(text: str) -> str:
    """python-hcl2 8 keeps a string literal's quotes (`"\\"x\\""`) and wraps expressions
    in `${...}`; block labels are quoted too."""
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def is_block(value: Any) -> bool:
    """hcl2 8 gives a block as a list of dicts marked `__is_block__`; a map argument
    (`headers = {...}`) is a plain dict."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, dict) and v.get("__is_block__") for v in value)
    )


def fields(body: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    return ((k, v) for k, v in body.items() if not k.startswith("__"))


def load_root(path: Path) -> dict[str, list[Any]]:
    """The root module: every .tf file in the directory, top-level lists concatenated."""
    merged: dict[str, list[Any]] = {}
    for tf in sorted(path.glob("*.tf")):
        with tf.open(encoding="utf-8") as handle:
            for key, entries in hcl2.load(handle).items():
                merged.setdefault(key, []).extend(entries)
    return merged


@dataclass(frozen=True)
class Block:
    kind: str  # resource, data, module, provider, variable, output
    labels: tuple[str, ...]
    body: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.kind} {'.'.join(self.labels)}"


def blocks(root: dict[str, list[Any]], kind: str) -> list[Block]:
    found: list[Block] = []
    for entry in root.get(kind, []):
        for first, rest in fields(entry):
            if kind in ("resource", "data"):
                for second, body in fields(rest):
                    found.append(Block(kind, (unquote(first), unquote(second)), body))
            else:
                found.append(Block(kind, (unquote(first),), rest))
    return found


def local_values(root: dict[str, list[Any]]) -> dict[str, Any]:
    return {k: v for entry in root.get("locals", []) for k, v in fields(entry)}


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in fields(node):
            yield key
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def provider_of(type_name: str) -> dict[str, Any]:
    prefix = type_name.split("_", 1)[0]
    if prefix not in PROVIDERS:
        raise KeyError(f"{type_name}: no schema kept for provider {prefix!r}")
    return PROVIDERS[prefix]


# ---------------------------------------------------------------------------- checking


def check_body(
    body: dict[str, Any], schema: dict[str, Any], where: str, top: bool = False
) -> list[str]:
    """Arguments and nested blocks of one block against its schema."""
    problems: list[str] = []
    attributes: dict[str, Any] = schema["attributes"]
    block_types: dict[str, Any] = schema["block_types"]
    present_blocks: dict[str, int] = {}
    for key, value in fields(body):
        if top and key in META_ARGUMENTS:
            continue
        if key == "dynamic":
            for dynamic in value:
                for label, spec in fields(dynamic):
                    name = unquote(label)
                    if name not in block_types:
                        problems.append(f"{where}: dynamic block {name!r} is not in the schema")
                        continue
                    present_blocks[name] = present_blocks.get(name, 0) + 1
                    for content in spec.get("content", []):
                        problems += check_body(
                            content, block_types[name]["block"], f"{where}.{name}"
                        )
            continue
        if key in attributes:
            attribute = attributes[key]
            if attribute.get("computed") and not (
                attribute.get("optional") or attribute.get("required")
            ):
                problems.append(f"{where}: {key!r} is read-only")
            if is_block(value):
                problems.append(f"{where}: {key!r} is an argument, written as a block")
        elif key in block_types:
            if not is_block(value):
                problems.append(f"{where}: {key!r} is a block, written as an argument")
                continue
            spec = block_types[key]
            present_blocks[key] = present_blocks.get(key, 0) + len(value)
            if spec["max_items"] is not None and len(value) > spec["max_items"]:
                problems.append(f"{where}: at most {spec['max_items']} {key!r} block(s)")
            for item in value:
                problems += check_body(item, spec["block"], f"{where}.{key}")
        else:
            problems.append(f"{where}: unknown argument or block {key!r}")
    for name, attribute in attributes.items():
        if attribute.get("required") and name not in body:
            problems.append(f"{where}: required argument {name!r} missing")
    for name, spec in block_types.items():
        if spec["min_items"] > 0 and present_blocks.get(name, 0) < spec["min_items"]:
            problems.append(f"{where}: required block {name!r} missing")
    for group in schema.get("exactly_one_of", []):
        given = [name for name in group if name in body]
        if len(given) != 1:
            problems.append(f"{where}: exactly one of {group} is required, got {given}")
    for name, needed in schema.get("required_with", {}).items():
        for other in needed:
            if name in body and other not in body:
                problems.append(f"{where}: {name!r} needs {other!r}")
    return problems


def schema_problems(root: dict[str, list[Any]]) -> list[str]:
    problems: list[str] = []
    for kind, key in (("resource", "resource_schemas"), ("data", "data_source_schemas")):
        for block in blocks(root, kind):
            type_name = block.labels[0]
            try:
                schema = provider_of(type_name)[key].get(type_name)
            except KeyError as error:
                problems.append(f"{block.where}: {error}")
                continue
            if schema is None:
                problems.append(f"{block.where}: {kind} type {type_name!r} is not in the schema")
                continue
            problems += check_body(block.body, schema, block.where, top=True)
    for block in blocks(root, "provider"):
        name = block.labels[0]
        if name not in PROVIDERS:
            problems.append(f"{block.where}: no schema kept for this provider")
            continue
        problems += check_body(block.body, PROVIDERS[name]["provider_config"], block.where)
    for block in blocks(root, "module"):
        problems += module_problems(block)
    return problems


def module_problems(block: Block) -> list[str]:
    source = unquote(block.body.get("source", ""))
    base, _, ref = source.partition("?ref=")
    known = GENESYS_SCHEMA["modules"].get(base)
    if known is None:
        return [f"{block.where}: module source {base!r} is not one of the kept modules"]
    problems = []
    if not _PINNED_REF.match(ref):
        problems.append(
            f"{block.where}: source not pinned to a commit or a version tag: {source!r}"
        )
    elif ref != known["ref"]:
        problems.append(f"{block.where}: pinned to {ref}, the kept inputs are of {known['ref']}")
    for key, _ in fields(block.body):
        if key not in MODULE_META_ARGUMENTS and key not in known["variables"]:
            problems.append(f"{block.where}: the module has no input {key!r}")
    for name, variable in known["variables"].items():
        if variable["required"] and name not in block.body:
            problems.append(f"{block.where}: required module input {name!r} missing")
    return problems


def reference_problems(root: dict[str, list[Any]]) -> list[str]:
    """Declared and used, both ways; references to attributes that exist."""
    problems: list[str] = []
    declared_vars = {b.labels[0] for b in blocks(root, "variable")}
    declared_locals = set(local_values(root))
    resources = {b.labels for b in blocks(root, "resource")}
    data_sources = {b.labels for b in blocks(root, "data")}
    modules = {
        b.labels[0]: GENESYS_SCHEMA["modules"].get(unquote(b.body["source"]).partition("?ref=")[0])
        for b in blocks(root, "module")
    }
    # A variable used only in its own validation is unused: leave variable blocks out.
    used_text = [
        s for kind, entries in root.items() if kind != "variable" for s in strings(entries)
    ]
    used_vars = {m for s in used_text for m in _VAR.findall(s)}
    used_locals = {m for s in used_text for m in _LOCAL.findall(s)}
    problems += [f"var.{v} is used but not declared" for v in sorted(used_vars - declared_vars)]
    problems += [
        f"variable {v!r} is declared but never used" for v in sorted(declared_vars - used_vars)
    ]
    problems += [
        f"local.{v} is used but not defined" for v in sorted(used_locals - declared_locals)
    ]
    problems += [
        f"local {v!r} is defined but never used" for v in sorted(declared_locals - used_locals)
    ]
    for text in used_text:
        for name, output in _MODULE.findall(text):
            if name not in modules:
                problems.append(f"module.{name} is not declared")
            elif modules[name] is not None and output not in modules[name]["outputs"]:
                problems.append(f"module.{name} has no output {output!r}")
        for type_name, name, attribute in _DATA.findall(text):
            problems += _attribute_problem("data", data_sources, type_name, name, attribute)
        for type_name, name, attribute in _RESOURCE.findall(text):
            problems += _attribute_problem("resource", resources, type_name, name, attribute)
    return sorted(set(problems))


def _attribute_problem(
    kind: str, declared: set[tuple[str, ...]], type_name: str, name: str, attribute: str
) -> list[str]:
    prefix = "data." if kind == "data" else ""
    if (type_name, name) not in declared:
        return [f"{prefix}{type_name}.{name} is not declared"]
    key = "data_source_schemas" if kind == "data" else "resource_schemas"
    schema = provider_of(type_name)[key][type_name]
    if (
        attribute
        and attribute not in schema["attributes"]
        and attribute not in schema["block_types"]
    ):
        return [f"{prefix}{type_name}.{name} has no attribute {attribute!r}"]
    return []


def for_each_problems(root: dict[str, list[Any]]) -> list[str]:
    """for_each keys must be known at plan time: a for_each may not depend (through
    locals) on a resource's or a module's attributes, only known before apply."""
    values = local_values(root)

    def depends_on(text: str, seen: frozenset[str]) -> set[str]:
        found = {f"module.{m}" for m, _ in _MODULE.findall(text)}
        found |= {f"{t}.{n}" for t, n, _ in _RESOURCE.findall(text)}
        for name in set(_LOCAL.findall(text)) - seen:
            for inner in strings(values.get(name, "")):
                found |= depends_on(inner, seen | {name})
        return found

    problems = []
    for kind in ("resource", "data", "module"):
        for block in blocks(root, kind):
            expression = block.body.get("for_each")
            if isinstance(expression, str) and (unknown := depends_on(expression, frozenset())):
                problems.append(f"{block.where}: for_each depends on {sorted(unknown)}")
    return problems


# ---------------------------------------------------------------------------- the checks


@pytest.mark.parametrize("tf", TF_FILES, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_tf_file_parses(tf: Path) -> None:
    with tf.open(encoding="utf-8") as handle:
        assert hcl2.load(handle), f"{tf} is empty"


def test_the_two_stages_exist() -> None:
    assert [p.name for p in ROOTS] == ["connect", "data-actions"]


@pytest.mark.parametrize("root_dir", ROOTS, ids=lambda p: p.name)
def test_resources_arguments_and_modules_exist_in_the_schemas(root_dir: Path) -> None:
    assert schema_problems(load_root(root_dir)) == []


@pytest.mark.parametrize("root_dir", ROOTS, ids=lambda p: p.name)
def test_variables_locals_and_references_resolve(root_dir: Path) -> None:
    assert reference_problems(load_root(root_dir)) == []


@pytest.mark.parametrize("root_dir", ROOTS, ids=lambda p: p.name)
def test_for_each_keys_are_known_at_plan_time(root_dir: Path) -> None:
    assert for_each_problems(load_root(root_dir)) == []


@pytest.mark.parametrize("root_dir", ROOTS, ids=lambda p: p.name)
def test_providers_pinned_to_the_schema_versions(root_dir: Path) -> None:
    root = load_root(root_dir)
    required = {
        name: {k: unquote(v) for k, v in spec.items()}
        for entry in root["terraform"]
        for providers in entry["required_providers"]
        for name, spec in fields(providers)
    }
    assert required == {
        "genesyscloud": {
            "source": "mypurecloud/genesyscloud",
            "version": GENESYS_SCHEMA["version"],
        },
        "aws": {"source": "hashicorp/aws", "version": AWS_SCHEMA["version"]},
    }
    # write-only arguments (value_wo) need Terraform 1.11
    assert unquote(root["terraform"][0]["required_version"]) == ">= 1.11.0"


def test_the_checks_catch_the_mistakes_they_are_for(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(
        """
variable "used" { type = string }
variable "unused" { type = string }
resource "genesyscloud_oauth_client" "c" {
  name   = var.used
  scopes = [var.undeclared]
  client_id = "read-only"
  role { role_id = "x" }
}
resource "genesyscloud_integration_action" "a" {
  name = local.missing
  config_request { request_url_template = "u" }
}
resource "genesyscloud_no_such_thing" "x" {}
resource "aws_ssm_parameter" "p" {
  name     = "/x"
  type     = "SecureString"
  value_wo = genesyscloud_oauth_client.c.client_secrett
}
module "m" {
  source         = "git::https://github.com/GenesysCloudDevOps/aws-event-bridge-module.git?ref=main"
  aws_account_id = "1"
  colour         = "red"
}
output "o" { value = module.m.arn }
locals {
  ids = { a = genesyscloud_oauth_client.c.id }
}
resource "genesyscloud_auth_division" "d" {
  for_each = { for k, v in local.ids : k => v if v != "" }
  name     = each.key
}
""",
        encoding="utf-8",
    )
    root = load_root(tmp_path)
    found = "\n".join(schema_problems(root) + reference_problems(root) + for_each_problems(root))
    for expected in (
        "'client_id' is read-only",
        "unknown argument or block 'role'",
        "required argument 'authorized_grant_type' missing",
        "required argument 'category' missing",
        "config_request: required argument 'request_type' missing",
        "resource type 'genesyscloud_no_such_thing' is not in the schema",
        "'value_wo' needs 'value_wo_version'",
        "source not pinned",
        "the module has no input 'colour'",
        "required module input 'topic_filters' missing",
        "var.undeclared is used but not declared",
        "variable 'unused' is declared but never used",
        "local.missing is used but not defined",
        "has no attribute 'client_secrett'",
        "module.m has no output 'arn'",
        "for_each depends on ['genesyscloud_oauth_client.c']",
    ):
        assert expected in found, f"{expected!r} not reported in:\n{found}"


# ---------------------------------------------------------------------------- stage 1


CONNECT = load_root(TERRAFORM / "connect") if (TERRAFORM / "connect").is_dir() else {}


def _one(root: dict[str, list[Any]], kind: str, *labels: str) -> dict[str, Any]:
    matches = [b.body for b in blocks(root, kind) if b.labels == labels]
    assert len(matches) == 1, f"{kind} {labels} not found exactly once"
    return matches[0]


def _expand_locals(text: str, root: dict[str, list[Any]]) -> str:
    """`${local.x}` -> the local's literal value (only for locals that are literals)."""
    values = local_values(root)
    return re.sub(r"\$\{local\.(\w+)\}", lambda m: unquote(values[m.group(1)]), unquote(text))


def test_topic_filter_is_the_templates_genesys_topics() -> None:
    variable = _one(CONNECT, "variable", "topic_filters")
    topics = [unquote(t) for t in variable["default"]]
    assert topics == load_template(REPO / "template.yaml").parameters["GenesysTopics"]
    module = _one(CONNECT, "module", "event_bridge")
    assert module["topic_filters"] == "${var.topic_filters}"


def test_credentials_go_to_the_per_stage_ssm_names_of_the_contract() -> None:
    names = {
        label: _expand_locals(
            _one(CONNECT, "resource", "aws_ssm_parameter", label)["name"], CONNECT
        )
        for label in ("client_id", "client_secret")
    }
    assert names == {
        "client_id": "/participant-attributes/${var.stage}/genesys/client-id",
        "client_secret": "/participant-attributes/${var.stage}/genesys/client-secret",
    }
    for label in names:
        assert (
            unquote(_one(CONNECT, "resource", "aws_ssm_parameter", label)["type"]) == "SecureString"
        )


def test_the_client_secret_is_written_only_and_never_an_output() -> None:
    secret = _one(CONNECT, "resource", "aws_ssm_parameter", "client_secret")
    assert secret["value_wo"] == "${genesyscloud_oauth_client.service.client_secret}"
    assert "value" not in secret  # `value` would keep a second copy in state
    replace = secret["lifecycle"][0]["replace_triggered_by"]
    assert replace == ["${genesyscloud_oauth_client.service.id}"]
    for root_dir in ROOTS:
        for output in blocks(load_root(root_dir), "output"):
            text = " ".join(strings(output.body))
            # Neither the attribute, nor the whole client object, nor an SSM value.
            client_refs = re.findall(r"genesyscloud_oauth_client\.\w+(\.\w+)?", text)
            assert set(client_refs) <= {".id", ".name"}, f"{output.where}: {client_refs}"
            assert not re.search(r"aws_ssm_parameter\.\w+(\.value|\s|\}|$)", text), output.where


def test_the_service_client_has_a_role_with_exactly_the_permission_it_uses() -> None:
    client = _one(CONNECT, "resource", "genesyscloud_oauth_client", "service")
    assert unquote(client["authorized_grant_type"]) == "CLIENT-CREDENTIALS"
    assert "scopes" not in client  # client credentials: a role, no scopes
    roles = client["dynamic"][0]['"roles"']
    assert roles["content"][0]["role_id"] == "${genesyscloud_auth_role.service.id}"
    assert "var.division_ids" in roles["for_each"]
    role = _one(CONNECT, "resource", "genesyscloud_auth_role", "service")
    assert "permissions" not in role
    policies = [
        (unquote(p["domain"]), unquote(p["entity_name"]), [unquote(a) for a in p["action_set"]])
        for p in role["permission_policies"]
    ]
    # GET /api/v2/conversations/{id}: conversation:communication:view (SDK docs)
    assert policies == [("conversation", "communication", ["view"])]


def test_partner_event_source_name_is_what_the_template_accepts() -> None:
    output = _one(CONNECT, "output", "partner_event_source_name")
    assert output["value"] == "${local.partner_event_source_name}"
    name = unquote(local_values(CONNECT)["partner_event_source_name"])
    example = name.replace("${var.genesys_org_id}", "0f5e2a94-7c1b-4f0e-9a63-2b8d1c4e6f70").replace(
        "${var.event_source_suffix}", "participant-attributes-dev"
    )
    pattern = RAW_TEMPLATE["Parameters"]["GenesysEventSourceName"]["AllowedPattern"]
    assert re.match(pattern, example), example


# ---------------------------------------------------------------------------- stage 2


DATA_ACTIONS = (
    load_root(TERRAFORM / "data-actions") if (TERRAFORM / "data-actions").is_dir() else {}
)


def _each_value_paths(body: dict[str, Any]) -> tuple[set[str], set[str]]:
    """`each.value.a.b` paths the action resource reads: (required, optional = inside try())."""
    required: set[str] = set()
    optional: set[str] = set()
    for text in strings(body):
        for match in re.finditer(r"each\.value((?:\.[A-Za-z_]\w*)+)", text):
            path = match.group(1).lstrip(".")
            inside_try = text[: match.start()].endswith("try(")
            (optional if inside_try else required).add(path)
    return required, optional


def _lookup(document: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(document, dict) or part not in document:
            raise KeyError(path)
        document = document[part]
    return document


@pytest.mark.parametrize("action_file", ACTION_FILES, ids=lambda p: p.name)
def test_each_action_file_has_what_the_data_actions_stage_reads(action_file: Path) -> None:
    action = json.loads(action_file.read_text(encoding="utf-8"))
    body = _one(DATA_ACTIONS, "resource", "genesyscloud_integration_action", "action")
    required, optional = _each_value_paths(body)
    assert "contract.input.inputSchema" in required and "secure" in optional
    missing = sorted(path for path in required if not _has(action, path))
    assert missing == [], f"{action_file.name} lacks {missing}"
    integrations = {unquote(k) for k in local_values(DATA_ACTIONS)["integration_ids"]}
    assert action["integrationType"] in integrations
    assert action["config"]["request"]["requestType"] in {"GET", "PUT", "POST", "PATCH", "DELETE"}
    if action["integrationType"] == "custom-rest-actions":
        # Its URL is kept as it is: the base must come from the credential, which README
        # "Deploy" tells the operator to fill in, field by field.
        request = json.dumps(action["config"]["request"])
        fields_used = set(re.findall(r"\$\{credentials\.(\w+)\}", request))
        assert action["config"]["request"]["requestUrlTemplate"].startswith("${credentials.")
        deploy = (REPO / "README.md").read_text(encoding="utf-8").split("\n## Deploy\n")[1]
        for name in fields_used:
            assert f"`{name}`" in deploy.split("\n## ")[0], f"README does not name {name}"
    for schema_path in ("contract.input.inputSchema", "contract.output.successSchema"):
        assert _lookup(action, schema_path)["type"] == "object"


def _has(document: Any, path: str) -> bool:
    try:
        _lookup(document, path)
    except KeyError:
        return False
    return True


def test_action_files_are_read_from_genesys_data_actions() -> None:
    values = local_values(DATA_ACTIONS)
    assert '"${path.module}/../../data-actions"' in values["actions_dir"]
    assert (
        TERRAFORM / "data-actions" / "../../data-actions"
    ).resolve() == REPO / "genesys/data-actions"
    assert 'fileset(local.actions_dir, "*.json")' in values["actions"]


def test_the_data_actions_stage_reads_only_outputs_the_stack_has() -> None:
    read = {
        m for s in strings(DATA_ACTIONS) for m in re.findall(r'local\.stack_outputs\["(\w+)"\]', s)
    }
    assert read == {"GenesysDataActionRoleArn", "ResolveAttributesFunctionArn"}
    outputs = set(RAW_TEMPLATE.get("Outputs", {}))
    assert read - outputs <= OUTPUTS_PROMISED_BY_CONTRACT
    module = _one(DATA_ACTIONS, "module", "lambda_integration")
    assert module["data_integration_trusted_role_arn"] == (
        '${local.stack_outputs["GenesysDataActionRoleArn"]}'
    )


def test_schema_data_says_where_it_came_from() -> None:
    assert GENESYS_SCHEMA["version"] == "1.84.1"
    assert (REPO / GENESYS_SCHEMA["derived_by"]).is_file()
    assert "docs" in GENESYS_SCHEMA["derived_from"] and "docs" in AWS_SCHEMA["derived_from"]
    assert set(GENESYS_SCHEMA["resource_schemas"]) >= {
        "genesyscloud_oauth_client",
        "genesyscloud_auth_role",
        "genesyscloud_integration_action",
    }


def test_extra_clients_are_like_the_service_client_at_the_names_the_template_grants() -> None:
    """extra_client_count makes GenesysExtraClientCount's client-2 ...: the same role, and
    their credentials at the SSM names template.yaml lets TokenRefresher read."""
    variable = _one(CONNECT, "variable", "extra_client_count")
    assert variable["default"] == 0
    allowed = RAW_TEMPLATE["Parameters"]["GenesysExtraClientCount"]["AllowedValues"]
    assert allowed == ["0", "1", "2", "3", "4"] and "<= 4" in variable["validation"][0]["condition"]
    service = _one(CONNECT, "resource", "genesyscloud_oauth_client", "service")
    extra = _one(CONNECT, "resource", "genesyscloud_oauth_client", "extra")
    assert extra["count"] == "${var.extra_client_count}"
    for argument in ("authorized_grant_type", "access_token_validity_seconds"):
        assert extra[argument] == service[argument], argument
    roles = [client["dynamic"][0]['"roles"'] for client in (service, extra)]
    assert [(r["for_each"], r["content"]) for r in roles] == [
        (roles[0]["for_each"], roles[0]["content"])
    ] * 2
    names = {
        label: _expand_locals(
            _one(CONNECT, "resource", "aws_ssm_parameter", label)["name"], CONNECT
        )
        for label in ("extra_client_id", "extra_client_secret")
    }
    prefix = "/participant-attributes/${var.stage}/genesys/client-${count.index + 2}"
    assert names == {
        "extra_client_id": f"{prefix}/client-id",
        "extra_client_secret": f"{prefix}/client-secret",
    }
    secret = _one(CONNECT, "resource", "aws_ssm_parameter", "extra_client_secret")
    assert "value" not in secret
    assert secret["value_wo"] == "${genesyscloud_oauth_client.extra[count.index].client_secret}"
    assert secret["lifecycle"][0]["replace_triggered_by"] == [
        "${genesyscloud_oauth_client.extra[count.index].id}"
    ]
    overrides = _one(CONNECT, "output", "sam_parameter_overrides")["value"]
    assert "GenesysExtraClientCount=${var.extra_client_count}" in overrides
