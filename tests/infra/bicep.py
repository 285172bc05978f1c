"""Read Bicep templates with tree-sitter-bicep: resources, their literal properties, loaded files.

Just enough of the language for the tests: a resource's body becomes Python values where it is
literal (strings without interpolation, numbers, booleans, objects, arrays) and an `Expr`
holding the source text everywhere else.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import tree_sitter
import tree_sitter_bicep

INFRA_DIR = Path(__file__).resolve().parents[2] / "infra"
"""The templates' folder."""


@dataclass(frozen=True)
class Expr:
    """A value that is not a literal: its Bicep source text."""

    text: str


@dataclass(frozen=True)
class Resource:
    """One `resource` or `module` declaration."""

    path: Path
    symbol: str
    type: str
    body: dict[str, Any]
    existing: bool
    conditional: bool
    looped: bool


@cache
def parser() -> tree_sitter.Parser:
    """A parser for Bicep."""
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_bicep.language()))


def bicep_files() -> list[Path]:
    """Every template under infra/."""
    return sorted(INFRA_DIR.rglob("*.bicep"))


@cache
def parse(path: Path) -> tree_sitter.Tree:
    """The syntax tree of one template."""
    return parser().parse(path.read_bytes())


def walk(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    """Every node under ``node``, depth first."""
    yield node
    for child in node.children:
        yield from walk(child)


def problems(path: Path) -> list[str]:
    """ERROR and MISSING nodes of a template, with their positions."""
    return [
        f"{path.name}:{node.start_point[0] + 1}:{node.start_point[1] + 1}: "
        f"{'MISSING' if node.is_missing else 'ERROR'} {node.text.decode()[:60]!r}"
        for node in walk(parse(path).root_node)
        if node.type == "ERROR" or node.is_missing
    ]


def _text(node: tree_sitter.Node) -> str:
    return node.text.decode("utf-8")


def string_value(node: tree_sitter.Node) -> str | Expr:
    """A string literal's value, or an Expr when it interpolates."""
    if any(child.type == "interpolation" for child in node.children):
        return Expr(_text(node))
    return "".join(_text(child) for child in node.children if child.type == "string_content")


def value(node: tree_sitter.Node) -> Any:
    """A literal as Python, an Expr otherwise."""
    if node.type == "string":
        return string_value(node)
    if node.type == "number":
        return int(_text(node))
    if node.type == "boolean":
        return _text(node) == "true"
    if node.type == "null":
        return None
    if node.type == "object":
        return object_value(node)
    if node.type == "array":
        return [value(child) for child in node.named_children]
    return Expr(_text(node))


def object_value(node: tree_sitter.Node) -> dict[str, Any]:
    """An object literal's properties (keys unquoted)."""
    result: dict[str, Any] = {}
    for prop in node.named_children:
        if prop.type != "object_property":
            continue
        key_node, value_node = prop.named_children[0], prop.named_children[-1]
        key = string_value(key_node) if key_node.type == "string" else _text(key_node)
        result[str(key)] = value(value_node)
    return result


def resources(path: Path) -> list[Resource]:
    """The resource and module declarations of a template."""
    found = []
    for node in parse(path).root_node.named_children:
        if node.type not in ("resource_declaration", "module_declaration"):
            continue
        symbol = _text(node.named_children[0])
        type_node = node.named_children[1]
        kind = string_value(type_node)
        body_node = node.named_children[-1]
        conditional = body_node.type == "if_statement"
        looped = body_node.type == "for_statement"
        if conditional or looped:
            body_node = next(child for child in body_node.named_children if child.type == "object")
        found.append(
            Resource(
                path=path,
                symbol=symbol,
                type=str(kind).split("@")[0] if node.type == "resource_declaration" else "module",
                body=object_value(body_node) if body_node.type == "object" else {},
                existing=any(child.type == "existing" for child in node.children),
                conditional=conditional,
                looped=looped,
            )
        )
    return found


def all_resources() -> list[Resource]:
    """Every declaration in every template."""
    return [resource for path in bicep_files() for resource in resources(path)]


def loaded_files(path: Path) -> list[tuple[str, Path]]:
    """(function, resolved path) of every loadTextContent/loadJsonContent/... call."""
    found = []
    for node in walk(parse(path).root_node):
        if node.type != "call_expression":
            continue
        name = _text(node.named_children[0])
        if not name.startswith("load") or not name.endswith("Content"):
            continue
        arguments = node.named_children[1].named_children
        if arguments and arguments[0].type == "string":
            found.append((name, (path.parent / str(string_value(arguments[0]))).resolve()))
    return found


def parameters(path: Path) -> dict[str, bool]:
    """A template's parameters: name -> whether it has a default value."""
    found = {}
    for node in parse(path).root_node.named_children:
        if node.type == "parameter_declaration":
            name = _text(node.named_children[0])
            found[name] = any(child.type == "=" for child in node.children)
    return found


def module_calls(path: Path) -> list[tuple[str, Path, set[str]]]:
    """(symbol, module file, parameter names passed) for every local module a template calls."""
    calls = []
    for node in parse(path).root_node.named_children:
        if node.type != "module_declaration":
            continue
        target = (path.parent / str(string_value(node.named_children[1]))).resolve()
        body = node.named_children[-1]
        if body.type in ("if_statement", "for_statement"):
            body = next(child for child in body.named_children if child.type == "object")
        params = object_value(body).get("params", {})
        calls.append((_text(node.named_children[0]), target, set(params)))
    return calls


_OPTION_VALUE = r"('[^'\n]*'|[A-Za-z0-9_.]+)"


def render_option(text: str, name: str, *, on: bool) -> str:
    """A template with a bool option fixed: ``name ? a : b`` becomes ``a`` (on) or ``b`` (off).

    checkov evaluates no Bicep expression: a property written as a conditional is neither seen
    as on nor as off. Templates write every value an option decides as ``option ? literal :
    literal``, so that a rendering with the option fixed can be scanned for real.
    """
    pattern = re.compile(rf"\b{re.escape(name)} \? {_OPTION_VALUE} : {_OPTION_VALUE}")
    text = pattern.sub(lambda m: m.group(1 if on else 2), text)
    default = re.compile(rf"^(param {re.escape(name)} bool = )(true|false)$", re.MULTILINE)
    return default.sub(lambda m: m.group(1) + ("true" if on else "false"), text)


def render_tree(destination: Path, name: str, *, on: bool) -> Path:
    """infra/ (and kusto/, which templates load) copied to ``destination`` with an option fixed."""
    shutil.copytree(INFRA_DIR, destination / "infra")
    shutil.copytree(INFRA_DIR.parent / "kusto", destination / "kusto")
    for path in (destination / "infra").rglob("*.bicep"):
        path.write_text(render_option(path.read_text(encoding="utf-8"), name, on=on), "utf-8")
    return destination / "infra"
