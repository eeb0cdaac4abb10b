"""The cassette `run.py record` writes and `run.py parity` reads: one JSON object a line per call.

Secrets never reach the file: passwords, keys, the password of `authinfo` and session ids are
replaced by placeholders (`MASKED-PASSWORD-1`, `MASKED-KEY-1`, `MASKED-SESSION-1`), the same
value always by the same placeholder within a cassette, so a replay can follow sessions.
"""

from __future__ import annotations

import codecs
import json
import re
import threading
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

from werkzeug.http import parse_options_header

PLACEHOLDER = re.compile(r"MASKED-(?:PASSWORD|SESSION|KEY)-\d+")
SESSION_COOKIE_PREFIX = "billmgrses"  # billmgrses5 in BILLmanager 5 and 6
PASSWORD_NAMES = {"password", "passwd", "confirm"}
KEY_NAMES = {"key", "lickey", "apikey", "api_key", "token", "secret"}
# A secret this short is masked in the parameter or cookie that names it, not searched for
# elsewhere: it would mask ids and amounts that happen to contain it.
SHORTEST_SEARCHED = 4


class CassetteError(ValueError):
    """A cassette that cannot be read; the message names the file, the line and the problem."""


@dataclass
class Call:
    """One request through the recording proxy and the upstream's reply to it."""

    n: int = 0  # the call's place in the cassette, from 1
    time: str = ""  # when the proxy received it: ISO 8601, UTC, wall time
    method: str = "GET"
    path: str = "/billmgr"
    query: dict[str, str] = field(default_factory=dict)
    form: dict = field(default_factory=dict)
    body_format: str | None = None  # "form" or "json" when the request had a body we read
    cookies: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    content_type: str = ""
    body: str = ""
    set_cookies: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # "refused", "timeout", "tls" or "failed": the upstream never answered
    elapsed_ms: int | None = None

    @property
    def params(self) -> dict:
        """The call's parameters as BILLmanager merges them: the query's, then the body's."""
        merged = dict(self.form)
        merged.update(self.query)
        return merged

    @property
    def func(self) -> str:
        return str(self.params.get("func", "")).strip()

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


REQUIRED = ("method", "path")
KNOWN = {f.name for f in fields(Call)}


def read_cassette(path: str | Path) -> list[Call]:
    """Every call in a cassette file, in the order they were recorded."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise CassetteError(f"{path}: cannot read: {error.strerror}") from None
    calls = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise CassetteError(f"{where}: not a JSON object: {error.msg}") from None
        if not isinstance(entry, dict):
            raise CassetteError(f"{where}: expected a JSON object, got {type(entry).__name__}")
        for key in REQUIRED:
            if not isinstance(entry.get(key), str):
                raise CassetteError(f"{where}.{key}: missing; every call needs a {key}")
        unknown = sorted(set(entry) - KNOWN)
        if unknown:
            expected = sorted(KNOWN)
            raise CassetteError(f"{where}.{unknown[0]}: unknown key; expected one of {expected}")
        for key in ("query", "form", "cookies", "set_cookies"):
            if not isinstance(entry.get(key, {}), dict):
                raise CassetteError(f"{where}.{key}: expected an object of names to values")
        if entry.get("status") is not None and not isinstance(entry["status"], int):
            raise CassetteError(f"{where}.status: expected an HTTP status code")
        calls.append(Call(**entry))
    return calls


def decoded(content: bytes, content_type: str = "") -> str:
    """A reply body as text, in the charset its content type names (UTF-8 if none or unknown)."""
    charset = parse_options_header(content_type)[1].get("charset") or "utf-8"
    try:
        return content.decode(codecs.lookup(charset).name, "replace")
    except LookupError:
        return content.decode("utf-8", "replace")


class Masker:
    """Replaces secrets by placeholders, each value by the same one for the masker's life."""

    def __init__(self):
        self.placeholders: dict[str, str] = {}
        self.counts = {"PASSWORD": 0, "SESSION": 0, "KEY": 0}

    def placeholder(self, kind: str, value: str) -> str:
        if value in self.placeholders:
            return self.placeholders[value]
        self.counts[kind] += 1
        self.placeholders[value] = f"MASKED-{kind}-{self.counts[kind]}"
        return self.placeholders[value]

    def mask(self, call: Call) -> Call:
        """The call with every secret it carries, asked or answered, replaced."""
        for kind, value in secrets_of(call):
            if value and not PLACEHOLDER.fullmatch(value):
                self.placeholder(kind, value)
        query = {k: self._param(k, v) for k, v in call.query.items()}
        form = {k: self._param(k, v) for k, v in call.form.items()}
        return replace(
            call,
            query=query,
            form=form,
            cookies={k: self._cookie(k, v) for k, v in call.cookies.items()},
            set_cookies={k: self._cookie(k, v) for k, v in call.set_cookies.items()},
            body=self._text(call.body),
        )

    def _param(self, name: str, value):
        if isinstance(value, dict | list):  # a JSON body's nested value
            return json.loads(self._text(json.dumps(value)))
        if not isinstance(value, str):
            return value
        if name == "authinfo":
            user, colon, password = value.partition(":")
            return user + colon + self.placeholders.get(password, self._text(password))
        if (name == "auth" or secret_kind(name)) and value in self.placeholders:
            return self.placeholders[value]
        return self._text(value)

    def _cookie(self, name: str, value: str) -> str:
        if name.startswith(SESSION_COOKIE_PREFIX) and value in self.placeholders:
            return self.placeholders[value]
        return self._text(value)

    def _text(self, text: str) -> str:
        """`text` with every known secret in it replaced, as written raw, in XML or in JSON."""
        # longest first, so a secret inside another is not masked half
        for secret in sorted(self.placeholders, key=len, reverse=True):
            if len(secret) < SHORTEST_SEARCHED:
                continue
            for form in {secret, escape(secret, {'"': "&quot;"}), json.dumps(secret)[1:-1]}:
                if form in text:
                    text = text.replace(form, self.placeholders[secret])
        return text


