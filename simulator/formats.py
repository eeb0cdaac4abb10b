"""BILLmanager replies: one document model, rendered in every `out` format the simulator speaks.

A function builds a `Document`: a `<doc>` tree of elements and the kind of reply it is (a list,
a form, the result of an action, plain data or an error). `render` turns it into bytes:

- `xml` (the default; `devel` is the same) as BILLmanager writes it;
- `json`, `sjson`, `xjson`: BILLmanager's XML-to-JSON mapping under `{"doc": ...}` (`$` text,
  `$attr` attributes, repeated elements as arrays; `elem`, `list`, `slist` and `val` always
  arrays, even alone; another lone element an object);
- `bjson` (BILLmanager 6): no `doc` wrapper; list rows and form fields (under `model`) as plain
  strings with an attribute as `<field>_<attr>`; results such as a new id as `{"v": ...}`;
- `ajax` (no `out`, `sfrom=ajax`, as the web UI asks): rows under `content`, each cell
  `{"v": ...}`; results and errors as `message`.

An attribute whose name starts with `_` is for renderers only: `_label` is the text a cell shows
where the format shows labels (bjson, ajax) rather than the raw value (XML, JSON).
"""

from __future__ import annotations

import copy
import io
import json
import re
from itertools import islice, repeat
from xml.etree import ElementTree as ET

LIST, FORM, ACTION, DATA, ERROR = "list", "form", "action", "data", "error"
ALWAYS_LISTS = frozenset({"elem", "list", "slist", "val"})


class Document:
    """What a function answers, before it is rendered: a `<doc>` tree and its kind.

    A list made by `rows` keeps its rows as given until something asks for `root`, and a form
    made by `form` its fields: the XML renderer writes them straight to text (`cell` rows and
    fields without an element each), the others read the tree, built then. A document `kept`
    for many replies keeps each rendering it was given (`renderings`); it must not change after
    that: `changeable` gives a copy to change.
    """

    __slots__ = ("_root", "kind", "_rows", "_tail", "_fields", "renderings")

    def __init__(self, kind: str, children=()):
        self._root = el("doc", children=children)
        self.kind = kind
        self._rows: list | None = None
        self._tail: list[ET.Element] = []
        self._fields: list | None = None
        self.renderings: dict | None = None

    @property
    def root(self) -> ET.Element:
        if self._rows is not None:
            self._root.extend(el("elem", children=[_element(c) for c in r]) for r in self._rows)
            self._root.extend(self._tail)
            self._rows, self._tail = None, []
        if self._fields is not None:
            self._root.extend(map(_element, self._fields))
            self._fields = None
        return self._root

    def kept(self) -> Document:
        """This document, to be rendered for many replies: each rendering is made once."""
        self.renderings = {}
        return self

    def changeable(self) -> Document:
        """This document, or a copy of a kept one (its root's children shared), to change."""
        if self.renderings is None:
            return self
        twin = Document(self.kind)
        twin._root = copy.copy(self.root)
        return twin

    def add(self, *children: ET.Element) -> Document:
        if self._rows is not None:
            self._tail.extend(children)
        elif self._fields is not None:
            self._fields.extend(children)
        else:
            self._root.extend(children)
        return self

    def has(self, tag: str) -> bool:
        if self._rows is not None and tag.isidentifier():  # a bare tag: no need for the rows
            return tag == "elem" or any(c.tag == tag for c in (*self._root, *self._tail))
        if self._fields is not None and tag.isidentifier():
            return any(_tag(c) == tag for c in self._fields)
        return self.root.find(tag) is not None

    def __repr__(self) -> str:
        return f"Document({self.kind!r}, {to_xml(self.root)[39:]!r})"


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


def fields(**values) -> list[ET.Element]:
    """One child element per keyword (None values left out), for list rows and forms."""
    elements = []
    for name, value in values.items():
        if value is not None:
            element = ET.Element(name)
            element.text = str(value)
            elements.append(element)
    return elements


def cells(**values) -> list[tuple]:
    """A list row's cells as `fields` would make them, without an element each: a list may
    have tens of thousands of rows, and its XML is written from these directly."""
    return [(name, str(value), None) for name, value in values.items() if value is not None]


def cell(tag: str, value, label, **attrs) -> tuple:
    """A `shown` cell of a list row, as `cells` makes them."""
    named = {k: str(v) for k, v in {**attrs, "_label": label}.items() if v is not None}
    return (tag, None if value is None else str(value), named or None)


