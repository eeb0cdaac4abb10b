"""The command line: simulator, seller, reseller, scenarios, demo, bench, record and parity.

This is the one place that builds the parts and joins them; each command calls one function.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import sys
from datetime import datetime

SHARED_EXAMPLE = "../shared/scenario-examples/any_period_any_balance.yaml"


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("billmanager-resale-sim")
    except PackageNotFoundError:
        return "unknown (not installed)"


def parser() -> argparse.ArgumentParser:
    from reseller import cli as reseller_cli
    from simulator import cli as seller_cli

    # prog from argv: `run.py` or the `bmsim` console script, whichever was run
    top = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    top.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    # `tool`, not `command`: the reseller's own subcommands are `args.command`
    commands = top.add_subparsers(dest="tool", required=True, metavar="COMMAND")

    sim = commands.add_parser("simulator", help="serve the simulated selling BILLmanager")
    sim.add_argument("--host", default="127.0.0.1", help="beyond loopback, a token is required")
    sim.add_argument("--port", type=int, default=8080, help="0 picks a free one")
    sim.add_argument("--world", help="a scenario file whose seller section to load")
    sim.add_argument("--state", help="a snapshot file: loaded if it exists, saved on exit")
    sim.add_argument(
        "--state-dir",
        default="snapshots",
        help="the folder of named snapshots (POST /_sim/snapshot {name}); default ./snapshots",
    )
    sim.add_argument(
        "--token",
        help="the control API's token (visible in ps: prefer $SIMULATOR_TOKEN); "
        "made and printed when listening beyond loopback without one",
    )
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument(
        "--clock",
        choices=["manual", "real"],
        help="manual (the default: moves only when told) or real (the wall clock, UTC)",
    )
    sim.add_argument(
        "--speed",
        type=float,
        metavar="N",
        help="a sped-up clock: N simulated seconds a wall second (60: a wall second is a minute)",
    )

    seller = commands.add_parser(
        "seller", help="drive a running simulator's seller side: its staff, faults and clock"
    )
    seller_cli.add_arguments(seller)

    reseller = commands.add_parser("reseller", help="the reseller engine (mgrctl -m billmgr)")
    reseller_cli.add_arguments(reseller)

    scen = commands.add_parser("scenarios", help="run scenario files and folders")
    scen.add_argument("paths", nargs="*", default=["scenarios/library"], metavar="PATH")
    scen.add_argument("--tag", action="append", default=[], help="only scenarios with this tag")
    scen.add_argument("--examples", type=int, default=100, help="examples per property")
    scen.add_argument("--seed", type=int, help="the Hypothesis seed for properties")
    scen.add_argument("--http", action="store_true", help="go over a real local socket")
    scen.add_argument("--junit", metavar="FILE", help="write JUnit XML here")
    scen.add_argument(
        "--failures",
        default="failures",
        metavar="DIR",
        help="where shrunk failing examples are written",
    )
    scen.add_argument("-k", dest="keyword", metavar="EXPR", help="only files matching EXPR")
    scen.add_argument("--shard", metavar="I/N", help="run the I-th of N stable shares of files")
    scen.add_argument("--list", action="store_true", help="list the files a run would run")
    scen.add_argument("--check", action="store_true", help="load and validate only, run nothing")

    demo = commands.add_parser("demo", help="a narrated reselling story over HTTP")
    demo.add_argument(
        "--keep",
        action="store_true",
        help="serve the dashboard and drive the story from a browser instead",
    )

    bench = commands.add_parser("bench", help="benchmarks against floors measured in the run")
    bench.add_argument("--quick", action="store_true", help="a small version of each")
    bench.add_argument("--output", default="bench.json")
    bench.add_argument("--property", default=SHARED_EXAMPLE, help="figure 6's scenario file")
    bench.add_argument("--only", type=int, action="append", help="run only these figures")

    record = commands.add_parser(
        "record", help="a proxy to a real BILLmanager that writes every call to a cassette"
    )
    record.add_argument("--upstream", required=True, help="the BILLmanager's base URL")
    record.add_argument("--out", required=True, metavar="FILE", help="the cassette (JSON lines)")
    record.add_argument("--host", default="127.0.0.1")
    record.add_argument("--port", type=int, default=8081)
    record.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for the upstream"
    )
    trust = record.add_mutually_exclusive_group()
    trust.add_argument("--ca-bundle", metavar="FILE", help="trust the upstream certificates in it")
    trust.add_argument(
        "--insecure", action="store_true", help="accept any upstream certificate, self-signed too"
    )

    parity = commands.add_parser("parity", help="replay a cassette against the simulator")
    parity.add_argument("file", metavar="FILE", help="a cassette written by `record`")
    parity.add_argument("--world", help="a scenario file whose seller section to replay in")
    parity.add_argument(
        "--min-score",
        type=float,
        default=100.0,
        metavar="PERCENT",
        help="exit non-zero below this overall parity (default 100)",
    )
    return top


def seller_section(path: str) -> tuple[dict, datetime]:
    """The `seller` section of a scenario file and its start time."""
    from scenarios.spec import load_document
    from simulator.world import parse_time

    document = load_document(path)
    return document.get("seller") or {}, parse_time(document.get("start", "2026-01-01T00:00:00Z"))


def stop_on_signal(signum, frame) -> None:
    raise KeyboardInterrupt


def simulator_clock(args):
    """The served simulator's clock from `--clock` and `--speed`; ValueError naming the option."""
    from simulator.clock import Clock

    if args.speed is not None:
        if args.clock:
            raise ValueError(
                f"--speed runs a sped-up clock of its own; leave out --clock {args.clock}"
            )
        try:
            return Clock("speed", args.speed)
        except ValueError:
            raise ValueError(f"--speed: expected a number above 0, got {args.speed:g}") from None
    return Clock(args.clock or "manual")


