"""Derive the genesyscloud provider schema the Terraform tests check against.

Run by hand when the provider version or a module commit changes (never in tests: the
project must not need the reference material at test time):

    .venv/bin/python scripts/derive_genesyscloud_schema.py \
        --reference ../shared/reference/genesyscloud-terraform \
        --provider-version 1.84.1 > tests/data/terraform/genesyscloud_provider_schema.json

Input: the provider's generated documentation (tfplugindocs markdown: a "## Schema"
section with "### Required / Optional / Read-Only" lists and one "### Nested Schema for
`a.b`" section per block) and the CX-as-Code modules' variable/output files at the commit
named in each module's COMMIT file. Output: a JSON document shaped loosely like
`terraform providers schema -json` (attributes with required/optional/computed, block
types with nesting mode and min/max items), plus the modules' inputs and outputs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

_ITEM = re.compile(r"^- `(?P<name>[a-z0-9_]+)` \((?P<kind>[^)]*)\)")
_NESTED = re.compile(r"^### Nested Schema for `(?P<path>[a-z0-9_.]+)`")
_SECTION = {
    "### Required": "required",
    "### Optional": "optional",
    "### Read-Only": "computed",
    "Required:": "required",
    "Optional:": "optional",
    "Read-Only:": "computed",
}
_MODULE_REPOSITORY = "git::https://github.com/GenesysCloudDevOps/{name}.git"


def _empty_block() -> dict[str, Any]:
    return {"attributes": {}, "block_types": {}}


def _block_type(kind: str, section: str) -> dict[str, Any]:
    """`Block List, Max: 1` / `Block Set, Min: 1` -> nesting mode and item bounds."""
    nesting = "list" if "Block List" in kind else "set"
    minimum = re.search(r"Min: (\d+)", kind)
    maximum = re.search(r"Max: (\d+)", kind)
    return {
        "nesting_mode": nesting,
        "min_items": int(minimum.group(1)) if minimum else (1 if section == "required" else 0),
        "max_items": int(maximum.group(1)) if maximum else None,
        "block": _empty_block(),
    }


def parse_schema_markdown(text: str) -> dict[str, Any]:
    """The block schema documented in one tfplugindocs page."""
    _, _, schema_text = text.partition("## Schema")
    if not schema_text:
        raise ValueError("no '## Schema' section")
    root = _empty_block()
    current, section = root, ""
    for line in schema_text.splitlines():
        line = line.strip()
        nested = _NESTED.match(line)
        if nested:
            current = root
            for part in nested.group("path").split("."):
                current = current["block_types"][part]["block"]
            section = ""
            continue
        if line in _SECTION:
            section = _SECTION[line]
            continue
        item = _ITEM.match(line)
        if not item or not section:
            continue
        name, kind = item.group("name"), item.group("kind")
        if kind.startswith("Block"):
            current["block_types"][name] = _block_type(kind, section)
        else:
            current["attributes"][name] = {
                "type": kind.split(",")[0].strip(),
                section: True,
                **({"sensitive": True} if "Sensitive" in kind else {}),
            }
    return root


def parse_module(directory: Path) -> dict[str, Any]:
    """A module's inputs (required when they have no default) and outputs, from its .tf
    files read as text: the blocks are simple enough that a regex over them is exact."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(directory.glob("*.tf")))
    variables: dict[str, Any] = {}
    for match in re.finditer(r'variable\s+"([^"]+)"\s*\{(.*?)\n\}', text, re.S):
        body = match.group(2)
        variables[match.group(1)] = {"required": re.search(r"^\s*default\s*=", body, re.M) is None}
    outputs = sorted(re.findall(r'output\s+"([^"]+)"', text))
    return {
        "ref": (directory / "COMMIT").read_text(encoding="utf-8").strip(),
        "variables": variables,
        "outputs": outputs,
    }


def derive(reference: Path, provider_version: str) -> dict[str, Any]:
    docs = reference / "provider-docs"
    resources = {
        f"genesyscloud_{page.stem}": parse_schema_markdown(page.read_text(encoding="utf-8"))
        for page in sorted(docs.glob("*.md"))
        if page.stem != "index"
    }
    modules = {
        _MODULE_REPOSITORY.format(name=directory.name): parse_module(directory)
        for directory in sorted((reference / "modules").iterdir())
        if directory.is_dir()
    }
    return {
        "provider": "mypurecloud/genesyscloud",
        "version": provider_version,
        "derived_by": "scripts/derive_genesyscloud_schema.py",
        "derived_from": (
            "MyPureCloud/terraform-provider-genesyscloud docs (tfplugindocs) of "
            f"v{provider_version}: {', '.join(sorted(p.name for p in docs.glob('*.md')))}; "
            "GenesysCloudDevOps modules at the commits in 'modules'"
        ),
        "provider_config": parse_schema_markdown((docs / "index.md").read_text(encoding="utf-8")),
        "resource_schemas": resources,
        "data_source_schemas": {},
        "modules": modules,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--provider-version", required=True)
    args = parser.parse_args(argv)
    json.dump(derive(args.reference, args.provider_version), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