def _tag(cell) -> str:
    """A cell's tag, whether a `cells`/`cell` tuple or an element."""
    return cell[0] if type(cell) is tuple else cell.tag


def _element(cell) -> ET.Element:
    """A row's cell as an element: a `cells`/`cell` tuple made one, an element as it is."""
    if isinstance(cell, tuple):
        tag, text, attrs = cell
        element = ET.Element(tag, attrs) if attrs else ET.Element(tag)
        element.text = text
        return element
    return cell


def shown(tag: str, value, label, **attrs) -> ET.Element:
    """A cell whose raw `value` XML and JSON show, and whose `label` bjson and ajax show."""
    return el(tag, value, {**attrs, "_label": label})


def slist(name: str, values) -> ET.Element:
    """A select: `values` are (key, label) pairs or (key, label, {attrs}) triples."""
    return el(
        "slist",
        attrs={"name": name},
        children=[el("val", v[1], {"key": v[0], **(v[2] if len(v) > 2 else {})}) for v in values],
    )


def named_list(name: str, rows) -> ET.Element:
    """A named sub-list of a form (`<list name=...><elem>...</elem></list>`)."""
    return el("list", attrs={"name": name}, children=[el("elem", children=r) for r in rows])


def form(*children) -> Document:
    """A form of these fields: elements, or `cells`/`cell` tuples that XML writes directly."""
    document = Document(FORM)
    document._fields = list(children)
    return document


def data(*children: ET.Element) -> Document:
    return Document(DATA, children)


def action(*children: ET.Element) -> Document:
    """The result of an action that succeeded: `<ok/>` and whatever else it reports."""
    return Document(ACTION, (el("ok"), *children))


class Made:
    """Rows made from `things` by `row`, afresh each time they are read: a long list's rows
    are written one at a time, and none is kept (each is made under the seller's lock)."""

    __slots__ = ("things", "row", "written")

    def __init__(self, things, row, written=None):
        # `written(thing)`, if given, is `row_xml(row(thing))`, as a row maker may keep it
        self.things, self.row, self.written = things, row, written

    def __iter__(self):
        return map(self.row, self.things)


def rows(elems, **meta) -> Document:
    """A list: one `<elem>` per row (each a list of cells: elements, or `cells`/`cell`
    tuples), then its metadata (`p_elems`...)."""
    document = Document(LIST)
    document._rows = elems  # read by the XML writer, or once to build `root`
    return document.add(*fields(**meta))


def error(type: str, object: str, msg: str, params: dict | None = None) -> Document:
    """`doc.error` as BILLmanager gives it: type, object, params and a message."""
    children = []
    if object:
        children.append(el("param", object, {"name": "object", "type": "msg", "msg": object}))
    children += [el("param", value, {"name": name}) for name, value in (params or {}).items()]
    children.append(el("msg", msg))
    return Document(
        ERROR,
        [el("error", attrs={"type": type, "object": object, "lang": "en"}, children=children)],
    )


# -- XML ---------------------------------------------------------------------------------------


XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
CHUNK_ROWS = 256  # a list's rows written before they are encoded (each row is one string)
CHUNK_PARTS = 4096  # strings written before they are encoded: a long feed is never all text


def to_xml(root: ET.Element) -> bytes:
    """The document as bytes, as `ET.tostring(root, encoding="utf-8")` writes it.

    Written here because ElementTree's serializer, in pure Python, took most of a call's time;
    attributes for renderers only (`_label`) are left out.
    """
    if not len(root):
        parts: list[str] = []
        _write(root, parts)
        return XML_DECLARATION + _encoded(parts)
    writer = _Chunks(_head(root) + ">" + _escape_text(root.text or ""))
    _write_children(root, writer.parts, writer)
    writer.parts.append(f"</{root.tag}>")
    if root.tail:
        writer.parts.append(_escape_text(root.tail))
    return writer.bytes()


class _Chunks:
    """A reply's text encoded a few thousand strings at a time into one growing buffer, so a
    reply of 100,000 events never holds all its text beside its bytes, nor its bytes twice."""

    __slots__ = ("parts", "out")

    def __init__(self, first: str):
        self.parts, self.out = [first], None

    def spill(self, limit: int = CHUNK_PARTS) -> None:
        if len(self.parts) >= limit:
            if self.out is None:
                self.out = io.BytesIO()
                self.out.write(XML_DECLARATION)
            self.out.write(_encoded(self.parts))
            self.parts.clear()

    def bytes(self) -> bytes:
        if self.out is None:  # most replies: one piece
            return XML_DECLARATION + _encoded(self.parts)
        self.out.write(_encoded(self.parts))
        return self.out.getvalue()  # the buffer itself, not a copy


