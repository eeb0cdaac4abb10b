"""`run.py seller ...` (also `bmsim seller ...`): a running simulator's seller side, by hand.

Every seller-side action of the scenario format, faults, the clock and what the seller holds,
against `--url` (or BMSIM_URL). On a terminal it prints sentences and tables; piped, one
JSON object a line. Exit status: 0 done, 1 refused by the seller, 2 a bad argument,
3 no simulator answers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from urllib.parse import urlsplit

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from simulator.side import SellerRefused, SimulatorUnreachable, SocketSide

DEFAULT_URL = "http://127.0.0.1:8080"
# The variable a guarded simulator takes its own token from: one setting serves both ends.
TOKEN_ENV = "SIMULATOR_TOKEN"
REFUSED, BAD_ARGUMENT, UNREACHABLE = 1, 2, 3
STATUS_STYLES = {"ordered": "cyan", "active": "green", "suspended": "yellow", "deleted": "red"}


class BadArgument(ValueError):
    """A command-line value the command cannot use, named in the message."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=os.environ.get("BMSIM_URL", DEFAULT_URL),
        help=f"the simulator's base URL (BMSIM_URL; default {DEFAULT_URL})",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV),
        help=f"a guarded simulator's token, as a bearer token (ps shows it: prefer ${TOKEN_ENV})",
    )
    commands = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        aliases = [name.replace("_", "-")] if "_" in name else []
        return commands.add_parser(name, aliases=aliases, help=help)

    for name, verb in (
        ("activate", "set up an ordered service"),
        ("suspend", "suspend a service (the seller's staff)"),
        ("resume", "resume a suspended service"),
        ("delete", "delete a service"),
    ):
        command(name, verb).add_argument("service", metavar="ID")
    for name, verb in (
        ("add_ip", "give a service an IP address (a new one if none is named)"),
        ("remove_ip", "take an IP address from a service (the newest if none is named)"),
    ):
        sub = command(name, verb)
        sub.add_argument("service", metavar="ID")
        sub.add_argument("ip", nargs="?", metavar="IP")
    sub = command("set_addon", "set a service's add-on (by intname) to a value")
    sub.add_argument("service", metavar="ID")
    sub.add_argument("addon", metavar="ADDON")
    sub.add_argument("value", metavar="VALUE")
    sub = command("set_param", "set a service's parameter (hostname, domain, ...)")
    sub.add_argument("service", metavar="ID")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("value", metavar="VALUE")
    sub = command("topup", "add money to an account's balance")
    sub.add_argument("account", metavar="ACCOUNT")
    sub.add_argument("amount", metavar="AMOUNT")
    sub = command("edit_tariff", "replace some of a tariff's keys (values in YAML)")
    sub.add_argument("tariff", metavar="ID")
    sub.add_argument("changes", nargs="+", metavar="KEY=VALUE", help="e.g. 'prices={1: 12}'")
    sub = command("create_service", "a service bought on the seller directly, set up at once")
    sub.add_argument("account", metavar="ACCOUNT")
    sub.add_argument("tariff", metavar="TARIFF")
    sub.add_argument("--period", default="1")
    sub.add_argument("--ip")
    sub.add_argument("--remoteid", default="")
    for param in ("name", "domain", "hostname", "licname"):
        sub.add_argument(f"--{param}")

    sub = command("fault", "queue a fault for the next calls")
    sub.add_argument("kind", metavar="KIND", help="down, error, slow, lose_reply, drop_events, ...")
    sub.add_argument("--times", default="1", help="how many calls (or feed reads) it hits")
    sub.add_argument("--func", help="only calls of this function (a glob: '*.order.param')")
    sub.add_argument("--account", help="only calls by this account")
    sub = command("faults", "the queued faults")
    sub.add_argument("--clear", action="store_true", help="drop every queued fault")

    sub = command("clock", "the simulated time; +5m moves it on, an ISO time moves it there")
    sub.add_argument("when", nargs="?", metavar="+DURATION|TIME")

    sub = command("services", "the seller's services")
    sub.add_argument("--account")
    sub.add_argument("--remoteid")
    command("service", "one service, whole").add_argument("service", metavar="ID")
    command("balance", "an account's balance").add_argument("login", metavar="LOGIN")
    command("ledger", "every balance movement").add_argument("--account")
    sub = command("calls", "the API calls the seller got, oldest first")
    sub.add_argument("--func", help="only calls of this function (a glob)")
    sub.add_argument("--last", type=int, metavar="N", help="only the last N")
    sub = command("reset", "replace the seller with an empty one")
    sub.add_argument("--start", metavar="TIME")
    sub = command("load", "replace the seller with the world of a scenario file")
    sub.add_argument("file", metavar="FILE")
    sub.add_argument("--start", metavar="TIME")
    sub = command("snapshot", "save the whole state as a named snapshot in the state folder")
    sub.add_argument("name", metavar="NAME")
    sub = command("restore", "replace the whole state with a named snapshot")
    sub.add_argument("name", metavar="NAME")
    command("snapshots", "the names of the snapshots in the state folder")