def secret_kind(name: str) -> str | None:
    """PASSWORD or KEY for a parameter or field that holds one, by its name."""
    name = name.lower()
    if name in PASSWORD_NAMES or "pass" in name:
        return "PASSWORD"
    if name in KEY_NAMES:
        return "KEY"
    return None


def secrets_of(call: Call) -> list[tuple[str, str]]:
    """The secrets a call carries: in its parameters, cookies and reply."""
    found = []
    for name, value in call.params.items():
        if not isinstance(value, str):
            continue
        if name == "authinfo":
            found.append(("PASSWORD", value.partition(":")[2]))
        elif name == "auth":
            found.append(("SESSION", value))
        elif secret_kind(name):
            found.append((secret_kind(name), value))
    for cookies in (call.cookies, call.set_cookies):
        found += [("SESSION", v) for k, v in cookies.items() if k.startswith(SESSION_COOKIE_PREFIX)]
    return found + reply_secrets(call.body, call.content_type)


def reply_secrets(body: str, content_type: str) -> list[tuple[str, str]]:
    """Session ids (`doc.auth`) and named passwords and keys in a reply's body."""
    stripped = body.lstrip()
    if stripped.startswith("<"):
        try:
            root = ET.fromstring(body.encode("utf-8"))
        except ET.ParseError:
            return []
        found = []
        for element in root.iter():
            if element.tag == "auth":
                found += [("SESSION", element.get("id", "")), ("SESSION", element.text or "")]
                continue
            kind = secret_kind(element.tag) or secret_kind(element.get("name", ""))
            if kind and element.text and not len(element):
                found.append((kind, element.text.strip()))
        return found
    if stripped.startswith(("{", "[")):
        try:
            return _json_secrets(json.loads(body))
        except json.JSONDecodeError:
            return []
    return []


def _json_secrets(node) -> list[tuple[str, str]]:
    found = []
    if isinstance(node, list):
        for child in node:
            found += _json_secrets(child)
    elif isinstance(node, dict):
        named = node.get("$name")
        kind = secret_kind(named) if isinstance(named, str) else None
        if kind:
            found += [(kind, text) for text in _texts(node, ("$", "v"))]
        for key, child in node.items():
            if key == "auth":
                found += [("SESSION", text) for text in _texts(child, ("$id", "$", "id", "v"))]
            elif not key.startswith("$") and secret_kind(key):
                found += [(secret_kind(key), text) for text in _texts(child, ("$", "v"))]
            else:
                found += _json_secrets(child)
    return found


def _texts(node, keys: tuple[str, ...]) -> list[str]:
    """The strings a JSON value holds: itself, or its values under `keys` (`$`, `v`)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [text for child in node for text in _texts(child, keys)]
    if isinstance(node, dict):
        return [text for key in keys if key in node for text in _texts(node[key], ("$", "v"))]
    return []


class CassetteWriter:
    """Writes masked calls to a cassette file, one line each, as they happen; thread-safe."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.file = self.path.open("w", encoding="utf-8")
        self.masker = Masker()
        self.lock = threading.Lock()
        self.count = 0

    def write(self, call: Call) -> Call:
        """Mask the call, number it and append it; the masked call is returned."""
        with self.lock:
            self.count += 1
            masked = replace(self.masker.mask(call), n=self.count)
            self.file.write(masked.to_json() + "\n")
            self.file.flush()  # a proxy stopped at any time leaves whole lines
            return masked

    def close(self) -> None:
        with self.lock:
            self.file.close()
