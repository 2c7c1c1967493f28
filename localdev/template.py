"""template.yaml as local runs need it: functions, their settings and their EventBridge rules.

`load_template()` reads a SAM/CloudFormation YAML template (short-form tags such as `!Ref`
become their long forms), resolves intrinsic functions against parameter values (each
Parameter's Default, overridden by the caller) and lists every AWS::Serverless::Function
with its settings and the EventBridge rules that target it.

Local stand-ins for values only a real deployment has:

- Pseudo parameters: AWS::Region "us-east-1", AWS::AccountId "123456789012",
  AWS::Partition "aws", AWS::StackName the `stack_name` argument ("local" by default).
- `Ref` to a resource: its physical name, which is the logical id unless the caller maps
  it with `resource_names` (for instance a queue created in moto under another name).
- `Fn::GetAtt X.Arn`: a fake but well-formed ARN made from the resource type and physical
  name, e.g. `arn:aws:lambda:us-east-1:123456789012:function:MyFunction`,
  `arn:aws:sqs:us-east-1:123456789012:MyQueue`; unknown types get
  `arn:aws:<service>:us-east-1:123456789012:<name>`. `X.Name` is the physical name (an
  event bus's Ref and Name are the same thing). Any other attribute is the string
  "X.Attr": nothing local can know it.
- `Fn::ImportValue`: the export name itself (no other stacks exist locally).
- A parameter of an SSM type (`AWS::SSM::Parameter::Value<...>`) keeps its Default: the
  SSM parameter's name, not its value.

Rules come from SAM function events of Type EventBridgeRule or CloudWatchEvent and from
AWS::Events::Rule resources whose Targets name a function of the template (by its ARN or
name). Rules with `State: DISABLED`, schedule-only rules, and functions, rules or layers
whose `Condition` is false are left out.

Patterns: a list-valued `Ref` (CommaDelimitedList, List<...>) placed inside a pattern's
list, `detail-type: [!Ref Topics, "x"]`, would give CloudFormation a nested list, which
EventBridge refuses; here such inner lists are flattened into the outer one, which is
what the author meant. A pattern given as a JSON string (the way to write `null` in
CloudFormation) is parsed.

Routing ignores event buses: an event file does not say which bus it was put on, so
`route()` matches every rule, whatever its bus; patterns tell events apart by `source`.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

__all__ = [
    "ACCOUNT_ID",
    "REGION",
    "FunctionSpec",
    "LayerSpec",
    "RuleSpec",
    "Template",
    "TemplateError",
    "load_template",
]

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
PARTITION = "aws"

_FUNCTION = "AWS::Serverless::Function"
_LAYER = "AWS::Serverless::LayerVersion"
_EVENTS_RULE = "AWS::Events::Rule"
_SAM_RULE_EVENT_TYPES = ("EventBridgeRule", "CloudWatchEvent")


class TemplateError(ValueError):
    """The template cannot be read or resolved."""


@dataclass(frozen=True)
class RuleSpec:
    name: str  # the SAM event name, or the AWS::Events::Rule logical id
    event_bus: str | None  # resolved bus name; None is the default bus
    pattern: dict[str, Any]  # fully resolved event pattern
    target_function: str  # logical id of the function the rule invokes


@dataclass(frozen=True)
class LayerSpec:
    logical_id: str
    content_uri: str


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: str
    handler: str
    timeout: int  # seconds
    memory_size: int  # MB
    environment: dict[str, str]
    layers: list[str]  # logical ids of AWS::Serverless::LayerVersion resources
    rules: list[RuleSpec]


class Template:
    """A loaded template. Build it with `load_template()`."""

    def __init__(
        self,
        path: Path,
        resolver: _Resolver,
        functions: dict[str, FunctionSpec],
        layers: dict[str, LayerSpec],
    ) -> None:
        self.path = path
        self.parameters: dict[str, Any] = resolver.parameters
        self.functions = functions
        self.layers = layers
        self._resolver = resolver

    @property
    def rules(self) -> list[RuleSpec]:
        """Every enabled EventBridge rule that targets a function, function by function."""
        return [rule for function in self.functions.values() for rule in function.rules]

    def resolve(self, value: Any) -> Any:
        """Resolve the intrinsic functions in any template fragment."""
        return self._resolver.resolve(value)

    def condition(self, name: str) -> bool:
        """The value of one of the template's Conditions."""
        return self._resolver.condition(name)

    def resource_ids(self, resource_type: str) -> list[str]:
        """Logical ids of the resources of a type (Condition-excluded ones omitted)."""
        return self._resolver.resources_of_type(resource_type)

    def rules_matching(self, event: dict[str, Any]) -> list[RuleSpec]:
        """The rules whose pattern matches `event`, on any bus (see the module docstring)."""
        from localdev.eventpattern import matches  # imports moto: only when matching

        return [rule for rule in self.rules if matches(rule.pattern, event)]

    def route(self, event: dict[str, Any]) -> list[str]:
        """Sorted logical ids of the functions that a matching rule would invoke."""
        return sorted({rule.target_function for rule in self.rules_matching(event)})


