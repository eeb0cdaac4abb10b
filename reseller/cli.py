"""`python run.py reseller ...`: the engine's commands, as `mgrctl -m billmgr` offers them.

On a terminal it prints sentences and tables (rich) with status words; piped, what scripts
read: `services`, `operations`, `clients` and `import-services` one JSON object a line,
`order` its `service N: operation STATE`, every other command its sentence. Errors are one
line on stderr, `error: TYPE: message`. Exit status: 0 done, 1 refused (by the engine, or by
the seller for an operation), 2 a bad argument.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reseller import jobs
from reseller.engine import Engine
from reseller.errors import ResellerError
from reseller.model import (
    DELETED,
    FAILED,
    MANUAL_MODULE,
    PRODUCT_TYPES,
    RUNNING,
    STATUS_NAMES,
    Operation,
    PeriodRule,
)
from reseller.store import stamp

PASSWORD_VARIABLE = "SELLER_PASSWORD"
TOKEN_VARIABLE = "SIMULATOR_TOKEN"  # the variable a guarded simulator takes its own token from
OPERATION_KEYS = ("id", "item", "kind", "state", "attempts", "next_try", "error_type", "error_msg")
SERVICE_KEYS = ("id", "account", "pricelist", "status", "expiredate", "remote_id")
CLIENT_KEYS = ("id", "name", "balance", "services")
STYLES = {
    "ordered": "cyan",
    "active": "green",
    "suspended": "yellow",
    "deleted": "red",
    "running": "yellow",
    "failed": "red",
    "manual": "cyan",
    "done": "green",
}
# What a state means to the person who just asked for the operation.
STATE_HINTS = {
    "manual": "accepted; done once the seller's event arrives (checkevent, or the daemon)",
    "running": "not settled yet: the daemon's retry job tries it again",
    "done": "the seller confirmed it",
}
DURATION = re.compile(r"(\d+(?:\.\d+)?)([smh])")
SECONDS = {"s": 1, "m": 60, "h": 3600}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    one_line_errors(parser)
    parser.add_argument("--db", default="reseller.db", help="the SQLite file (default reseller.db)")
    parser.add_argument(
        "--now", help="the time to act at (ISO); wins over --clock; default: now, UTC"
    )
    parser.add_argument(
        "--clock",
        metavar="URL",
        type=clock_url,
        help="act at a served simulator's time (GET URL/_sim/clock), read before each action",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_VARIABLE),
        help=f"a guarded simulator's token for --clock (ps shows it: prefer ${TOKEN_VARIABLE})",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=CommandParser
    )
    configure = commands.add_parser("configure", help="main currency, rates and order periods")
    configure.add_argument("--currency")
    configure.add_argument("--rate", action="append", default=[], metavar="CUR=RATE")
    configure.add_argument("--order-periods", metavar="1,3,12")
    connect = commands.add_parser("connect", help="add a BILLmanager processing module")
    connect.add_argument("module")
    connect.add_argument("--url", required=True)
    connect.add_argument("--login", required=True)
    connect.add_argument(
        "--password",
        help=f"the seller password (visible in ps: prefer --password-file or ${PASSWORD_VARIABLE})",
    )
    connect.add_argument(
        "--password-file", metavar="FILE", help="read the seller password from FILE"
    )
    connect.add_argument("--period", action="append", default=[], metavar="FROM:TO[:TARIFF]")
    client = commands.add_parser("client", help="add a client")
    client.add_argument("name")
    client.add_argument("--balance", default="0")
    topup = commands.add_parser("topup", help="top up a client's balance")
    topup.add_argument("name")
    topup.add_argument("amount")
    imp = commands.add_parser("import", help="import a seller tariff")
    imp.add_argument("module")
    imp.add_argument("tariff", type=int)
    sync = commands.add_parser("pricelist.sync", help="sync a tariff: pricelist.sync elid=N")
    sync.add_argument("elid", help="elid=N (the local tariff id) or the tariff's intname")
    price = commands.add_parser("set-price", help="the operator's price for a period")
    price.add_argument("tariff")
    price.add_argument("price", nargs="+", metavar="PERIOD=PRICE")
    order = commands.add_parser("order", help="order a service for a client")
    order.add_argument("client")
    order.add_argument("tariff")
    order.add_argument("period", type=int)
    order.add_argument("--ostempl")
    order.add_argument("--addon", action="append", default=[], metavar="NAME=VALUE")
    order.add_argument("--autoprolong", action="store_true")
    prolong = commands.add_parser("prolong", help="prolong a service")
    prolong.add_argument("service", type=int)
    prolong.add_argument("period", type=int)
    for name in ("suspend", "resume", "delete", "restart"):
        one = commands.add_parser(name, help=f"{name} a service")
        one.add_argument("service", type=int)
    addons = commands.add_parser("set-addons", help="change a service's add-ons")
    addons.add_argument("service", type=int)
    addons.add_argument("addon", nargs="+", metavar="NAME=VALUE")
    tariff = commands.add_parser(
        "change-tariff", help="move a service to another tariff (under the manual module only)"
    )
    tariff.add_argument("service", type=int)
    tariff.add_argument("tariff")
    module = commands.add_parser("set-module", help="switch a service's processing module")
    module.add_argument("service", type=int)
    module.add_argument("module", metavar="MODULE|manual")
    listing = commands.add_parser(
        "import-services", help="list a seller account's services that can be assigned"
    )
    listing.add_argument("module")
    listing.add_argument("type", metavar="TYPE", help=f"one of {', '.join(PRODUCT_TYPES)}")
    listing.add_argument("--mask", default="*", help="only names matching it (a glob: 'vds*')")
    assign = commands.add_parser("assign", help="give a client a seller service (not charged)")
    assign.add_argument("remote", type=int, metavar="REMOTE", help="the seller's service id")
    assign.add_argument("client")
    commands.add_parser("operations", help="list running operations")
    commands.add_parser("services", help="list services")
    commands.add_parser("clients", help="list clients and their balances")
    checkevent = commands.add_parser("checkevent", help="poll the seller's events once")
    checkevent.add_argument("module", nargs="?")
    reconcile = commands.add_parser("reconcile", help="compare services with the seller, repair")
    reconcile.add_argument("module")
    daemon = commands.add_parser(
        "daemon", help="checkevent every 5 minutes and retries, until SIGTERM or Ctrl-C"
    )
    daemon.add_argument(
        "--poll-every",
        type=duration,
        default=jobs.POLL_EVERY,
        metavar="DURATION",
        help="wall time between polls of the event feed (default 5m)",
    )
    daemon.add_argument(
        "--retry-every",
        type=duration,
        default=jobs.RETRY_EVERY,
        metavar="DURATION",
        help="wall time between runs of the retry and autoprolong job (default 1m)",
    )


# -- arguments -------------------------------------------------------------------------------


class CommandParser(argparse.ArgumentParser):
    """A parser whose usage errors are one line on stderr, as every other error is."""

    def error(self, message: str):
        self.exit(2, f"error: usage: {message} (see {self.prog} --help)\n")


def one_line_errors(parser: argparse.ArgumentParser) -> None:
    """Make `parser` (made by run.py with the plain class) report usage errors in one line."""
    parser.error = partial(CommandParser.error, parser)


def duration(text: str) -> float:
    """Seconds in a duration such as `5m`, `30s` or `0.5s`, above 0."""
    match = DURATION.fullmatch(text.strip())
    seconds = float(match[1]) * SECONDS[match[2]] if match else 0
    if seconds <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a duration above 0 such as 5m, 30s or 0.5s, got {text!r}"
        )
    return seconds


def clock_url(text: str) -> str:
    if not re.match(r"https?://[^/\s]+", text.strip()):
        raise argparse.ArgumentTypeError(
            f"expected a simulator's base URL such as http://127.0.0.1:8080, got {text!r}"
        )
    return text.strip()


class BadArgument(ValueError):
    """An option's value the command cannot use, named in the message."""


