"""What a BILLmanager reply looks like apart from its data, and how two replies' shapes differ.

A shape maps each path in a reply to the kinds of value found there. XML is read by element
paths and attributes (`doc/elem/id`, `doc/auth/@id`); JSON by key paths and value types
(`doc.elem[].id.$`), where a list and an object are different kinds. Values are normalised to
kinds (`number` for ids, counts and money, `date`, `datetime`, `text`), keys that are ids to
`<id>` (`addon_12` -> `addon_<id>`), and lists of named elements (`slist`, `list`, `param`)
are told apart by their name, as clients pick them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from xml.etree import ElementTree as ET

from simulator.cassette import PLACEHOLDER

NAMED = {"slist", "list", "param"}
NUMBER = re.compile(r"-?\d+(\.\d+)?")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?")
# Kinds that fit any other scalar: a value not filled in yet, or one masked in the recording.
WILDCARDS = {"empty", "masked"}
SCALARS = {"number", "date", "datetime", "text", "json-number", "boolean", "null"}

Path = tuple[str, ...]


@dataclass
class Reply:
    """A reply parsed as far as its format allows: `xml` (root), `json` (data) or `text`."""

    format: str
    root: ET.Element | None = None
    data: object = None
    problem: str = ""

    @property
    def tree(self):
        """The reply as nested dicts and lists, XML mapped as BILLmanager maps it to JSON."""
        if self.format == "xml":
            return {self.root.tag: mapping(self.root)}
        return self.data if self.format == "json" else None


def parse_reply(body: str, content_type: str = "") -> Reply:
    """The reply read by its content type, or by its first character when that says nothing."""
    stripped = body.lstrip()
    looks_xml = "xml" in content_type or (
        "json" not in content_type and stripped.startswith("<") and not _is_html(stripped)
    )
    if looks_xml and stripped:
        try:
            return Reply("xml", root=ET.fromstring(body.encode("utf-8")))
        except ET.ParseError as error:
            return Reply("text", problem=f"not well-formed XML: {error}")
    if "json" in content_type or stripped.startswith(("{", "[")):
        try:
            return Reply("json", data=json.loads(body))
        except json.JSONDecodeError as error:
            return Reply("text", problem=f"not JSON: {error.msg}")
    return Reply("text")


def _is_html(text: str) -> bool:
    return text[:15].lower().startswith(("<!doctype html", "<html"))


def mapping(element: ET.Element) -> dict:
    """BILLmanager's XML-to-JSON mapping: `$` text, `$attr` attributes, repeats as lists."""
    node: dict = {f"${name}": value for name, value in element.attrib.items()}
    if element.text is not None and (element.text.strip() or not len(element)):
        node["$"] = element.text
    for child in element:
        value = mapping(child)
        if child.tag not in node:
            node[child.tag] = value
        elif isinstance(node[child.tag], list):
            node[child.tag].append(value)
        else:
            node[child.tag] = [node[child.tag], value]
    return node


def text(node) -> str:
    """A value's text, whichever way it is written: `"x"`, `{"$": "x"}` or `{"v": "x"}`."""
    if isinstance(node, str | int | float) and not isinstance(node, bool):
        return str(node)
    if isinstance(node, dict):
        for key in ("$", "v", "$orig"):
            if key in node and not isinstance(node[key], dict | list):
                return text(node[key])
    return ""


def attr(node, name: str) -> str:
    """An attribute as the JSON mapping writes it (`$name`), or a plain key of that name."""
    if not isinstance(node, dict):
        return ""
    return text(node.get(f"${name}", node.get(name)))


def rows(node) -> list:
    """A child that may be one object or a list of them, as a list."""
    if node is None:
        return []
    return node if isinstance(node, list) else [node]


def error_type(reply: Reply) -> str | None:
    """The `type` of the reply's `doc.error`, if it is an error."""
    if reply.format == "xml":
        error = reply.root if reply.root.tag == "error" else reply.root.find("error")
        return None if error is None else error.get("type", "")
    if reply.format == "json" and isinstance(reply.data, dict):
        doc = reply.data.get("doc", reply.data)
        error = doc.get("error") if isinstance(doc, dict) else None
        if isinstance(error, dict):
            return attr(error, "type")
    return None


def kind_of(value: str) -> str:
    """The kind a scalar value is normalised to."""
    value = value.strip()
    if not value:
        return "empty"
    if PLACEHOLDER.fullmatch(value):
        return "masked"
    if NUMBER.fullmatch(value):
        return "number"
    if DATETIME.fullmatch(value):
        return "datetime"
    if DATE.fullmatch(value):
        return "date"
    return "text"


def key_segment(name: str) -> str:
    """A key or tag with the ids in it normalised: `12` -> `<id>`, `addon_12` -> `addon_<id>`."""
    if name.isdigit():
        return "<id>"
    return re.sub(r"_\d+$", "_<id>", name)


def named_segment(name: str, discriminator) -> str:
    segment = key_segment(name)
    if name in NAMED and isinstance(discriminator, str) and discriminator:
        return f"{segment}[name={key_segment(discriminator)}]"
    return segment