def load_template(
    path: str | Path = "template.yaml",
    parameter_overrides: dict[str, str] | None = None,
    resource_names: dict[str, str] | None = None,
    stack_name: str = "local",
) -> Template:
    """Read and resolve a SAM template; see the module docstring for the local stand-ins."""
    template_path = Path(path)
    try:
        raw = _load_yaml(template_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TemplateError(f"cannot read {template_path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise TemplateError(f"{template_path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("Resources"), dict):
        raise TemplateError(f"{template_path} has no Resources section")
    resolver = _Resolver(raw, parameter_overrides or {}, resource_names or {}, stack_name)
    layers = _layers(resolver)
    rules = _rules_by_function(resolver)
    functions = {
        logical_id: _function(resolver, logical_id, layers, rules.get(logical_id, []))
        for logical_id in resolver.resources_of_type(_FUNCTION)
    }
    return Template(template_path, resolver, functions, layers)


# --- YAML with CloudFormation short-form tags -------------------------------------------


class _CfnLoader(yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader):  # type: ignore[misc]
    """A safe YAML loader that turns `!Tag value` into CloudFormation's long form."""


def _construct_short_form(loader: Any, tag_suffix: str, node: Any) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix in ("Ref", "Condition"):
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        # "Resource.Attribute"; the attribute itself may contain dots (Endpoint.Address).
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_short_form)
# CloudFormation has no dates: keep `AWSTemplateFormatVersion: 2010-09-09` a string.
_CfnLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
)


def _load_yaml(text: str) -> Any:
    loader = _CfnLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


# --- Intrinsic functions ----------------------------------------------------------------


class _NoValue:
    """What `Ref: AWS::NoValue` resolves to: the enclosing key or element is dropped."""


_NO_VALUE = _NoValue()

