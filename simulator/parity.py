"""`run.py parity`: replay a cassette against the simulator and score how alike the replies are.

The simulator is driven only through HTTP, in-process: its control API (`/_sim`) builds the
world, its BILLmanager API answers the replayed calls. The world is what the cassette shows of
the seller (accounts from the logins that worked, balances from `whoami`, tariffs from
`pricelist.export`, services from lists) or a scenario's `seller` section. Credentials are
rewritten to the world's, sessions and new ids followed from reply to request, and each reply's
shape compared with the recorded one (see `simulator.shape`).

Not replayed: calls the upstream never answered. Not reproduced: what the seller's staff or
clock did between calls; services start active; the simulator's clock stays at the first call.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import requests

from simulator.app import create_app
from simulator.cassette import PLACEHOLDER, Call, decoded
from simulator.observed import (
    SERVICE_FIELDS,
    Observed,
    World,
    built_world,
    doc_of,
    enumeration_ids,
    given_world,
    observe,
    reply_of,
)
from simulator.shape import Reply, differences, error_type, parse_reply, shape_of, text
from simulator.transport import in_process_session

BASE = "http://simulator"
ID_PARAMS = {"elid", "plid", "item", "id"}
PROBE_BALANCE = Decimal(1_000_000_000)
STATUS_ACTIONS = {"3": "suspend", "4": "delete"}


class WorldRefused(ValueError):
    """The simulator refused the world: the message is its own, naming the key."""


# -- replay ---------------------------------------------------------------------------------


@dataclass
class CallResult:
    n: int
    func: str
    differences: list[str]


@dataclass
class Parity:
    """The outcome of a replay: a result per compared call, and what could not be compared."""

    results: list[CallResult]
    skipped: list[Call]
    world: World

    def score(self) -> float:
        """The percentage of compared calls whose replies had the same shape."""
        if not self.results:
            return 0.0
        return 100 * sum(not r.differences for r in self.results) / len(self.results)

    def by_function(self) -> dict[str, list[CallResult]]:
        grouped: dict[str, list[CallResult]] = {}
        for result in self.results:
            grouped.setdefault(result.func, []).append(result)
        return grouped

    def lines(self) -> list[str]:
        """The report: a line per function with its score and each difference under it."""
        grouped = self.by_function()
        width = max([len(f) for f in grouped] + [7])
        out = [self.world.summary()]
        for func, results in grouped.items():
            out.append(_score_line(f"  {func:<{width}}", results))
            seen: dict[str, list[int]] = {}
            for result in results:
                for difference in result.differences:
                    seen.setdefault(difference, []).append(result.n)
            for difference, numbers in seen.items():
                out.append(f"      {difference} ({_calls(numbers)})")
        out.append(_score_line(f"{'overall':<{width + 2}}", self.results))
        for call in self.skipped:
            name = call.func or call.path
            out.append(f"not compared: call {call.n} {name}: no answer upstream ({call.error})")
        out += [f"note: {note}" for note in self.world.notes]
        return out


def _score_line(label: str, results: list[CallResult]) -> str:
    matched = sum(not r.differences for r in results)
    percent = 100 * matched / len(results) if results else 0
    return f"{label}  {matched:>4}/{len(results):<4} {percent:3.0f}%"


def _calls(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:5])
    more = f" and {len(numbers) - 5} more" if len(numbers) > 5 else ""
    return f"call{'s' if len(numbers) > 1 else ''} {shown}{more}"


class Replay:
    """One replay of a cassette in a fresh in-process simulator holding `world`."""

    def __init__(self, world: World, seen: Observed):
        self.world = world
        self.seen = seen
        self.values: dict[str, str] = {}  # placeholder -> the simulator's session id or key
        self.ids: dict[str, str] = {}  # recorded id -> the simulator's id
        self.items: dict[tuple[str, str], str] = {}  # (add-on id, recorded item id) -> item id
        self.http = in_process_session(create_app())

    def build(self) -> None:
        """Load the world and create its services; balances end as the world says."""
        section = self.world.section = self._checked(self.world.section)
        targets = {
            login: Decimal(str(spec.get("balance", 0)))
            for login, spec in section.get("accounts", {}).items()
        }
        # Creating a service charges its account: learn what they cost, then start richer.
        probe = _with_balances(section, dict.fromkeys(targets, PROBE_BALANCE))
        self._reset(probe)
        self._create_services(note=False)
        spent = {login: PROBE_BALANCE - self._balance(login) for login in targets}
        self._reset(_with_balances(section, {k: targets[k] + spent[k] for k in targets}))
        self.ids = self._create_services(note=True)
        self._map_enumeration_items()

    def _checked(self, section: dict) -> dict:
        """The section without the tariffs the simulator refuses, each refusal noted."""
        section = dict(section)
        tariffs = dict(section.get("tariffs") or {})
        if not self.world.from_cassette:
            self._reset(section)  # a world the user wrote is taken whole, or refused whole
            return section
        for tariff_id, spec in list(tariffs.items()):
            reply = self._post("/_sim/reset", {"world": {"tariffs": {tariff_id: spec}}})
            if reply.status_code != 200:
                self.world.notes.append(f"tariff {tariff_id}: {_message(reply)}; left out")
                del tariffs[tariff_id]
        section["tariffs"] = tariffs
        self.world.services = [s for s in self.world.services if int(s["tariff"]) in tariffs]
        self._reset(section)
        return section

    def _reset(self, section: dict) -> None:
        body = {"world": section, "seed": 0}
        if self.seen.start:
            body["start"] = self.seen.start
        reply = self._post("/_sim/reset", body)
        if reply.status_code != 200:
            raise WorldRefused(_message(reply))

    def _post(self, path: str, body: dict):
        return self.http.post(BASE + path, json=body)

    def _balance(self, login: str) -> Decimal:
        return Decimal(self.http.get(f"{BASE}/_sim/accounts/{login}").json()["balance"])

    def _create_services(self, note: bool) -> dict[str, str]:
        created = {}
        tariffs = self.world.section.get("tariffs") or {}
        for service in self.world.services:
            spec = tariffs.get(int(service["tariff"])) or tariffs.get(service["tariff"]) or {}
            prices = [int(p) for p in spec.get("prices", {})]
            period = int(service["period"]) if service["period"].lstrip("-").isdigit() else 1
            body = {"account": service["account"], "tariff": int(service["tariff"])}
            body["period"] = period if period in prices or not prices else prices[0]
            body |= {k: service[k] for k in SERVICE_FIELDS if k in service}
            reply = self._post("/_sim/actions/create_service", body)
            if reply.status_code != 200:
                if note:
                    self.world.notes.append(f"service {service['id']}: {_message(reply)}")
                continue
            new_id = str(reply.json()["result"]["id"])
            created[service["id"]] = new_id
            action = STATUS_ACTIONS.get(service["status"])
            if action:
                self._post(f"/_sim/actions/{action}", {"service": int(new_id)})
        return created

    def _map_enumeration_items(self) -> None:
        if not self.seen.enumerations:
            return
        reply = self.http.get(f"{BASE}/billmgr", params={"func": "pricelist.export", "out": "json"})
        ours = enumeration_ids(parse_reply(reply.text, reply.headers.get("Content-Type", "")).tree)
        for key, recorded in self.seen.enumerations.items():
            if key in ours:
                self.items[(key[1], recorded)] = ours[key]

    def run(self, calls: list[Call]) -> Parity:
        results, skipped = [], []
        for call in calls:
            if call.error:
                skipped.append(call)
                continue
            results.append(self.compare(call))
        return Parity(results, skipped, self.world)

    def compare(self, call: Call) -> CallResult:
        """Send one call as recorded (credentials, sessions and ids rewritten) and compare."""
        self.http.cookies.clear()  # the recorded call says which cookies it sent
        query = {k: self._rewritten(call, k, v) for k, v in call.query.items()}
        form = {k: self._rewritten(call, k, v) for k, v in call.form.items()}
        body = {"json": form} if call.body_format == "json" else {"data": form or None}
        try:
            response = self.http.request(
                call.method,
                BASE + call.path,
                params=query,
                cookies={k: self._substituted(v) for k, v in call.cookies.items()},
                **body,
            )
        except requests.RequestException as error:  # a fault the cassette itself queued
            return CallResult(call.n, call.func or call.path, [f"no reply in simulator: {error}"])
        content_type = response.headers.get("Content-Type", "")
        replayed = parse_reply(decoded(response.content, content_type), content_type)
        recorded = reply_of(call)
        self._follow(call, recorded, replayed, response)
        found = []
        if call.status is not None and call.status != response.status_code:
            found.append(
                f"HTTP status: {call.status} in recording, {response.status_code} in simulator"
            )
        found += differences(shape_of(recorded), shape_of(replayed))
        return CallResult(call.n, call.func or call.path, found)

    def _rewritten(self, call: Call, name: str, value):
        if not isinstance(value, str):
            return value
        if name == "authinfo":
            user, colon, password = value.partition(":")
            return user + colon + self._password(user, password)
        if name == "password" and call.func == "auth":
            return self._password(str(call.params.get("username", "")), value)
        if name in ID_PARAMS and any(p.strip() in self.ids for p in value.split(",")):
            return ", ".join(self.ids.get(p.strip(), p.strip()) for p in value.split(","))
        if name.startswith("addon_") and (name[6:], value) in self.items:
            return self.items[(name[6:], value)]
        return self._substituted(value)

    def _password(self, login: str, password: str) -> str:
        if password == self.seen.passwords.get(login) and login in self.world.passwords:
            return self.world.passwords[login]
        return password  # a password that failed in the recording fails here too

    def _substituted(self, value: str) -> str:
        return PLACEHOLDER.sub(lambda m: self.values.get(m.group(0), m.group(0)), value)

    def _follow(self, call: Call, recorded: Reply, replayed: Reply, response) -> None:
        """Learn the simulator's values for the recording's placeholders and new ids."""
        for name, value in call.set_cookies.items():
            if PLACEHOLDER.fullmatch(value) and response.cookies.get(name):
                self.values.setdefault(value, response.cookies.get(name))
        if recorded.format != replayed.format or error_type(replayed):
            return
        _align(recorded.tree, replayed.tree, self.values)
        ours = doc_of(replayed.tree)
        for key, value in doc_of(recorded.tree).items():
            if key in ("id", "item") and text(value) and text(ours.get(key)):
                self.ids.setdefault(text(value), text(ours.get(key)))


def _align(recorded, replayed, values: dict[str, str]) -> None:
    """Pair each placeholder in a recorded reply with the value at the same place in ours."""
    if isinstance(recorded, str):
        if isinstance(replayed, str) and PLACEHOLDER.fullmatch(recorded):
            values.setdefault(recorded, replayed)
    elif isinstance(recorded, dict) and isinstance(replayed, dict):
        for key, child in recorded.items():
            if key in replayed:
                _align(child, replayed[key], values)
    elif isinstance(recorded, list) and isinstance(replayed, list):
        for left, right in zip(recorded, replayed, strict=False):
            _align(left, right, values)


def _with_balances(section: dict, balances: dict[str, Decimal]) -> dict:
    accounts = {
        login: {**spec, "balance": str(balances.get(login, spec.get("balance", 0)))}
        for login, spec in (section.get("accounts") or {}).items()
    }
    return {**section, "accounts": accounts}


def _message(reply) -> str:
    try:
        error = reply.json()["error"]
        return str(error.get("msg") or error)
    except (ValueError, KeyError, TypeError):
        return f"HTTP {reply.status_code}"


def check_parity(calls: list[Call], world: dict | None = None) -> Parity:
    """Replay `calls` against a simulator holding `world` (or one built from the calls)."""
    seen = observe(calls)
    if world is not None and not isinstance(world, dict):
        raise WorldRefused(f"seller: expected a mapping, got {type(world).__name__}")
    chosen = given_world(world, seen) if world is not None else built_world(seen)
    replay = Replay(chosen, seen)
    replay.build()
    return replay.run(calls)