def clock_for(args, session) -> tuple[jobs.Clock, str]:
    """The clock the command acts at, and how to name it: `--now` (fixed), else the
    simulator's at `--clock`, else the wall clock (UTC)."""
    if args.now:
        try:
            fixed = datetime.fromisoformat(args.now)
        except ValueError:
            raise BadArgument(f"--now: {args.now!r} is not an ISO date-time") from None
        if fixed.tzinfo is not None:  # the engine keeps UTC without a zone
            fixed = fixed.astimezone(UTC).replace(tzinfo=None)
        return (lambda: fixed), f"the fixed time {stamp(fixed)} (--now)"
    if args.clock:
        clock = jobs.SimulatorClock(args.clock, args.token, session)
        return clock, f"the simulator's clock ({clock.url})"
    return jobs.utc_now, "the wall clock (UTC)"


def pairs(values: list[str], what: str) -> dict[str, str]:
    result = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise ResellerError("value", f"{what}: expected NAME=VALUE, got {value!r}")
        result[key] = rest
    return result


def period_rules(values: list[str]) -> list[PeriodRule]:
    rules = []
    for value in values:
        parts = value.split(":")
        try:
            rules.append(
                PeriodRule(int(parts[0]), int(parts[1]), parts[2] if len(parts) > 2 else None)
            )
        except (ValueError, IndexError):
            raise ResellerError(
                "value", f"--period: expected FROM:TO[:TARIFF], got {value!r}"
            ) from None
    return rules