class Output:
    """Sentences and tables on a terminal; one JSON object a line otherwise."""

    def __init__(self, console: Console):
        self.console = console
        self.terminal = console.is_terminal

    def _json(self, record: dict) -> None:
        self.console.file.write(json.dumps(record, default=str, ensure_ascii=False) + "\n")
        self.console.file.flush()

    def done(self, sentence: str, record: dict) -> None:
        if self.terminal:
            self.console.print(sentence, highlight=False, soft_wrap=True)
        else:
            self._json(record)

    def rows(self, noun: str, columns: dict, records: list[dict]) -> None:
        """A table of `records` and their count; `columns` maps a heading to a cell."""
        if not self.terminal:
            for record in records:
                self._json(record)
            return
        table = Table()
        for heading in columns:
            table.add_column(heading, overflow="fold")
        for record in records:
            table.add_row(*(show(record) for show in columns.values()))
        if records:
            self.console.print(table)
        self.console.print(_count(len(records), noun), highlight=False)

    def record(self, record: dict, order: tuple[str, ...] = ()) -> None:
        """One record as a table of its fields, those in `order` first."""
        if not self.terminal:
            self._json(record)
            return
        table = Table(show_header=False)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        keys = [k for k in order if k in record] + [k for k in record if k not in order]
        for key in keys:
            table.add_row(key, _status(record[key]) if key == "status" else _plain(record[key]))
        self.console.print(table)


def _count(n: int, noun: str) -> str:
    if n == 1:
        return f"{n} {noun}"
    return f"{n} {noun[:-1]}ies" if noun.endswith("y") else f"{n} {noun}s"


def _plain(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, bool):
        return "on" if value else "off"
    return escape(str(value if value is not None else ""))


def _status(status: str) -> str:
    style = STATUS_STYLES.get(status)
    return f"[{style}]{status}[/]" if style else status


def _state_of(service: dict) -> str:
    expires = f", expires {service['expires']}" if service["expires"] else ""
    return f"now {_status(service['status'])}{expires}"


SERVICE_FIELDS = ("id", "status", "account", "tariff", "tariff_intname", "type", "period")
SERVICE_FIELDS += ("opened", "expires", "remoteid", "name", "ips", "addons", "params")
SERVICE_COLUMNS = {
    "id": lambda s: str(s["id"]),
    "account": lambda s: escape(s["account"]),
    "tariff": lambda s: f"{s['tariff']} {escape(s['tariff_intname'])}",
    "status": lambda s: _status(s["status"]),
    "expires": lambda s: s["expires"],
    "remoteid": lambda s: escape(s["remoteid"]),
    "ips": lambda s: ", ".join(s["ips"]),
}
CALL_COLUMNS = {
    "#": lambda c: str(c["id"]),
    "at": lambda c: c["at"],
    "func": lambda c: escape(c["func"] or "-"),
    "account": lambda c: escape(c["account"] or ""),
    "elid": lambda c: escape(str(c["params"].get("elid", ""))),
    "result": lambda c: escape(c["result"]),
}
FAULT_COLUMNS = {
    "id": lambda f: str(f["id"]),
    "kind": lambda f: f["kind"],
    "left": lambda f: str(f["times"]),
    "func": lambda f: escape(f["func"] or "any"),
    "account": lambda f: escape(f["account"] or "any"),
    "used": lambda f: str(f["used"]),
}
LEDGER_COLUMNS = {
    "id": lambda e: str(e["id"]),
    "date": lambda e: e["date"],
    "account": lambda e: escape(e["account"]),
    "amount": lambda e: str(e["amount"]),
    "reason": lambda e: e["reason"],
    "service": lambda e: str(e["service"] or ""),
}