def _encoded(parts: list[str]) -> bytes:
    return "".join(parts).encode("utf-8", "xmlcharrefreplace")


def _head(element: ET.Element) -> str:
    """An element's start tag without its closing `>`: the tag and its attributes."""
    attributes = element.items()  # not `attrib`, which gives an element a dict it keeps
    return "<" + element.tag + _attribute_text(attributes) if attributes else "<" + element.tag


def _attribute_text(items) -> str:
    """Attributes as a start tag writes them, each after a space; those for renderers left out."""
    written = ""
    for name, value in items:
        if name[0] != "_":
            shown = _escape_attribute(value) if _attribute_special(value) else value
            written += f' {name}="{shown}"'
    return written


def _write(element: ET.Element, parts: list[str]) -> None:
    tag = element.tag
    head = _head(element)
    text = element.text
    if len(element):
        parts.append(head + ">" + _escape_text(text) if text else head + ">")
        _write_children(element, parts)
        parts.append(f"</{tag}>")
    elif text:
        parts.append(f"{head}>{_escape_text(text)}</{tag}>")
    else:
        parts.append(head + " />")
    if element.tail:
        parts.append(_escape_text(element.tail))


def _write_children(children, parts: list[str], writer: _Chunks | None = None) -> None:
    """Elements as `_write` writes each; with `writer`, its parts spilled as they grow."""
    for child in children:
        if len(child) or child.tail:
            _write(child, parts)
        else:  # a leaf, most of any document: written here, without a call but to escape
            name, text, attributes = child.tag, child.text, child.items()
            head = name + _attribute_text(attributes) if attributes else name
            if text:
                shown = _escape_text(text) if _text_special(text) else text
                parts.append(f"<{head}>{shown}</{name}>")
            else:
                parts.append(f"<{head} />")
        if writer is not None and len(parts) >= CHUNK_PARTS:
            writer.spill()


def row_xml(cells) -> str:
    """A list row's `<elem>` as the XML of a list shows it, from its cells."""
    return _row(cells)


def _row(cells) -> str:
    """A list row's `<elem>` as `_write` writes it, from its cells (tuples or elements)."""
    if not cells:
        return "<elem />"
    return "<elem>" + _cells_xml(cells) + "</elem>"


def _cells_xml(cells) -> str:
    """Cells (tuples or elements) as `_write_children` writes the elements they stand for."""
    if all(map(isinstance, cells, repeat(tuple))) and not _special(cells):
        # nothing to escape anywhere in the row (one search, not one per cell); the cells
        # written in one comprehension, not an append each: a long list has many
        return "".join(
            [
                _attributed(tag, text, attrs)
                if attrs
                else (f"<{tag}>{text}</{tag}>" if text else f"<{tag} />")
                for tag, text, attrs in cells
            ]
        )
    parts: list[str] = []
    for cell in cells:
        if type(cell) is not tuple:
            _write_children((cell,), parts)
            continue
        tag, text, attrs = cell
        head = tag + _attribute_text(attrs.items()) if attrs else tag
        parts.append(f"<{head}>{_escape_text(text)}</{tag}>" if text else f"<{head} />")
    return "".join(parts)


def _attributed(tag: str, text: str | None, attrs: dict) -> str:
    """A cell with attributes that need no escaping, as `_row` writes it."""
    head = tag
    for name, value in attrs.items():
        if name[0] != "_":
            head += f' {name}="{value}"'
    return f"<{head}>{text}</{tag}>" if text else f"<{head} />"


def _special(cells) -> bool:
    """Whether any tag-free text or attribute value of these cells needs escaping."""
    if TEXT_SPECIAL.search("".join([c[1] for c in cells if c[1]])):
        return True
    values = [v for c in cells if c[2] for v in c[2].values()]
    return bool(values) and ATTRIBUTE_SPECIAL.search("".join(values)) is not None