def tariff_name(engine: Engine, elid: str) -> str:
    raw = elid.removeprefix("elid=")
    if raw.isdigit():
        # no id is as large as SQLite's integers go, and asking for one would overflow
        plan = engine.store.tariff_by_id(int(raw)) if int(raw) < 2**63 else None
        if plan is None:
            raise ResellerError("unknown", f"no tariff with id {raw}")
        return plan.intname
    return raw


def seller_password(args, environ=os.environ, prompt=getpass.getpass, warn=print) -> str:
    """The seller password for `connect`: from --password-file, --password (with a warning
    that `ps` shows it), $SELLER_PASSWORD, or typed in at a terminal; `value` error if none."""
    if args.password_file:
        try:
            with open(args.password_file, encoding="utf-8") as file:
                password = file.readline().rstrip("\r\n")
        except OSError as error:
            raise ResellerError(
                "value", f"--password-file: cannot read {args.password_file}: {error.strerror}"
            ) from None
        if not password:
            raise ResellerError("value", f"--password-file: {args.password_file} is empty")
        return password
    if args.password is not None:
        warn(
            "warning: --password shows in the process list (ps); "
            f"use --password-file or ${PASSWORD_VARIABLE} instead"
        )
        return args.password
    if environ.get(PASSWORD_VARIABLE):
        return environ[PASSWORD_VARIABLE]
    if sys.stdin is not None and sys.stdin.isatty():
        return prompt(f"password of {args.login} at {args.url}: ")
    raise ResellerError(
        "value",
        f"connect needs the seller password: --password-file FILE, ${PASSWORD_VARIABLE}, "
        "or run it at a terminal to type it in",
    )


# -- output ----------------------------------------------------------------------------------