def _clock_line(clock: dict) -> str:
    due = clock["next_due"]
    mode = clock["mode"] if clock["mode"] != "speed" else f"{clock['speed']:g}x"
    return f"{clock['now']} ({mode} clock); " + (f"next due {due}" if due else "nothing due")


def _changes(pairs: list[str]) -> dict:
    changes = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise BadArgument(f"edit_tariff: expected KEY=VALUE, got {pair!r}")
        try:
            changes[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise BadArgument(f"edit_tariff: {key}: not a YAML value: {value!r}") from None
    return changes


def _fault_sentence(kind: str, times: int, func: str | None, account: str | None) -> str:
    hit = "read of the event feed" if kind.endswith("_events") else "call"
    what = hit if times == 1 else f"{times} {hit.replace('read', 'reads').replace('call', 'calls')}"
    target = f" of {func}" if func else ""
    target += f" by {account}" if account else ""
    return f"queued {kind} for the next {what}{target}"


def _service_action(side: SocketSide, args, verb: str) -> tuple[str, dict]:
    getattr(side, args.action)(args.service)
    service = side.service(args.service)
    return f"{verb} service {service['id']}: {_state_of(service)}", service


def run(side: SocketSide, args, out: Output) -> None:
    """Carry out one seller command and print what it did."""
    action = args.action.replace("-", "_")
    verbs = {"activate": "activated", "suspend": "suspended", "resume": "resumed"}
    verbs["delete"] = "deleted"
    if action in verbs:
        sentence, service = _service_action(side, args, verbs[action])
        out.done(sentence, {"done": action, **service})
    elif action in ("add_ip", "remove_ip"):
        ip = getattr(side, action)(args.service, args.ip)
        service = side.service(args.service)
        moved = f"added {ip} to" if action == "add_ip" else f"removed {ip} from"
        ips = ", ".join(service["ips"]) or "none"
        out.done(
            f"{moved} service {service['id']}: its IPs are {ips}",
            {"done": action, "ip": ip, **service},
        )
    elif action == "set_addon":
        side.set_addon(args.service, args.addon, args.value)
        service = side.service(args.service)
        value = service["addons"].get(args.addon)
        out.done(
            f"set add-on {escape(args.addon)} of service {service['id']} to {_plain(value)}",
            {"done": action, **service},
        )
    elif action == "set_param":
        side.set_param(args.service, args.name, args.value)
        service = side.service(args.service)
        out.done(
            f"set {escape(args.name)} of service {service['id']} to {escape(args.value)}",
            {"done": action, **service},
        )
    elif action == "topup":
        side.topup(args.account, args.amount)
        account = side.account(args.account)
        out.done(
            f"topped up {escape(args.account)} with {escape(args.amount)}: "
            f"balance {account['balance']} {account['currency']}",
            {"done": action, "amount": args.amount, **account},
        )
    elif action == "edit_tariff":
        changes = _changes(args.changes)
        side.edit_tariff(args.tariff, **changes)
        out.done(
            f"edited tariff {escape(args.tariff)}: {escape(', '.join(changes))}",
            {"done": action, "id": args.tariff, "changed": sorted(changes)},
        )
    elif action == "create_service":
        params = {k: getattr(args, k) for k in ("name", "domain", "hostname", "licname")}
        service = side.create_service(
            args.account,
            args.tariff,
            args.period,
            ip=args.ip,
            remoteid=args.remoteid,
            **{k: v for k, v in params.items() if v is not None},
        )
        out.done(
            f"created service {service['id']} for {escape(service['account'])} "
            f"(tariff {service['tariff']}, period {service['period']}): {_state_of(service)}",
            {"done": action, **service},
        )
    elif action == "fault":
        times = _whole(args.times, "--times")
        side.fault(args.kind, times, args.func, args.account)
        out.done(
            escape(_fault_sentence(args.kind, times, args.func, args.account)),
            {"done": action, "kind": args.kind, "times": times}
            | {"func": args.func, "account": args.account},
        )
    elif action == "faults":
        queued = side.faults()
        if args.clear:
            side.clear_faults()
            out.done(
                f"cleared {_count(len(queued), 'queued fault')}",
                {"done": "clear_faults", "cleared": len(queued)},
            )
        else:
            out.rows("queued fault", FAULT_COLUMNS, queued)
    elif action == "clock":
        if args.when is None:
            clock = side.clock()
            out.done(f"clock: {_clock_line(clock)}", clock)
        else:
            if args.when.startswith("+"):
                side.advance(args.when[1:])
            else:
                side.clock_to(args.when)
            clock = side.clock()
            out.done(f"moved the clock to {_clock_line(clock)}", {"done": "clock", **clock})
    elif action == "services":
        out.rows("service", SERVICE_COLUMNS, side.services(args.account, args.remoteid))
    elif action == "service":
        out.record(side.service(args.service), SERVICE_FIELDS)
    elif action == "balance":
        account = side.account(args.login)
        out.done(
            f"{escape(account['login'])}: {account['balance']} {account['currency']}",
            {k: account[k] for k in ("login", "balance", "currency")},
        )
    elif action == "ledger":
        out.rows("ledger entry", LEDGER_COLUMNS, side.ledger(args.account))
    elif action == "calls":
        if args.last is not None and args.last < 1:
            raise BadArgument(f"--last: expected a number above 0, got {args.last}")
        out.rows("call", CALL_COLUMNS, side.calls(args.func, args.last))
    elif action == "reset":
        side.reset(start=args.start)
        now = side.now
        out.done(f"reset: an empty seller, clock at {now}", {"done": action, "now": now})
    elif action == "load":
        side.load(args.file, start=args.start)
        state = side.state()
        accounts, tariffs = len(state["accounts"]), len(state["tariffs"])
        out.done(
            f"loaded {escape(args.file)}: {_count(accounts, 'account')}, "
            f"{_count(tariffs, 'tariff')}; clock at {side.now}",
            {"done": action, "file": args.file, "accounts": accounts, "tariffs": tariffs},
        )
    elif action == "snapshot":
        side.snapshot(args.name)
        out.done(f"saved snapshot {escape(args.name)}", {"done": action, "name": args.name})
    elif action == "restore":
        now = side.restore(args.name)
        out.done(
            f"restored snapshot {escape(args.name)}: clock at {now}",
            {"done": action, "name": args.name, "now": now},
        )
    elif action == "snapshots":
        names = [{"name": name} for name in side.snapshots()]
        out.rows("snapshot", {"name": lambda n: escape(n["name"])}, names)


def _whole(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise BadArgument(f"{name}: expected a whole number, got {value!r}") from None


def main(args, console: Console | None = None) -> int:
    """Run `args.action` against the simulator at `args.url`; the exit status."""
    console = console or Console()
    url = args.url.rstrip("/")
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        print(f"error: --url: expected http://HOST:PORT, got {args.url!r}", file=sys.stderr)
        return BAD_ARGUMENT
    with SocketSide(url, args.token) as side:
        try:
            run(side, args, Output(console))
        except BadArgument as error:
            print(f"error: {error}", file=sys.stderr)
            return BAD_ARGUMENT
        except SellerRefused as refused:
            print(f"error: {refused.type}: {refused.message}", file=sys.stderr)
            # a value the simulator could not take is the command's fault; the rest it refused
            unreadable = refused.type == "control" and refused.status in (None, 400, 415)
            return BAD_ARGUMENT if unreadable else REFUSED
        except SimulatorUnreachable as error:
            print(f"error: {error}", file=sys.stderr)
            return UNREACHABLE
    return 0