@dataclass
class Shape:
    """The paths of one reply and the kinds of value at each."""

    format: str
    kinds: dict[Path, set[str]] = field(default_factory=dict)
    error: str | None = None

    def add(self, path: Path, kind: str) -> None:
        self.kinds.setdefault(path, set()).add(kind)


def shape_of(reply: Reply) -> Shape:
    shape = Shape(reply.format, error=error_type(reply))
    if reply.format == "xml":
        _walk_xml(reply.root, (reply.root.tag,), shape)
    elif reply.format == "json":
        _walk_json(reply.data, (), shape)
    return shape


def _walk_xml(element: ET.Element, path: Path, shape: Shape) -> None:
    for name, value in element.attrib.items():
        shape.add(path + ("@" + key_segment(name),), kind_of(value))
    if len(element):
        shape.add(path, "element")
        for child in element:
            _walk_xml(child, path + (named_segment(child.tag, child.get("name")),), shape)
    else:
        shape.add(path, kind_of(element.text or ""))


def _walk_json(node, path: Path, shape: Shape, kind: str | None = "object") -> None:
    """Record `node` at `path` and all under it; `kind` is what a mapping there counts as."""
    if isinstance(node, dict):
        if path and kind:
            shape.add(path, kind)
        for key, child in node.items():
            segment = key_segment(key)
            if isinstance(child, list):
                _walk_list(child, path, key, shape)
            elif named_segment(key, _name(child)) != segment:
                shape.add(path + (segment,), "object")
                _walk_json(child, path + (named_segment(key, _name(child)),), shape, "item")
            else:
                _walk_json(child, path + (segment,), shape)
    elif isinstance(node, list):
        _walk_list(node, path, "[]", shape)
    elif isinstance(node, bool):
        shape.add(path, "boolean")
    elif node is None:
        shape.add(path, "null")
    elif isinstance(node, int | float):
        shape.add(path, "json-number")
    else:
        shape.add(path, kind_of(str(node)))


def _walk_list(items: list, path: Path, key: str, shape: Shape) -> None:
    """A list under `key`: its rows share its path (their keys are its columns), named items
    (`slist`, `list`, `param` with a `$name`) have their own, scalars are at `key[]`."""
    container = path + (key_segment(key),)
    shape.add(container, "list")
    for item in items:
        named = named_segment(key, _name(item))
        if isinstance(item, dict):
            if named != key_segment(key):
                _walk_json(item, path + (named,), shape, "item")
            else:
                _walk_json(item, container, shape, None)
        else:
            _walk_json(item, container + ("[]",), shape)


def _name(node) -> str | None:
    return node.get("$name") if isinstance(node, dict) else None


def _fits(recorded: set[str], replayed: set[str]) -> bool:
    left, right = recorded - WILDCARDS, replayed - WILDCARDS
    if not left or not right:
        # a wildcard fits a scalar, not a structure
        return not (left | right) - SCALARS
    return bool(left & right)


def differences(recorded: Shape, replayed: Shape) -> list[str]:
    """How the replayed reply's shape differs from the recorded one, one line each."""
    if recorded.format != replayed.format:
        return [f"format: {recorded.format} in recording, {replayed.format} in simulator"]
    if recorded.error != replayed.error:
        if recorded.error is None:
            return [f"error: none in recording, {replayed.error!r} in simulator"]
        if replayed.error is None:
            return [f"error: {recorded.error!r} in recording, none in simulator"]
        found = [f"error type: {recorded.error!r} in recording, {replayed.error!r} in simulator"]
    else:
        found = []
    missing = _topmost(set(recorded.kinds) - set(replayed.kinds))
    extra = _topmost(set(replayed.kinds) - set(recorded.kinds))
    for path in sorted(missing):
        found.append(f"{_display(path, recorded, replayed)}: missing in simulator")
    for path in sorted(extra):
        found.append(f"{_display(path, recorded, replayed)}: not in the recording")
    for path in sorted(set(recorded.kinds) & set(replayed.kinds)):
        left, right = recorded.kinds[path], replayed.kinds[path]
        if not _fits(left, right):
            found.append(
                f"{_display(path, recorded, replayed)}: {_kinds(left)} in recording, "
                f"{_kinds(right)} in simulator"
            )
    return found


def _topmost(paths: set[Path]) -> set[Path]:
    """The paths none of whose ancestors is also in the set: a missing branch is one line."""
    return {p for p in paths if not any(p[:i] in paths for i in range(1, len(p)))}


def _kinds(kinds: set[str]) -> str:
    shown = sorted(kinds - WILDCARDS) or sorted(kinds)
    return "/".join(shown)


def _display(path: Path, recorded: Shape, replayed: Shape) -> str:
    """`doc.elem[].cost` for JSON, `doc/elem/cost` and `doc/auth/@id` for XML."""
    if recorded.format == "xml":
        return "/".join(s.replace("[name=", "[@name=") for s in path)
    shown = []
    for i, segment in enumerate(path):
        if segment == "[]":
            continue  # its list's segment already says []
        kinds = recorded.kinds.get(path[: i + 1], set()) | replayed.kinds.get(path[: i + 1], set())
        shown.append(segment.replace("[name=", "[$name=") + ("[]" if "list" in kinds else ""))
    return ".".join(shown)