def describe_clock(clock) -> str:
    if clock.mode == "manual":
        return "manual (moves only when told: POST /_sim/clock, or `seller clock +5m`)"
    if clock.mode == "real":
        return "real (the wall clock, UTC)"
    units = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}
    shown = units.get(clock.speed, f"{clock.speed:g} seconds")
    return f"{clock.speed:g}x (a wall second is a simulated {shown})"


def serve_simulator(args) -> int:
    from pathlib import Path

    import waitress

    from scenarios.spec import ScenarioError
    from simulator import guard, snapshot
    from simulator.app import create_app
    from simulator.clock import Ticker
    from simulator.model import Seller
    from simulator.world import WorldError, seller_from_world

    try:
        clock = simulator_clock(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        token, made = guard.token_for(args.host, args.token or os.environ.get(guard.TOKEN_ENV))
    except ValueError as error:
        source = "--token" if args.token else f"${guard.TOKEN_ENV}"
        print(f"error: {source}: {error}", file=sys.stderr)
        return 2
    try:
        if args.state and Path(args.state).exists():
            seller = snapshot.load(args.state)
        elif args.world:
            section, start = seller_section(args.world)
            seller = seller_from_world(section, start, args.seed)
        else:
            seller = Seller(seed=args.seed)
    except (ScenarioError, WorldError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    app = create_app(seller, clock=clock, token=token, state_dir=args.state_dir)
    try:
        server = waitress.create_server(app, host=args.host, port=args.port, threads=8)
    except OSError as error:
        print(f"error: cannot listen on {args.host}:{args.port}: {error.strerror}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, stop_on_signal)
    state = app.extensions["simulator"]
    ticker = Ticker(clock, lambda: state.seller).start()
    port = getattr(server, "effective_port", args.port)  # several sockets have no one port
    print(
        f"simulated BILLmanager at http://{args.host}:{port}/billmgr "
        f"(control API at /_sim); clock: {describe_clock(clock)}; Ctrl-C to stop",
        flush=True,
    )
    if made:
        print(
            f"control API token: {token}\n  send 'Authorization: Bearer <token>' or the cookie "
            f"{guard.TOKEN_COOKIE}=<token>; set ${guard.TOKEN_ENV} to choose your own",
            flush=True,
        )
    elif token:
        print("control API: requires the token given", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        server.close()
    finally:
        ticker.stop()
        if args.state:
            snapshot.save(app.extensions["simulator"].seller, args.state)
            print(f"state saved to {args.state}", flush=True)
    return 0


def run_seller(args) -> int:
    from simulator import cli as seller_cli

    return seller_cli.main(args)


def run_reseller(args) -> int:
    import requests

    from reseller import cli as reseller_cli
    from reseller.client import SellerClient
    from reseller.engine import Engine
    from reseller.errors import ResellerError
    from reseller.store import Store

    out = reseller_cli.Output()
    with requests.Session() as session:
        try:
            clock, clock_name = reseller_cli.clock_for(args, session)
        except reseller_cli.BadArgument as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        try:
            store = Store(args.db)
        except (sqlite3.Error, OSError) as error:
            reason = error.strerror if isinstance(error, OSError) else error
            print(f"error: --db: cannot open {args.db}: {reason}", file=sys.stderr)
            return 2
        engine = Engine(
            store, lambda url, login, password: SellerClient(url, login, password, session)
        )
        try:
            if args.command == "daemon":
                return reseller_cli.daemon(engine, args, clock, clock_name)
            return reseller_cli.execute(engine, args, clock, out)
        except ResellerError as error:
            out.error(error.type, error.message)
            return 1
        finally:
            store.close()


def run_scenarios(args) -> int:
    from scenarios.cli import run_scenarios as run
    from scenarios.cli import shard_of

    try:
        shard = shard_of(args.shard) if args.shard else None
    except ValueError as error:
        print(f"error: --shard: {error}", file=sys.stderr)
        return 2
    return run(
        args.paths,
        tags=args.tag,
        examples=args.examples,
        seed=args.seed,
        http=args.http,
        junit=args.junit,
        failures_dir=args.failures,
        keyword=args.keyword,
        shard=shard,
        list_only=args.list,
        check_only=args.check,
    )


def run_demo(args) -> int:
    from rich.console import Console

    from scenarios.demo import play

    try:
        return play(Console(), keep=args.keep)
    except KeyboardInterrupt:
        return 0


def run_bench(args) -> int:
    from bench.cli import main

    return main(quick=args.quick, output=args.output, property_path=args.property, only=args.only)


def run_record(args) -> int:
    import waitress

    from simulator.cassette import CassetteWriter
    from simulator.record import Recorder, upstream_url

    if args.ca_bundle and not os.path.isfile(args.ca_bundle):
        print(f"error: --ca-bundle: no such file {args.ca_bundle}", file=sys.stderr)
        return 2
    try:
        upstream = upstream_url(args.upstream)
        cassette = CassetteWriter(args.out)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: --out: cannot write {args.out}: {error.strerror}", file=sys.stderr)
        return 2
    verify = False if args.insecure else args.ca_bundle or True
    if args.insecure:
        import urllib3

        # asked for: one warning per call would bury the banner
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    recorder = Recorder(upstream, cassette, timeout=args.timeout, verify=verify)
    try:
        server = waitress.create_server(recorder, host=args.host, port=args.port, threads=8)
    except OSError as error:
        cassette.close()
        print(f"error: cannot listen on {args.host}:{args.port}: {error.strerror}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, stop_on_signal)
    print(
        f"recording http://{args.host}:{server.effective_port}/ -> {upstream} "
        f"into {args.out}; Ctrl-C to stop",
        flush=True,
    )
    try:
        server.run()
    except KeyboardInterrupt:
        server.close()
    finally:
        cassette.close()
        print(f"{cassette.count} calls recorded in {args.out}", flush=True)
    return 0


def run_parity(args) -> int:
    from scenarios.spec import ScenarioError
    from simulator.cassette import CassetteError, read_cassette
    from simulator.parity import WorldRefused, check_parity
    from simulator.world import WorldError

    try:
        calls = read_cassette(args.file)
        if not calls:
            raise CassetteError(f"{args.file}: no calls recorded")
        world = seller_section(args.world)[0] if args.world else None
        parity = check_parity(calls, world)
    except (CassetteError, ScenarioError, WorldError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except WorldRefused as error:
        print(f"error: --world: the simulator refused it: {error}", file=sys.stderr)
        return 2
    print(f"parity of {args.file} against the simulator")
    for line in parity.lines():
        print(line)
    score = parity.score()
    if score < args.min_score:
        print(f"parity {score:.1f}% is below --min-score {args.min_score:g}%")
        return 1
    return 0


COMMANDS = {
    "simulator": serve_simulator,
    "seller": run_seller,
    "reseller": run_reseller,
    "scenarios": run_scenarios,
    "demo": run_demo,
    "bench": run_bench,
    "record": run_record,
    "parity": run_parity,
}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return COMMANDS[args.tool](args)


if __name__ == "__main__":
    sys.exit(main())
