"""BILLmanager documents: built as XML elements, served as XML or mapped to JSON."""

from __future__ import annotations

import json
import re
from xml.etree import ElementTree as ET


def el(tag: str, text=None, attrs: dict | None = None, children=()) -> ET.Element:
    """An element with optional text, attributes (None values dropped) and children."""
    if attrs:
        element = ET.Element(tag, {k: str(v) for k, v in attrs.items() if v is not None})
    else:
        element = ET.Element(tag)
    if text is not None:
        element.text = str(text)
    if children:
        element.extend(children)
    return element


def doc(*children: ET.Element) -> ET.Element:
    return el("doc", children=children)


def fields(**values) -> list[ET.Element]:
    """One child element per keyword (None values left out), for list rows and forms."""
    elements = []
    for name, value in values.items():
        if value is not None:
            element = ET.Element(name)
            element.text = str(value)
            elements.append(element)
    return elements


def to_xml(root: ET.Element) -> bytes:
    """The document as bytes, exactly as `ET.tostring(root, encoding="utf-8")` writes it.

    Written here because ElementTree's serializer, in pure Python, took most of a call's time.
    """
    parts: list[str] = []
    _write(root, parts.append)
    body = "".join(parts).encode("utf-8", "xmlcharrefreplace")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


def _write(element: ET.Element, write) -> None:
    write("<" + element.tag)
    for name, value in element.items():
        write(f' {name}="{_escape_attribute(value)}"')
    if element.text or len(element):
        write(">")
        if element.text:
            write(_escape_text(element.text))
        for child in element:
            _write(child, write)
        write(f"</{element.tag}>")
    else:
        write(" />")
    if element.tail:
        write(_escape_text(element.tail))


# Characters XML 1.0 cannot carry at all, even escaped: most controls, lone surrogates.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _escape_text(text: str) -> str:
    if NOT_XML.search(text):
        text = NOT_XML.sub("\ufffd", text)
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


ATTRIBUTE_ESCAPES = (('"', "&quot;"), ("\r", "&#13;"), ("\n", "&#10;"), ("\t", "&#09;"))


def _escape_attribute(value: str) -> str:
    value = _escape_text(value)
    for char, entity in ATTRIBUTE_ESCAPES:
        if char in value:
            value = value.replace(char, entity)
    return value


def to_mapping(element: ET.Element) -> dict:
    """BILLmanager's XML-to-JSON mapping: `$` text, `$attr` attributes, repeats as lists."""
    node: dict = {f"${name}": value for name, value in element.attrib.items()}
    if (
        element.text is not None
        and element.text.strip() != ""
        or (element.text is not None and not len(element))
    ):
        node["$"] = element.text
    for child in element:
        value = to_mapping(child)
        if child.tag in node:
            if not isinstance(node[child.tag], list):
                node[child.tag] = [node[child.tag]]
            node[child.tag].append(value)
        else:
            node[child.tag] = value
    return node


def to_json(root: ET.Element) -> bytes:
    return json.dumps({root.tag: to_mapping(root)}, ensure_ascii=False).encode("utf-8")