_ARN_FORMATS = {
    "AWS::Serverless::Function": "arn:aws:lambda:{region}:{account}:function:{name}",
    "AWS::Lambda::Function": "arn:aws:lambda:{region}:{account}:function:{name}",
    "AWS::SQS::Queue": "arn:aws:sqs:{region}:{account}:{name}",
    "AWS::SNS::Topic": "arn:aws:sns:{region}:{account}:{name}",
    "AWS::Events::EventBus": "arn:aws:events:{region}:{account}:event-bus/{name}",
    "AWS::Events::Rule": "arn:aws:events:{region}:{account}:rule/{name}",
    "AWS::Events::Connection": "arn:aws:events:{region}:{account}:connection/{name}",
    "AWS::Events::ApiDestination": "arn:aws:events:{region}:{account}:api-destination/{name}",
    "AWS::DynamoDB::Table": "arn:aws:dynamodb:{region}:{account}:table/{name}",
    "AWS::Serverless::SimpleTable": "arn:aws:dynamodb:{region}:{account}:table/{name}",
    "AWS::Serverless::StateMachine": "arn:aws:states:{region}:{account}:stateMachine:{name}",
    "AWS::StepFunctions::StateMachine": "arn:aws:states:{region}:{account}:stateMachine:{name}",
    "AWS::SecretsManager::Secret": "arn:aws:secretsmanager:{region}:{account}:secret:{name}",
    "AWS::SSM::Parameter": "arn:aws:ssm:{region}:{account}:parameter/{name}",
    "AWS::Logs::LogGroup": "arn:aws:logs:{region}:{account}:log-group:{name}:*",
    "AWS::KMS::Key": "arn:aws:kms:{region}:{account}:key/{name}",
    "AWS::IAM::Role": "arn:aws:iam::{account}:role/{name}",
    "AWS::S3::Bucket": "arn:aws:s3:::{name}",
}

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class _Resolver:
    """Resolves intrinsic functions and conditions against one set of parameter values."""

    def __init__(
        self,
        raw: dict[str, Any],
        overrides: dict[str, str],
        resource_names: dict[str, str],
        stack_name: str,
    ) -> None:
        self.resources: dict[str, Any] = raw["Resources"]
        self._mappings: dict[str, Any] = raw.get("Mappings") or {}
        self._conditions: dict[str, Any] = raw.get("Conditions") or {}
        self._condition_values: dict[str, bool] = {}
        self._evaluating: set[str] = set()
        self._resource_names = resource_names
        self.globals_function: dict[str, Any] = (raw.get("Globals") or {}).get("Function") or {}
        self.parameters = _parameter_values(raw.get("Parameters") or {}, overrides)
        self._pseudo: dict[str, Any] = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": PARTITION,
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{stack_name}/"
            "00000000-0000-0000-0000-000000000000",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": _NO_VALUE,
        }
        self._functions: dict[str, Callable[[Any], Any]] = {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::If": self._if,
            "Fn::Join": self._join,
            "Fn::Split": self._split,
            "Fn::Select": self._select,
            "Fn::FindInMap": self._find_in_map,
            "Fn::ImportValue": lambda arg: _to_str(self.resolve(arg)),
            "Fn::Base64": lambda arg: base64.b64encode(
                _to_str(self.resolve(arg)).encode()
            ).decode(),
            "Fn::GetAZs": lambda _arg: [f"{REGION}{zone}" for zone in "abcdef"],
        }

    # Resources

    def physical_name(self, logical_id: str) -> str:
        return self._resource_names.get(logical_id, logical_id)

    def included(self, logical_id: str) -> bool:
        """False for a resource whose Condition is false."""
        condition = self.resources[logical_id].get("Condition")
        return condition is None or self.condition(str(condition))

    def resources_of_type(self, resource_type: str) -> list[str]:
        return [
            logical_id
            for logical_id, resource in self.resources.items()
            if isinstance(resource, dict)
            and resource.get("Type") == resource_type
            and self.included(logical_id)
        ]

    def properties(self, logical_id: str) -> dict[str, Any]:
        properties = self.resources[logical_id].get("Properties") or {}
        return properties if isinstance(properties, dict) else {}

    # Values

    def resolve(self, node: Any) -> Any:
        """`node` with every intrinsic function replaced by its value."""
        if isinstance(node, dict):
            if len(node) == 1:
                key, argument = next(iter(node.items()))
                if key in self._functions:
                    return self._functions[key](argument)
                if key.startswith("Fn::"):
                    raise TemplateError(f"unsupported intrinsic function {key}")
            resolved = {key: self.resolve(value) for key, value in node.items()}
            return {key: value for key, value in resolved.items() if value is not _NO_VALUE}
        if isinstance(node, list):
            items = [self.resolve(item) for item in node]
            return [item for item in items if item is not _NO_VALUE]
        return node

    def _ref(self, name: Any) -> Any:
        if not isinstance(name, str):
            raise TemplateError(f"Ref needs a name, got {name!r}")
        if name in self.parameters:
            value = self.parameters[name]
            return list(value) if isinstance(value, list) else value
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self.resources:
            return self.physical_name(name)
        raise TemplateError(f"Ref to unknown parameter or resource {name!r}")

    def _get_att(self, argument: Any) -> str:
        if isinstance(argument, str):
            argument = argument.split(".", 1)
        parts = self.resolve(argument)
        if not (isinstance(parts, list) and len(parts) == 2):
            raise TemplateError(f"Fn::GetAtt needs [resource, attribute], got {argument!r}")
        logical_id, attribute = (_to_str(part) for part in parts)
        if logical_id not in self.resources:
            raise TemplateError(f"Fn::GetAtt of unknown resource {logical_id!r}")
        name = self.physical_name(logical_id)
        if attribute == "Arn":
            resource_type = str(self.resources[logical_id].get("Type", ""))
            service = resource_type.split("::")[1].lower() if "::" in resource_type else "aws"
            arn_format = _ARN_FORMATS.get(
                resource_type, f"arn:aws:{service}:{{region}}:{{account}}:{{name}}"
            )
            return arn_format.format(region=REGION, account=ACCOUNT_ID, name=name)
        if attribute == "Name":
            return name
        return f"{logical_id}.{attribute}"

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            if len(argument) != 2:
                raise TemplateError(f"Fn::Sub needs [string, variables], got {argument!r}")
            text, variables = argument[0], self.resolve(argument[1])
        else:
            text, variables = argument, {}
        if not isinstance(text, str) or not isinstance(variables, dict):
            raise TemplateError(f"Fn::Sub needs a string and a map, got {argument!r}")

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):  # ${!Literal} is written out as ${Literal}
                return "${" + name[1:] + "}"
            name = name.strip()
            if name in variables:
                return _to_str(variables[name])
            if "." in name:  # parameter, pseudo-parameter and resource names have no dots
                return self._get_att(name)
            return _to_str(self._ref(name))

        return _SUB_VARIABLE.sub(substitute, text)

    def _if(self, argument: Any) -> Any:
        if not (isinstance(argument, list) and len(argument) == 3):
            raise TemplateError(f"Fn::If needs [condition, then, else], got {argument!r}")
        # Only the chosen branch is resolved: the other may not be resolvable locally.
        return self.resolve(argument[1] if self.condition(str(argument[0])) else argument[2])

    def _join(self, argument: Any) -> str:
        delimiter, items = self._pair("Fn::Join", argument)
        if not isinstance(items, list):
            raise TemplateError(f"Fn::Join needs a list, got {items!r}")
        return _to_str(delimiter).join(_to_str(item) for item in items)

    def _split(self, argument: Any) -> list[str]:
        delimiter, text = self._pair("Fn::Split", argument)
        return _to_str(text).split(_to_str(delimiter))

    def _select(self, argument: Any) -> Any:
        index, items = self._pair("Fn::Select", argument)
        try:
            return items[int(index)]
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            raise TemplateError(f"Fn::Select: no item {index!r} in {items!r}") from exc

    def _find_in_map(self, argument: Any) -> Any:
        keys = self.resolve(argument)
        if not (isinstance(keys, list) and len(keys) == 3):
            raise TemplateError(f"Fn::FindInMap needs [map, key, key], got {argument!r}")
        value: Any = self._mappings
        for key in keys:
            if not isinstance(value, dict) or _to_str(key) not in value:
                raise TemplateError(f"Fn::FindInMap finds nothing at {keys!r}")
            value = value[_to_str(key)]
        return self.resolve(value)

    def _pair(self, function: str, argument: Any) -> tuple[Any, Any]:
        resolved = self.resolve(argument)
        if not (isinstance(resolved, list) and len(resolved) == 2):
            raise TemplateError(f"{function} needs two arguments, got {argument!r}")
        return resolved[0], resolved[1]

    # Conditions

    def condition(self, name: str) -> bool:
        if name not in self._condition_values:
            if name not in self._conditions:
                raise TemplateError(f"unknown condition {name!r}")
            if name in self._evaluating:
                raise TemplateError(f"condition {name!r} depends on itself")
            self._evaluating.add(name)
            self._condition_values[name] = self._evaluate(self._conditions[name])
        return self._condition_values[name]

    def _evaluate(self, expression: Any) -> bool:
        if isinstance(expression, dict) and len(expression) == 1:
            key, argument = next(iter(expression.items()))
            if key == "Condition":
                return self.condition(str(argument))
            if key == "Fn::Equals" and isinstance(argument, list) and len(argument) == 2:
                left, right = (_to_str(self.resolve(value)) for value in argument)
                return left == right
            if key == "Fn::Not" and isinstance(argument, list) and len(argument) == 1:
                return not self._evaluate(argument[0])
            if key == "Fn::And" and isinstance(argument, list):
                return all(self._evaluate(item) for item in argument)
            if key == "Fn::Or" and isinstance(argument, list):
                return any(self._evaluate(item) for item in argument)
        raise TemplateError(f"not a condition: {expression!r}")