# Characters XML 1.0 cannot carry at all, even escaped: most controls, lone surrogates.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Any character text or an attribute cannot carry as it is: most text has none.
TEXT_SPECIAL = re.compile("[&<>\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
ATTRIBUTE_SPECIAL = re.compile('[&<>"\r\n\t\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]')
_text_special = TEXT_SPECIAL.search  # asked of each text and value before any escaping call
_attribute_special = ATTRIBUTE_SPECIAL.search


def _escape_text(text: str) -> str:
    if not TEXT_SPECIAL.search(text):
        return text
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
    if not ATTRIBUTE_SPECIAL.search(value):
        return value
    value = _escape_text(value)
    for char, entity in ATTRIBUTE_ESCAPES:
        if char in value:
            value = value.replace(char, entity)
    return value


# -- JSON (json, sjson, xjson) -----------------------------------------------------------------


def to_mapping(element: ET.Element) -> dict:
    """BILLmanager's XML-to-JSON mapping: `$` text, `$attr` attributes, repeats as lists."""
    node: dict = {f"${name}": value for name, value in element.items() if name[0] != "_"}
    text = element.text
    if text is not None and (text.strip() != "" or not len(element)):
        node["$"] = text
    for child in element:
        value = to_mapping(child)
        tag = child.tag
        if tag in node:
            existing = node[tag]
            if isinstance(existing, list):
                existing.append(value)
            else:
                node[tag] = [existing, value]
        elif tag in ALWAYS_LISTS:
            node[tag] = [value]
        else:
            node[tag] = value
    return node


def _dump(value) -> bytes:
    # `replace` only guards: input with lone surrogates is refused before any function runs
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "replace")


def to_json(document: Document, context: dict) -> bytes:
    return _dump({"doc": to_mapping(document.root)})


# -- bjson and ajax ----------------------------------------------------------------------------


def _cell_text(cell: ET.Element) -> str:
    label = cell.get("_label")
    return label if label is not None else (cell.text or "")


def _attributes(element: ET.Element, skip=()) -> dict:
    return {k: v for k, v in element.items() if k[0] != "_" and k not in skip}


def _put(node: dict, key: str, value) -> None:
    """Set `key`, turning a repeated key into a list of its values."""
    if key not in node:
        node[key] = value
    elif isinstance(node[key], list):
        node[key].append(value)
    else:
        node[key] = [node[key], value]


def _flat(element: ET.Element) -> dict:
    """A list row or a form's fields as plain strings; an attribute `a` of `f` as `f_a`.

    A `<param name="x">` stands for the field it names.
    """
    row: dict = {}
    for cell in element:
        if cell.tag == "param" and cell.get("name"):
            _put(row, cell.get("name"), cell.text or "")
            continue
        _put(row, cell.tag, _bmap(cell) if len(cell) else _cell_text(cell))
        for name, value in _attributes(cell).items():
            row[f"{cell.tag}_{name}"] = value
    return row


def _bmap(element: ET.Element):
    """Plain data in bjson: a bare leaf is its text; otherwise attributes, children and `v`."""
    attrs = _attributes(element)
    if not len(element) and not attrs:
        return _cell_text(element)
    node: dict = dict(attrs)
    if element.text and element.text.strip():
        node["v"] = _cell_text(element)
    for child in element:
        _put(node, child.tag, _bmap(child))
    return node


def _vmap(element: ET.Element) -> dict:
    """A result in bjson: every value as `{"v": ...}`, nested results as objects."""
    node: dict = _attributes(element)
    if not len(element):
        node["v"] = _cell_text(element)
        return node
    for child in element:
        _put(node, child.tag, _vmap(child))
    return node


def _selects(element: ET.Element) -> list[dict]:
    return [{"k": v.get("key", ""), "v": v.text or "", **_attributes(v, ("key",))} for v in element]


def _b_form(root: ET.Element, out: dict) -> dict:
    model: dict = {}
    for child in root:
        if child.tag == "slist":
            out.setdefault("slist", {})[child.get("name", "")] = _selects(child)
        elif child.tag == "list":
            out.setdefault("list", {})[child.get("name", "")] = [
                _flat(e) for e in child.findall("elem")
            ]
        elif child.tag == "ok":
            out["ok"] = {"v": child.text or ""}
        else:
            model.update(_flat(el("row", children=[child])))
    out["model"] = model
    return out


