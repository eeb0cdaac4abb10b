"""`run.py parity`: a cassette replayed against the simulator, scored by the replies' shapes."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import requests
import yaml

import run
from simulator.cassette import Call, read_cassette
from simulator.observed import built_world, observe
from simulator.parity import Replay, check_parity
from tests.client_session import ALTERED_DIFFERENCES


def parity(capsys, *args) -> tuple[int, str]:
    code = run.main(["parity", *map(str, args)])
    return code, capsys.readouterr().out


def differences_by_function(report) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for result in report.results:
        if result.differences:
            found.setdefault(result.func, set()).update(result.differences)
    return found


def world_file(tmp_path, world: dict) -> str:
    path = tmp_path / "world.yaml"
    path.write_text(yaml.safe_dump({"name": "the upstream's world", "seller": world, "steps": []}))
    return str(path)


def test_a_session_recorded_against_the_simulator_replays_at_full_parity(
    recorded, cassette_file, capsys
):
    code, out = parity(capsys, cassette_file)

    assert code == 0, out
    assert re.search(r"^overall\s+(\d+)/\1\s+100%$", out, re.M), out
    for func in ("auth", "whoami", "pricelist.export", "vds.order.param", "vds", "vds.edit"):
        assert re.search(rf"^  {re.escape(func)}\s+(\d+)/\1\s+100%$", out, re.M), func
    assert "missing" not in out and "not compared" not in out


def test_every_call_of_the_session_is_compared(recorded, cassette_file):
    report = check_parity(read_cassette(cassette_file))

    assert len(report.results) == recorded.calls
    assert report.score() == 100


def test_the_world_is_built_from_what_the_cassette_shows(recorded, cassette_file, world):
    seen = observe(read_cassette(cassette_file))
    built = built_world(seen)

    assert seen.passwords == {"reseller": "MASKED-PASSWORD-1"}
    assert seen.balances == {"reseller": Decimal("97.00")}  # the first whoami, after the vhost
    assert seen.ordered == set(recorded.services)
    assert sorted(built.section["tariffs"]) == sorted(world["tariffs"])
    vds_1 = built.section["tariffs"][5]
    assert vds_1["prices"] == {1: "10", 3: "27", 12: "100"}
    assert vds_1["ostempl"] == ["debian-12", "centos-7"] and vds_1["recipes"] == ["lamp"]
    assert vds_1["addons"]["ram"] == {
        "id": 11,
        "type": "integer",
        "included": 1024,
        "max": 8192,
        "unit_price": "0.002",
    }
    assert vds_1["addons"]["panel"]["items"] == {"none": "0", "ispmanager": "5"}
    (vhost,) = built.services
    assert (vhost["type"], vhost["tariff"], vhost["domain"]) == ("vhost", "8", "old.example")
    assert built.section["accounts"] == {
        "reseller": {"password": "MASKED-PASSWORD-1", "balance": "97.00"}
    }


def test_the_replay_starts_with_the_balance_the_first_whoami_showed(recorded, cassette_file):
    seen = observe(read_cassette(cassette_file))
    replay = Replay(built_world(seen), seen)

    replay.build()  # buying the vhost that existed before the session costs nothing here

    account = replay.http.get("http://simulator/_sim/accounts/reseller").json()
    assert account["balance"] == "97.00"


def test_sessions_are_followed_without_the_cookie_from_the_reply_alone(recorded, cassette_file):
    calls = read_cassette(cassette_file)
    for call in calls:
        call.set_cookies = {}

    assert check_parity(calls).score() == 100


def test_a_session_set_only_as_a_cookie_is_followed_too():
    login = Call(
        n=1, query={"func": "auth", "username": "reseller", "password": "MASKED-PASSWORD-1"}
    )
    login.body, login.set_cookies = "<doc><ok/></doc>", {"billmgrses5": "MASKED-SESSION-1"}
    whoami = Call(n=2, query={"func": "whoami"}, cookies={"billmgrses5": "MASKED-SESSION-1"})
    whoami.body = '<doc><user name="reseller" level="16" balance="5.00">reseller</user></doc>'
    for call in (login, whoami):
        call.status, call.content_type = 200, "text/xml"

    report = check_parity([login, whoami])

    # unfollowed, the cookie names no session and whoami answers an `auth` error
    assert not [d for d in report.results[1].differences if d.startswith("error")]


def test_a_scenario_world_with_other_passwords_replays_at_full_parity(
    recorded, cassette_file, world, tmp_path, capsys
):
    world["accounts"]["reseller"]["password"] = "another-password"
    world["accounts"]["reseller"]["balance"] = 97

    code, out = parity(capsys, cassette_file, "--world", world_file(tmp_path, world))

    assert code == 0, out
    assert "world from --world" in out
    assert re.search(r"^overall\s+(\d+)/\1\s+100%$", out, re.M), out


def test_an_altered_upstream_shows_exactly_its_alterations(
    recorded_altered, cassette_file, world, tmp_path, capsys
):
    calls = read_cassette(cassette_file)
    report = check_parity(calls, world)

    assert differences_by_function(report) == ALTERED_DIFFERENCES
    assert 70 < report.score() < 100
    code, out = parity(capsys, cassette_file, "--world", world_file(tmp_path, world))
    assert code == 1
    assert "  doc.pricelist[]: object in recording, list in simulator (call 4)" in out
    assert re.search(r"^  pricelist\.export\s+1/2\s+50%$", out, re.M), out
    assert "is below --min-score 100%" in out


def test_min_score_sets_the_bar_for_the_exit_code(
    recorded_altered, cassette_file, world, tmp_path, capsys
):
    path = world_file(tmp_path, world)
    score = check_parity(read_cassette(cassette_file), world).score()

    assert parity(capsys, cassette_file, "--world", path, "--min-score", int(score))[0] == 0
    assert parity(capsys, cassette_file, "--world", path, "--min-score", int(score) + 1)[0] == 1


def test_sessions_are_followed_to_the_simulators_own_ids(recorded, cassette_file):
    calls = read_cassette(cassette_file)
    by_cookie = next(c for c in calls if c.func == "whoami" and c.cookies)

    # the placeholder itself is no session the simulator knows: only a followed one answers
    alone = check_parity([by_cookie])
    followed = check_parity(calls)

    assert alone.results[0].differences == ["error: none in recording, 'auth' in simulator"]
    assert followed.results[by_cookie.n - 1].differences == []


def test_a_call_the_upstream_never_answered_is_listed_and_not_scored(
    recorded, cassette_file, capsys
):
    lines = cassette_file.read_text().splitlines()
    refused = Call(n=len(lines) + 1, query={"func": "whoami"}, status=502, error="refused")
    cassette_file.write_text("\n".join(lines + [refused.to_json()]) + "\n")

    code, out = parity(capsys, cassette_file)

    assert code == 0, out
    assert f"not compared: call {len(lines) + 1} whoami: no answer upstream (refused)" in out


def test_a_seller_that_answers_with_other_shapes_is_reported_in_its_terms(tmp_path, capsys):
    """A hand-written cassette as another seller might answer: numeric item types, yearly
    prices, its own columns, an error type where the simulator has none."""
    export = {
        "doc": {
            "pricelist": [
                {
                    "id": {"$": "31"},
                    "name": {"$": "Cloud S"},
                    "itemtype": {"$": "3"},
                    "itemtype_info": {"intname": {"$": "vds"}},
                    "price": {
                        "$currency": "USD",
                        "period": [
                            {"$cost": "5.0000", "$type": "month", "$length": "1"},
                            {"$cost": "50.0000", "$type": "year", "$length": "1"},
                        ],
                    },
                },
                {"id": {"$": "32"}, "name": {"$": "Virusdie"}, "price": {"period": {}}},
            ]
        }
    }
    services = {
        "doc": {
            "elem": [
                {
                    "id": {"$": "9001"},
                    "pricelist": {"$": "31"},
                    "x_hoster_note": {"$": "rack 4"},
                    "expiredate": {"$": "2026-03-01"},
                },
                {"id": {"$": "9002"}, "pricelist": {"$": "Cloud S"}},  # by name
                {"id": {"$": "9003"}, "pricelist": {"$": "77"}},  # never exported
            ],
            "x_hoster_total": {"$": "3"},
        }
    }
    calls = [
        Call(query={"func": "pricelist.export", "out": "json"}, body=json.dumps(export)),
        Call(query={"func": "vds", "out": "json", "authinfo": "acme:MASKED-PASSWORD-1"}),
        Call(
            query={"func": "vds.suspend", "elid": "9001", "authinfo": "acme:MASKED-PASSWORD-1"},
            body='<doc><error type="not_allowed"><msg>no</msg></error></doc>',
            content_type="text/xml",
        ),
    ]
    calls[1].body = json.dumps(services)
    for n, call in enumerate(calls, 1):
        call.n, call.status = n, 200
        call.content_type = call.content_type or "application/json"
    path = tmp_path / "real.jsonl"
    path.write_text("".join(c.to_json() + "\n" for c in calls))

    code, out = parity(capsys, path, "--min-score", 0)

    assert code == 0
    assert "world built from the cassette: accounts acme; tariffs 31, 77; 3 services" in out
    assert "note: tariff 77: not exported in the cassette; made free" in out
    assert "  doc.elem[].x_hoster_note: missing in simulator (call 2)" in out
    assert "  doc.x_hoster_total: missing in simulator (call 2)" in out
    assert re.search(r"^  vds\.suspend\s+0/1\s+0%$", out, re.M), out
    assert "error: 'not_allowed' in recording, none in simulator (call 3)" in out
    seen = observe(calls)
    assert seen.tariffs[31]["prices"] == {1: "5.0000", 12: "50.0000"}
    assert seen.tariffs[31]["type"] == "vds" and seen.currency == "USD"


def test_a_cassette_that_cannot_be_read_is_refused_naming_the_line(tmp_path, capsys):
    path = tmp_path / "broken.jsonl"
    path.write_text(Call(query={"func": "whoami"}).to_json() + "\n{not json\n")

    code = run.main(["parity", str(path)])

    assert code == 2
    assert capsys.readouterr().err.startswith(f"error: {path}:2: not a JSON object")


def test_a_cassette_line_without_a_method_is_refused_naming_the_key(tmp_path, capsys):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"path": "/billmgr", "status": 200}\n')

    assert run.main(["parity", str(path)]) == 2
    assert f"{path}:1.method: missing" in capsys.readouterr().err


def test_a_world_the_simulator_refuses_is_reported_with_its_key(
    recorded, cassette_file, world, tmp_path, capsys
):
    del world["accounts"]["reseller"]["password"]

    assert run.main(["parity", str(cassette_file), "--world", world_file(tmp_path, world)]) == 2
    assert "seller.accounts.reseller.password: missing" in capsys.readouterr().err


def test_enumeration_items_are_followed_to_the_simulators_item_ids(session):
    """A seller numbers enumeration items its own way; an order naming one still replays."""
    exported = session.get(
        "http://simulator/billmgr", params={"func": "pricelist.export", "out": "json"}
    ).json()
    for tariff in exported["doc"]["pricelist"]:
        for addon in tariff.get("addon", []):
            if "enumeration" in addon:
                for item in addon["enumeration"]["enumerationitem"]:
                    item["id"]["$"] = str(7000 + int(item["id"]["$"]))
    vds_1 = next(t for t in exported["doc"]["pricelist"] if t["id"]["$"] == "5")
    panel = next(a for a in vds_1["addon"] if a["intname"]["$"] == "panel")
    ispmanager = panel["enumeration"]["enumerationitem"][1]["id"]["$"]
    order = {"func": "vds.order.param", "pricelist": "5", "period": "1", "addon_13": ispmanager}
    order |= {"authinfo": "reseller:MASKED-PASSWORD-1", "sok": "ok", "skipbasket": "on"}
    order["out"] = "json"
    ordered = session.post(  # the seller's own reply, by its own item id
        "http://simulator/billmgr",
        data=order | {"authinfo": "reseller:s3cret", "addon_13": int(ispmanager) - 7000},
    )
    calls = [
        Call(n=1, query={"func": "pricelist.export", "out": "json"}, body=json.dumps(exported)),
        Call(n=2, method="POST", form=order, body_format="form", body=ordered.text),
    ]
    for call in calls:
        call.status, call.content_type = 200, "application/json"

    report = check_parity(calls)

    assert int(ispmanager) > 7000
    assert [r.differences for r in report.results] == [[], []]


def test_the_built_world_keeps_who_is_an_admin_and_who_may_not_suspend(
    serve, record_through, upstream_app, cassette_file
):
    upstream = serve(upstream_app)
    bought = {"account": "nosuspend", "tariff": 8, "domain": "kept.example"}
    vhost = requests.post(f"{upstream}/_sim/actions/create_service", json=bought, timeout=5)
    proxy = record_through(upstream)
    for login, password, func in [("root", "toor", "whoami"), ("nosuspend", "pw", "vhost")]:
        params = {"func": func, "authinfo": f"{login}:{password}", "out": "json"}
        requests.get(f"{proxy}/billmgr", params=params, timeout=5)
    params = {"func": "vhost.suspend", "authinfo": "nosuspend:pw", "out": "json"}
    params["elid"] = vhost.json()["result"]["id"]
    refused = requests.get(f"{proxy}/billmgr", params=params, timeout=5)

    calls = read_cassette(cassette_file)
    accounts = built_world(observe(calls)).section["accounts"]

    assert refused.json()["doc"]["error"]["$type"] == "access"
    assert accounts["root"]["level"] == "admin"
    assert accounts["nosuspend"]["can_suspend"] is False
    assert check_parity(calls).score() == 100


def test_bjson_replies_are_read_for_the_world_as_well():
    """bjson writes values as {"v": ...} and attributes as plain keys."""
    auth = "acme:MASKED-PASSWORD-1"
    whoami = Call(query={"func": "whoami", "out": "bjson", "authinfo": auth})
    whoami.body = json.dumps({"doc": {"user": {"balance": {"v": "12.50"}, "level": {"v": "16"}}}})
    order = Call(query={"func": "vds.order.param", "out": "bjson", "authinfo": auth, "sok": "ok"})
    order.body = json.dumps({"doc": {"id": {"v": "77"}}})
    for n, call in enumerate((whoami, order), 1):
        call.n, call.status, call.content_type = n, 200, "application/json"

    seen = observe([whoami, order])

    assert seen.balances == {"acme": Decimal("12.50")} and seen.ordered == {"77"}