def _parameter_values(declared: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TemplateError(f"parameter overrides for undeclared parameters: {unknown}")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        spec = spec if isinstance(spec, dict) else {}
        if name in overrides:
            raw = overrides[name]
        elif "Default" in spec:
            raw = spec["Default"]
        else:
            raise TemplateError(f"parameter {name} has no Default and no override")
        value: Any
        parameter_type = str(spec.get("Type", "String"))
        if parameter_type == "CommaDelimitedList" or "List<" in parameter_type:
            items = raw if isinstance(raw, list) else _to_str(raw).split(",")
            value = [_to_str(item).strip() for item in items]
        else:
            value = _to_str(raw)  # CloudFormation hands every parameter out as a string
        allowed = spec.get("AllowedValues")
        if isinstance(allowed, list):
            allowed_strings = {_to_str(item) for item in allowed}
            for item in value if isinstance(value, list) else [value]:
                if item not in allowed_strings:
                    raise TemplateError(f"parameter {name}: {item!r} is not in AllowedValues")
        values[name] = value
    return values


def _to_str(value: Any) -> str:
    """A value as CloudFormation would write it into a string (lists joined by commas)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(_to_str(item) for item in value)
    raise TemplateError(f"cannot use {value!r} as a string")


# --- Functions, layers and rules ----------------------------------------------------------


def _layers(resolver: _Resolver) -> dict[str, LayerSpec]:
    layers = {}
    for logical_id in resolver.resources_of_type(_LAYER):
        content_uri = resolver.resolve(resolver.properties(logical_id).get("ContentUri"))
        layers[logical_id] = LayerSpec(
            logical_id, content_uri if isinstance(content_uri, str) else ""
        )
    return layers


def _function(
    resolver: _Resolver, logical_id: str, layers: dict[str, LayerSpec], rules: list[RuleSpec]
) -> FunctionSpec:
    properties = resolver.properties(logical_id)
    defaults = resolver.globals_function

    def setting(name: str) -> Any:
        """The function's own value, else the Globals one; None when neither is set."""
        for source in (properties, defaults):
            if name in source:
                value = resolver.resolve(source[name])
                if value is not _NO_VALUE:
                    return value
        return None

    try:
        code_uri = setting("CodeUri")
        handler = setting("Handler")
        environment = {
            name: _to_str(value)
            for source in (defaults, properties)  # SAM merges Globals first, function wins
            for name, value in _variables(resolver.resolve(source.get("Environment"))).items()
        }
        # SAM appends the function's Layers to the Globals ones. Refs resolve to physical
        # names, so map those back to layer logical ids; ARNs of other layers are skipped.
        layer_by_name = {resolver.physical_name(layer): layer for layer in layers}
        layer_refs = [
            layer_by_name[reference]
            for source in (defaults, properties)
            for reference in _as_list(resolver.resolve(source.get("Layers")))
            if isinstance(reference, str) and reference in layer_by_name
        ]
        return FunctionSpec(
            logical_id=logical_id,
            code_uri=code_uri if isinstance(code_uri, str) else "",
            handler=handler if isinstance(handler, str) else "",
            timeout=_as_int(setting("Timeout"), 3),
            memory_size=_as_int(setting("MemorySize"), 128),
            environment=environment,
            layers=list(dict.fromkeys(layer_refs)),
            rules=_sam_event_rules(resolver, logical_id, properties) + rules,
        )
    except TemplateError as exc:
        raise TemplateError(f"{logical_id}: {exc}") from exc


def _sam_event_rules(
    resolver: _Resolver, logical_id: str, properties: dict[str, Any]
) -> list[RuleSpec]:
    events = properties.get("Events")
    if not isinstance(events, dict):
        return []
    rules = []
    for event_name, event in events.items():
        if not isinstance(event, dict) or event.get("Type") not in _SAM_RULE_EVENT_TYPES:
            continue
        event_properties = event.get("Properties") or {}
        if not _enabled(resolver, event_properties):
            continue
        try:
            pattern = _pattern(resolver.resolve(event_properties.get("Pattern")))
            bus = _bus_name(resolver.resolve(event_properties.get("EventBusName")))
        except TemplateError as exc:
            raise TemplateError(f"event {event_name}: {exc}") from exc
        rules.append(RuleSpec(str(event_name), bus, pattern, logical_id))
    return rules


def _rules_by_function(resolver: _Resolver) -> dict[str, list[RuleSpec]]:
    """The AWS::Events::Rule resources, by the logical id of each function they target."""
    functions = resolver.resources_of_type(_FUNCTION)
    function_by_name = {resolver.physical_name(function): function for function in functions}
    rules: dict[str, list[RuleSpec]] = {}
    for logical_id in resolver.resources_of_type(_EVENTS_RULE):
        properties = resolver.properties(logical_id)
        if not _enabled(resolver, properties) or properties.get("EventPattern") is None:
            continue  # disabled, or a schedule-only rule
        try:
            pattern = _pattern(resolver.resolve(properties["EventPattern"]))
            bus = _bus_name(resolver.resolve(properties.get("EventBusName")))
            raw_targets = properties.get("Targets")
            if not isinstance(raw_targets, list):  # e.g. a whole list chosen by Fn::If
                raw_targets = resolver.resolve(raw_targets)
            targets = [
                function_by_name.get(_lambda_name(_target_arn(resolver, target)), "")
                for target in _as_list(raw_targets)
            ]
        except TemplateError as exc:
            raise TemplateError(f"{logical_id}: {exc}") from exc
        for function in dict.fromkeys(target for target in targets if target):
            rules.setdefault(function, []).append(RuleSpec(logical_id, bus, pattern, function))
    return rules


def _target_arn(resolver: _Resolver, target: Any) -> Any:
    # Resolve only the Arn of a plain target: its other settings (input transformers,
    # dead-letter queues...) do not matter here and may not resolve locally.
    if isinstance(target, dict) and "Arn" in target:
        return resolver.resolve(target["Arn"])
    resolved = resolver.resolve(target)
    return resolved.get("Arn") if isinstance(resolved, dict) else None


def _lambda_name(arn: Any) -> str:
    """The function name in a Lambda ARN (alias/version suffix dropped), or the string."""
    if not isinstance(arn, str):
        return ""
    match = re.match(r"arn:[^:]+:lambda:[^:]*:[^:]*:function:([^:]+)", arn)
    return match.group(1) if match else arn


def _enabled(resolver: _Resolver, properties: dict[str, Any]) -> bool:
    state = resolver.resolve(properties.get("State"))
    enabled = resolver.resolve(properties.get("Enabled"))
    return state != "DISABLED" and enabled is not False and enabled != "false"


def _pattern(value: Any) -> dict[str, Any]:
    if isinstance(value, str):  # EventPattern may be a JSON string
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise TemplateError(f"event pattern is not valid JSON: {exc}") from exc
    if not isinstance(value, dict) or not value:
        raise TemplateError(f"event pattern must be a non-empty object, got {value!r}")
    flattened: dict[str, Any] = _flatten_lists(value)
    return flattened


def _flatten_lists(node: Any) -> Any:
    """Splice lists nested in lists into their parent (list parameters inside a list)."""
    if isinstance(node, dict):
        return {key: _flatten_lists(value) for key, value in node.items()}
    if isinstance(node, list):
        flat: list[Any] = []
        for item in node:
            item = _flatten_lists(item)
            flat.extend(item if isinstance(item, list) else [item])
        return flat
    return node


def _bus_name(value: Any) -> str | None:
    """An EventBusName (a name or an ARN) as a name; None for the default bus."""
    if value is None or value is _NO_VALUE:
        return None
    name = _to_str(value)
    if name.startswith("arn:") and "event-bus/" in name:
        name = name.split("event-bus/", 1)[1]
    return None if name in ("", "default") else name


def _variables(environment: Any) -> dict[str, Any]:
    if not isinstance(environment, dict):
        return {}
    variables = environment.get("Variables")
    return variables if isinstance(variables, dict) else {}


def _as_list(value: Any) -> list[Any]:
    if value is None or value is _NO_VALUE:
        return []
    return value if isinstance(value, list) else [value]


def _as_int(value: Any, default: int) -> int:
    if value is None:
        return default
    try:
        return int(float(_to_str(value)))
    except ValueError as exc:
        raise TemplateError(f"{value!r} is not a number") from exc