def to_bjson(document: Document, context: dict) -> bytes:
    root, kind = document.root, document.kind
    out: dict = {"func": context.get("func", "")}
    if kind == LIST:
        out["elem"] = []
        for child in root:
            if child.tag == "elem":
                out["elem"].append(_flat(child))
            else:
                out[child.tag] = _cell_text(child)
    elif kind == FORM:
        _b_form(root, out)
    elif kind == ACTION:
        for child in root:
            _put(out, child.tag, _vmap(child))
    else:
        for child in root:
            _put(out, child.tag, _bmap(child))
    return _dump(out)


def _ajax_cell(cell: ET.Element) -> dict:
    return {"v": _cell_text(cell), **_attributes(cell)}


def to_ajax(document: Document, context: dict) -> bytes:
    root, kind = document.root, document.kind
    if kind == LIST:
        out: dict = {"func": context.get("func", ""), "content": []}
        for child in root:
            if child.tag == "elem":
                out["content"].append({cell.tag: _ajax_cell(cell) for cell in child})
            else:
                out[child.tag] = _cell_text(child)
        return _dump(out)
    if kind == ERROR:
        problem = root.find("error")
        msg = problem.findtext("msg") or ""
        keys = context.get("elids") or [problem.get("object") or problem.get("type", "")]
        return _dump(
            {
                "func": context.get("func", ""),
                "message": [{"status": "error", "type": problem.get("type", ""), "msg": msg}],
                "warning": {key: {"msg": msg} for key in keys},
                "error": _bmap(problem),
            }
        )
    if kind == ACTION:
        out = {"func": context.get("func", ""), "message": [{"status": "ok"}]}
        for child in root:
            _put(out, child.tag, _vmap(child))
        return _dump(out)
    return to_bjson(document, context)


def _xml(document: Document, context: dict) -> bytes:
    fields = document._fields
    if fields:  # a form's `<doc>`: no attributes or text of its own, its fields written here
        return XML_DECLARATION + _encoded(["<doc>", _cells_xml(fields), "</doc>"])
    if document._rows is None:
        return to_xml(document.root)
    root = document._root  # a list's `<doc>`: no attributes, text or children of its own yet
    writer = _Chunks(_head(root) + ">")
    made = document._rows
    if type(made) is Made and made.written is not None:
        written = map(made.written, made.things)  # rows the row maker keeps written
    else:
        written = map(_row, made)  # each row made as it is written, and dropped
    parts = writer.parts
    while chunk := list(islice(written, CHUNK_ROWS)):  # not a call per row to spill
        parts += chunk
        writer.spill(CHUNK_ROWS)
    _write_children(document._tail, writer.parts)
    writer.parts.append(f"</{root.tag}>")
    return writer.bytes()


XML_TYPE, JSON_TYPE = "text/xml", "application/json"
FORMATS = {
    "xml": (_xml, XML_TYPE),
    "devel": (_xml, XML_TYPE),
    "json": (to_json, JSON_TYPE),
    "sjson": (to_json, JSON_TYPE),
    "xjson": (to_json, JSON_TYPE),
    "bjson": (to_bjson, JSON_TYPE),
    "ajax": (to_ajax, JSON_TYPE),
}
# An `out` the simulator does not speak is refused in this format: a JSON client can read it,
# and an XML client fails loudly rather than parse an error as the document it asked for.
REFUSAL_FORMAT = "json"


def format_of(params: dict) -> tuple[str, str | None]:
    """The format a request asks for, and the `out` it sent if that is one not spoken."""
    out = params.get("out")
    if out is None or out == "":
        return ("ajax" if params.get("sfrom") == "ajax" else "xml"), None
    out = str(out)
    if out in FORMATS and out != "ajax":
        return out, None
    return REFUSAL_FORMAT, out


RENDERINGS_KEPT = 16  # per kept document: the formats, times the few ways to name a function


def render(document: Document, name: str, context: dict) -> tuple[bytes, str]:
    """The document in format `name` (a key of FORMATS), and its content type.

    A kept document's rendering is made once per format and context (bjson and ajax show the
    function's name; ajax an error's elids).
    """
    renderer, mimetype = FORMATS[name]
    kept = document.renderings
    if kept is None:
        return renderer(document, context), mimetype
    key = (name, context.get("func", ""), tuple(context.get("elids", ())))
    body = kept.get(key)
    if body is None:
        body = renderer(document, context)
        if len(kept) < RENDERINGS_KEPT:
            kept[key] = body
    return body, mimetype