class Output:
    """Sentences and tables on a terminal; piped, plain sentences and one JSON object a line."""

    def __init__(self, stdout=None, stderr=None, terminal: bool | None = None):
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.terminal = self.stdout.isatty() if terminal is None else terminal
        self.console = Console(file=self.stdout, force_terminal=self.terminal, highlight=False)

    def say(self, sentence: str, markup: str | None = None, hint: str | None = None) -> None:
        """A sentence; on a terminal in `markup` (rich) if given, and with `hint` after it."""
        if not self.terminal:
            print(sentence, file=self.stdout, flush=True)
            return
        self.console.print(markup or escape(sentence), soft_wrap=True)
        if hint:
            self.console.print(f"  [dim]{escape(hint)}[/]", soft_wrap=True)

    def warn(self, line: str) -> None:
        print(line, file=self.stderr, flush=True)

    def error(self, type: str, message: str) -> None:
        print(f"error: {type}: {message}", file=self.stderr, flush=True)

    def rows(
        self, noun: str, columns: dict[str, Callable], records: list, as_json, of: str = ""
    ) -> None:
        """`records` as a table (`columns` maps a heading to a cell) and their count (`2
        services` and `of`) on a terminal; piped, `as_json(record)` one a line."""
        if not self.terminal:
            for record in records:
                print(json.dumps(as_json(record), default=str), file=self.stdout)
            self.stdout.flush()
            return
        if records:
            table = Table()
            for heading in columns:
                table.add_column(heading, overflow="fold")
            for record in records:
                table.add_row(*(cell(record) for cell in columns.values()))
            self.console.print(table)
        self.console.print(escape(counted(len(records), noun) + of))


