"""`python run.py reseller ...`: the engine's commands, as `mgrctl -m billmgr` offers them."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys

from reseller.engine import Engine
from reseller.errors import ResellerError
from reseller.model import PeriodRule
from reseller.store import stamp


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default="reseller.db", help="the SQLite file (default reseller.db)")
    parser.add_argument("--now", help="the time to act at (ISO); default: now, UTC")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
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
    commands.add_parser("operations", help="list running operations")
    commands.add_parser("services", help="list services")
    checkevent = commands.add_parser("checkevent", help="poll the seller's events once")
    checkevent.add_argument("module", nargs="?")
    reconcile = commands.add_parser("reconcile", help="compare services with the seller, repair")
    reconcile.add_argument("module")
    commands.add_parser("daemon", help="checkevent every 5 minutes and retries, until Ctrl-C")


PASSWORD_VARIABLE = "SELLER_PASSWORD"
OPERATION_KEYS = ("id", "item", "kind", "state", "attempts", "next_try", "error_type", "error_msg")
SERVICE_KEYS = ("id", "account", "pricelist", "status", "expiredate", "remote_id")


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


def execute(engine: Engine, args, now, out, warn=print) -> None:
    """Run one command; ResellerError propagates for the caller to report."""
    command = args.command
    if command == "configure":
        periods = args.order_periods.split(",") if args.order_periods else None
        engine.configure(args.currency, pairs(args.rate, "--rate"), periods)
    elif command == "connect":
        password = seller_password(args, warn=warn)
        module = engine.connect(
            args.module, args.url, args.login, password, period_rules(args.period), now
        )
        out(f"module {args.module} connected (id {module})")
    elif command == "client":
        out(f"client {args.name} added (id {engine.add_client(args.name, args.balance)})")
    elif command == "topup":
        engine.topup(args.name, args.amount, now)
    elif command == "import":
        out(f"imported as {engine.import_tariff(args.module, args.tariff, now)}")
    elif command == "pricelist.sync":
        changes = engine.sync_tariff(tariff_name(engine, args.elid), now)
        out("\n".join(changes) or "nothing changed")
    elif command == "set-price":
        engine.set_price(args.tariff, pairs(args.price, "price"))
    elif command == "order":
        item = engine.order(
            args.client,
            args.tariff,
            args.period,
            now,
            ostempl=args.ostempl,
            addons=pairs(args.addon, "--addon"),
            autoprolong=args.autoprolong,
        )
        out(f"service {item}: operation {engine.store.latest_operation(item).state}")
    elif command == "prolong":
        engine.prolong(args.service, args.period, now)
    elif command in ("suspend", "resume", "delete"):
        engine.change_status(args.service, {"delete": "close"}.get(command, command), now)
    elif command == "restart":
        engine.restart(args.service, now)
        out(f"operation {engine.store.latest_operation(args.service).state}")
    elif command == "operations":
        for op in engine.store.operations():
            row = {k: getattr(op, k) for k in OPERATION_KEYS}
            out(json.dumps({**row, "next_try": stamp(op.next_try)}))
    elif command == "services":
        for item in engine.store.items():
            out(json.dumps({k: getattr(item, k) for k in SERVICE_KEYS}))
    elif command == "checkevent":
        modules = [args.module] if args.module else [m.name for m in engine.store.modules()]
        for name in modules:
            report = engine.checkevent(name, now)
            out(
                f"{name}: {report.fetched} fetched, {report.applied} applied, unmatched "
                f"{report.unmatched}"
            )
    elif command == "reconcile":
        out("\n".join(engine.reconcile(args.module, now)) or "no drift")