def counted(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def styled(word: str) -> str:
    """A status or state word in its colour (rich markup)."""
    style = STYLES.get(word)
    return f"[{style}]{escape(word)}[/]" if style else escape(word)


# -- the commands ----------------------------------------------------------------------------


def execute(engine: Engine, args, clock: jobs.Clock, out: Output) -> int:
    """Run one command and confirm what it did; its exit status. ResellerError propagates
    for the caller to report. `clock` is read once, and only by a command that acts."""
    read: list[datetime] = []

    def now() -> datetime:
        if not read:
            read.append(clock())
        return read[0]

    command = COMMANDS[args.command]
    return command(engine, args, now, out) or 0


def configure(engine, args, now, out):
    periods = args.order_periods.split(",") if args.order_periods else None
    engine.configure(args.currency, pairs(args.rate, "--rate"), periods)
    store = engine.store
    main = store.setting("currency")
    rates = ", ".join(f"1 {code} = {rate} {main or '?'}" for code, rate in store.rates().items())
    periods = store.setting("order_periods")
    out.say(
        f"configured: main currency {main or 'not set'}; rates: {rates or 'none'}; "
        f"order periods: {', '.join(map(str, periods)) if periods else 'any'}"
    )


def connect(engine, args, now, out):
    password = seller_password(args, warn=out.warn)
    module = engine.connect(
        args.module, args.url, args.login, password, period_rules(args.period), now()
    )
    out.say(f"module {args.module} connected (id {module})")


def add_client(engine, args, now, out):
    out.say(f"client {args.name} added (id {engine.add_client(args.name, args.balance)})")


def topup(engine, args, now, out):
    engine.topup(args.name, args.amount, now())
    balance = engine.client(args.name).balance
    out.say(f"client {args.name} topped up by {args.amount}: balance {money(engine, balance)}")


def import_tariff(engine, args, now, out):
    out.say(f"imported as {engine.import_tariff(args.module, args.tariff, now())}")


def sync(engine, args, now, out):
    changes = engine.sync_tariff(tariff_name(engine, args.elid), now())
    out.say("\n".join(changes) or "nothing changed")


def set_price(engine, args, now, out):
    prices = pairs(args.price, "price")
    engine.set_price(args.tariff, prices)
    shown = ", ".join(f"period {period} costs {price}" for period, price in prices.items())
    out.say(f"tariff {args.tariff}: {shown}")


def order(engine, args, now, out):
    item = engine.order(
        args.client,
        args.tariff,
        args.period,
        now(),
        ostempl=args.ostempl,
        addons=pairs(args.addon, "--addon"),
        autoprolong=args.autoprolong,
    )
    store = engine.store
    operation = store.latest_operation(item)
    charged = -sum(e.amount for e in store.expenses(store.item(item).account) if e.item == item)
    out.say(
        f"service {item}: operation {operation.state}",
        f"service {item}: operation {styled(operation.state)} ({escape(args.tariff)} for "
        f"{escape(args.client)}, period {args.period}, charged {escape(money(engine, charged))})",
        STATE_HINTS.get(operation.state),
    )
    return settled(operation, out)


def prolong(engine, args, now, out):
    operation_id = engine.prolong(args.service, args.period, now())
    return ran(engine, out, operation_id, f"prolong for period {args.period}")


def change_status(engine, args, now, out):
    kind = {"delete": "close"}.get(args.command, args.command)
    operation_id = engine.change_status(args.service, kind, now())
    return ran(engine, out, operation_id, args.command)


def restart(engine, args, now, out):
    operation_id = engine.restart(args.service, now())
    kind = engine.store.operation(operation_id).kind
    return ran(engine, out, operation_id, f"{kind} restarted")


def set_addons(engine, args, now, out):
    wanted = pairs(args.addon, "add-on")
    operation_id = engine.set_addons(args.service, wanted, now())
    shown = ", ".join(f"{name}={value}" for name, value in wanted.items())
    return ran(engine, out, operation_id, f"add-ons {shown}")


def change_tariff(engine, args, now, out):
    before = engine.store.tariff_by_id(engine.item(args.service).pricelist).intname
    engine.change_tariff(args.service, args.tariff, now())
    out.say(f"service {args.service}: tariff {before} -> {args.tariff}")


def set_module(engine, args, now, out):
    before = module_name(engine, engine.item(args.service).processingmodule)
    engine.set_module(args.service, args.module)
    out.say(f"service {args.service}: processing module {before} -> {args.module}")


def import_services(engine, args, now, out):
    rows = engine.import_services(args.module, args.type, args.mask, now())
    columns = {
        "remote": lambda r: str(r["remote_id"]),
        "name": lambda r: escape(r["name"]),
        "type": lambda r: r["itemtype"],
        "seller tariff": lambda r: str(r["remote_pricelist"]),
        "status": lambda r: styled(STATUS_NAMES.get(r["status"], str(r["status"]))),
        "expires": lambda r: r["expiredate"] or "",
        "IPs": lambda r: escape(r["ips"].replace(",", ", ")),
    }
    out.rows(f"{args.type} service", columns, rows, lambda r: r, f" of module {args.module}")
    if out.terminal and rows:
        out.say("give one to a client with: assign REMOTE CLIENT")


def assign(engine, args, now, out):
    item_id = engine.assign(args.remote, args.client, now())
    item = engine.item(item_id)
    plan = engine.store.tariff_by_id(item.pricelist).intname
    out.say(
        f"seller service {args.remote} assigned to {args.client} as service {item_id} "
        f"({plan}, {item.status_name}, expires {item.expiredate or 'never'})"
    )


def operations(engine, args, now, out):
    columns = {
        "operation": lambda op: str(op.id),
        "service": lambda op: str(op.item),
        "kind": lambda op: op.kind,
        "state": lambda op: styled(op.state),
        "attempts": lambda op: str(op.attempts),
        "next try": lambda op: stamp(op.next_try) if op.state == RUNNING else "",
        "error": lambda op: escape(f"{op.error_type}: {op.error_msg}") if op.error_msg else "",
    }
    out.rows("operation", columns, engine.store.operations(), operation_json)


def operation_json(op: Operation) -> dict:
    return {**{k: getattr(op, k) for k in OPERATION_KEYS}, "next_try": stamp(op.next_try)}


def services(engine, args, now, out):
    store = engine.store
    clients = {c.id: c.name for c in store.clients()}
    tariffs = {t.id: t.intname for t in store.tariffs()}

    def latest(item) -> str:
        operation = store.latest_operation(item.id)
        return f"{operation.kind} {styled(operation.state)}" if operation else ""

    columns = {
        "service": lambda i: str(i.id),
        "client": lambda i: escape(clients.get(i.account, str(i.account))),
        "tariff": lambda i: escape(tariffs.get(i.pricelist, str(i.pricelist))),
        "status": lambda i: styled(i.status_name),
        "expires": lambda i: i.expiredate or "",
        "autoprolong": lambda i: "on" if i.autoprolong else "off",
        "module": lambda i: escape(module_name(engine, i.processingmodule)),
        "remote": lambda i: "" if i.remote_id is None else str(i.remote_id),
        "operation": latest,
    }
    out.rows("service", columns, store.items(), lambda i: {k: getattr(i, k) for k in SERVICE_KEYS})


def clients(engine, args, now, out):
    store = engine.store
    counts: dict[int, int] = {}
    for item in store.items():
        if item.status != DELETED:
            counts[item.account] = counts.get(item.account, 0) + 1
    records = [
        {"id": c.id, "name": c.name, "balance": str(c.balance), "services": counts.get(c.id, 0)}
        for c in store.clients()
    ]
    columns = {
        "client": lambda c: str(c["id"]),
        "name": lambda c: escape(c["name"]),
        "balance": lambda c: escape(money(engine, c["balance"])),
        "services": lambda c: str(c["services"]),
    }
    out.rows("client", columns, records, lambda c: {k: c[k] for k in CLIENT_KEYS})


def checkevent(engine, args, now, out):
    modules = [args.module] if args.module else [m.name for m in engine.store.modules()]
    for name in modules:
        report = engine.checkevent(name, now())
        out.say(f"{name}: {report.summary()}")
        for operation_id in report.completed:
            out.say(f"{name}: {jobs.described(engine, operation_id)}")


def reconcile(engine, args, now, out):
    out.say("\n".join(engine.reconcile(args.module, now())) or "no drift")


def ran(engine: Engine, out: Output, operation_id: int, what: str) -> int:
    """Confirm an operation just asked for and run: `service N: WHAT: operation ID STATE`."""
    operation = engine.store.operation(operation_id)
    head = f"service {operation.item}: {what}: operation {operation_id}"
    out.say(
        f"{head} {operation.state}",
        f"{escape(head)} {styled(operation.state)}",
        STATE_HINTS.get(operation.state),
    )
    return settled(operation, out)


def settled(operation: Operation, out: Output) -> int:
    """1 with the seller's reason when it refused the operation; 0 otherwise, with a warning
    when the seller could not be reached and the operation waits for its retry."""
    if operation.state == FAILED:
        out.error(operation.error_type, operation.error_msg)
        return 1
    if operation.state == RUNNING and operation.error_msg:
        out.warn(
            f"warning: {operation.error_type}: {operation.error_msg}; the daemon tries it "
            f"again at {stamp(operation.next_try)}"
        )
    return 0


def money(engine: Engine, amount) -> str:
    currency = engine.store.setting("currency")
    return f"{amount} {currency}" if currency else str(amount)


def module_name(engine: Engine, module_id: int) -> str:
    if module_id == MANUAL_MODULE:
        return "manual"
    module = engine.store.module_by_id(module_id)
    return module.name if module else str(module_id)


COMMANDS = {
    "configure": configure,
    "connect": connect,
    "client": add_client,
    "topup": topup,
    "import": import_tariff,
    "pricelist.sync": sync,
    "set-price": set_price,
    "order": order,
    "prolong": prolong,
    "suspend": change_status,
    "resume": change_status,
    "delete": change_status,
    "restart": restart,
    "set-addons": set_addons,
    "change-tariff": change_tariff,
    "set-module": set_module,
    "import-services": import_services,
    "assign": assign,
    "operations": operations,
    "services": services,
    "clients": clients,
    "checkevent": checkevent,
    "reconcile": reconcile,
}


# -- the daemon ------------------------------------------------------------------------------


def daemon(engine: Engine, args, clock: jobs.Clock, clock_name: str) -> int:
    """Run the daemon until SIGTERM or Ctrl-C (the job in hand finishes first; a second
    signal stops at once); 0."""
    stop = threading.Event()

    def stopping(signum, frame) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    handlers = {sig: signal.signal(sig, stopping) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        jobs.run_daemon(
            engine,
            partial(print, flush=True),
            stop,
            clock,
            args.poll_every,
            args.retry_every,
            clock_name,
        )
    except KeyboardInterrupt:
        print(f"{stamp(jobs.utc_now())} daemon stopped at once", flush=True)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return 0
