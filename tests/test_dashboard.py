"""The dashboard without a browser: its view of both sides, plots, endpoints, the demo provider."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from xml.etree import ElementTree as ET

import pytest

from scenarios.demo import DEMO, reseller_view
from scenarios.harness import Harness
from scenarios.runner import run_step
from scenarios.spec import load
from simulator.app import create_app
from simulator.charts import Series, line_chart
from simulator.overview import (
    balance_series,
    duration_text,
    in_flight_series,
    overview,
    staff_actions,
)
from tests.conftest import START

SVG = "{http://www.w3.org/2000/svg}"


def order(seller, tariff: int = 5, login: str = "reseller"):
    return seller.order(seller.accounts[login], "vds", tariff, 1)


def panels(client, **query) -> dict[str, str]:
    reply = client.get("/_sim/dashboard/panels", query_string=query)
    assert reply.status_code == 200, reply.data
    return reply.json["panels"]


def one_reseller_service(seller_service: int, status: str = "ordered") -> dict:
    """What a provider gives for one service linked to `seller_service`."""
    return {
        "name": "test billing",
        "currency": "USD",
        "services": [
            {"id": 7, "client": "alice", "status": status, "seller_service": seller_service}
        ],
        "operations": [],
        "clients": [],
        "events": [],
    }


# -- the page shell -----------------------------------------------------------------------


def test_page_shell_holds_no_state_so_it_needs_no_token(client, seller):
    order(seller)
    page = client.get("/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'data-panel="services"' in text and "dashboard.js" in text
    assert "1000" not in text and "100.00" not in text  # the service and the balance come later


def test_static_script_and_style_are_served(client):
    for name in ("dashboard.js", "dashboard.css"):
        reply = client.get(f"/static/{name}")
        assert reply.status_code == 200, name
        reply.close()


# -- the seller side ----------------------------------------------------------------------


def test_without_a_provider_the_dashboard_says_it_shows_the_seller_side_only(client):
    shown = panels(client)
    assert "Seller side only" in shown["side"]
    assert "none is shown without it" in shown["operations"]
    assert "needs the reseller side" in shown["charts"]


def test_staff_buttons_follow_the_service_status(seller):
    service = order(seller, tariff=7)  # set up by hand: ordered
    assert staff_actions(service) == ["activate", "delete"]
    seller.activate(service.id)
    assert staff_actions(service) == ["suspend", "add_ip", "delete"]
    seller.staff_suspend(service.id)
    assert staff_actions(service) == ["resume", "add_ip", "delete"]
    seller.staff_delete(service.id)
    assert staff_actions(service) == []


def test_services_panel_has_a_button_per_staff_action_and_the_add_ons_to_set(client, seller):
    service = order(seller)
    html = panels(client)["services"]
    for action in ("suspend", "add_ip", "delete", "set_addon"):
        assert f'data-action="{action}" data-service="{service.id}"' in html
    assert 'data-action="activate"' not in html
    choices = html.split("data-choices='")[1].split("'")[0]
    assert {c["addon"]: c["value"] for c in json.loads(choices)} == {
        "ram": 1024,
        "backup": False,
        "panel": "none",
    }


def test_accounts_panel_shows_each_balance_and_the_events_waiting_on_its_feed(client, seller):
    order(seller)
    html = panels(client)["accounts"]
    assert "90.00 EUR" in html  # 100 less the 10 the order cost
    assert 'data-account="reseller"' in html
    row = html.split('data-account="reseller"')[1].split("</tr>")[0]
    assert '<td class="num">1</td>' in row  # the set-up event


def test_tariffs_panel_shows_prices_add_ons_and_set_up(client):
    html = panels(client)["tariffs"]
    assert "12 mo: 100" in html
    assert "ram: 1024 included, up to 8192, 0.002 a unit" in html
    assert "after 10m" in html and "manual" in html


def test_event_feed_tells_an_event_on_the_feed_from_one_already_read(seller):
    first = order(seller)
    seller.read_events(seller.accounts["reseller"])
    second = order(seller)
    events = {e["service"]: e for e in overview(seller, None)["events"]}
    assert events[first.id]["fate_text"] == "read from the feed"
    assert events[second.id]["fate_text"] == "on the feed"


def test_event_fates_with_the_reseller_side_applied_fetched_or_never_received(seller):
    services = [order(seller) for _ in range(3)]
    made = list(seller.events_made)
    seller.read_events(seller.accounts["reseller"])
    later = START + timedelta(minutes=10)
    reseller = one_reseller_service(services[0].id)
    reseller["events"] = [
        {"id": made[0].id, "applied": later.isoformat()},
        {"id": made[1].id, "fetched": later.isoformat()},
    ]
    events = {e["id"]: e for e in overview(seller, reseller)["events"]}
    assert (events[made[0].id]["fate"], events[made[0].id]["lag"]) == ("applied", "10m")
    assert events[made[1].id]["fate_text"] == "fetched 01-01 00:10, not applied"
    assert events[made[2].id]["fate_text"] == "read, never received"


def test_call_log_is_filtered_by_a_glob_over_functions(client, session):
    session.get("http://simulator/billmgr", params={"func": "whoami", "out": "json"})
    session.get("http://simulator/billmgr", params={"func": "vds", "out": "json"})
    session.get("http://simulator/billmgr", params={"func": "vds.edit", "out": "json"})
    only_vds = panels(client, calls="vds*")["calls"]
    assert only_vds.count('<td class="func">') == 2 and "whoami</td>" not in only_vds
    assert panels(client, calls="whoami")["calls"].count('<td class="func">') == 1
    assert 'value="whoami"' in panels(client)["calls"]  # suggested in the filter's list


def test_faults_panel_shows_aimed_counters_and_what_they_hit(client, seller):
    seller.faults.add("down", 2, func="itemevent", account="reseller")
    seller.faults.take_for_call("itemevent", "reseller")
    html = panels(client)["faults"]
    assert "<td>itemevent</td><td>reseller</td>" in html
    assert '<td class="num">1</td>' in html  # one of two left, one used
    assert "Hit so far: down 1" in html


# -- the other side -----------------------------------------------------------------------


def test_a_linked_service_shows_both_sides_in_one_row_highlighted_while_they_differ(seller):
    service = order(seller)
    rows = overview(seller, one_reseller_service(service.id))["services"]
    assert len(rows) == 1
    assert (rows[0]["seller"]["status"], rows[0]["reseller"]["status"]) == ("active", "ordered")
    assert rows[0]["differs"]
    same = overview(seller, one_reseller_service(service.id, "active"))["services"]
    assert not same[0]["differs"]


def test_services_panel_shows_the_newest_rows_of_many_and_says_so(client, seller, monkeypatch):
    monkeypatch.setattr("simulator.overview.SHOWN_SERVICES", 2)
    ids = [order(seller).id for _ in range(3)]
    html = panels(client)["services"]
    assert f'data-seller-service="{ids[0]}"' not in html
    assert f'data-seller-service="{ids[2]}"' in html
    assert "The newest 2 rows of 3 seller services" in html


def test_a_reseller_service_not_yet_at_the_seller_gets_its_own_row(seller):
    rows = overview(seller, one_reseller_service(None))["services"]
    assert rows == [{"seller": None, "reseller": rows[0]["reseller"], "differs": False}]
    assert rows[0]["reseller"]["id"] == 7


def locked_store() -> dict:
    raise RuntimeError("database is locked")


def test_a_provider_that_fails_leaves_the_seller_side_shown_and_says_why(seller):
    order(seller)
    shown = panels(dashboard_app(seller, locked_store).test_client())
    assert "RuntimeError: database is locked" in shown["side"]
    assert "#1000" in shown["services"] and "90.00 EUR" in shown["accounts"]


def test_a_provider_that_gives_bad_data_is_named_where(seller):
    view = overview(seller, {"services": [{"id": 1}]})
    assert view["reseller"] is None
    assert view["reseller_error"] == "ProviderError: services[0]: missing 'status'"
    view = overview(seller, {"operations": [{"id": 1, "kind": "open", "state": "x", "created": 5}]})
    assert "operations[0].created: 5 is not a date-time" in view["reseller_error"]


def dashboard_app(seller, reseller_view=None, driver=None):
    return create_app(seller, reseller_view=reseller_view, driver=driver)


# -- history and plots --------------------------------------------------------------------


def test_a_balance_over_time_starts_from_what_it_was_before_its_movements():
    at = [START + timedelta(minutes=n) for n in (0, 5, 10)]
    series = balance_series(
        "reseller", Decimal("25"), [(at[1], Decimal("-10")), (at[2], Decimal("20"))], at[0]
    )
    assert series.points == [(at[0], 15), (at[1], 5), (at[2], 25)]


def test_seller_balance_history_comes_from_its_ledger(seller):
    order(seller)
    seller.advance_to(START + timedelta(hours=1))
    seller.topup("reseller", Decimal("5"))
    seller.advance_to(START + timedelta(hours=2))
    svg = ET.fromstring(overview(seller, None)["charts"]["seller_balances"])
    lines = {p.get("data-series"): p.get("points") for p in svg.iter(f"{SVG}polyline")}
    assert set(lines) == {"reseller", "other", "nosuspend", "poor"}  # not the admin
    points = [tuple(map(float, pair.split(","))) for pair in lines["reseller"].split()]
    heights = [y for _, y in points]
    # 100, then 90 at once (lower on screen), then 95 after the top-up, held until now
    assert heights[0] < heights[1] == heights[2] and heights[2] > heights[3] == heights[4]
    assert points[0][0] == points[1][0] < points[2][0] == points[3][0] < points[4][0]


def test_operations_in_flight_count_from_creation_until_done_or_failed():
    at = [START + timedelta(minutes=n) for n in range(4)]
    series = in_flight_series(
        [
            {"created": at[0], "updated": at[2], "state": "done"},
            {"created": at[1], "updated": at[3], "state": "failed"},
            {"created": at[1], "updated": at[1], "state": "manual"},
        ]
    )
    assert series.points == [(at[0], 1), (at[1], 3), (at[2], 2), (at[3], 1)]


def test_event_lag_is_plotted_once_per_applied_event(seller):
    first, second = order(seller), order(seller)
    events = list(seller.events_made)
    reseller = one_reseller_service(first.id)
    reseller["events"] = [{"id": events[0].id, "applied": "2026-01-01 00:05:00"}]
    svg = ET.fromstring(overview(seller, reseller)["charts"]["event_lag"])
    assert len(list(svg.iter(f"{SVG}circle"))) == 1
    assert second.id  # made, never applied: no dot


def test_a_chart_is_valid_svg_with_names_escaped_and_an_empty_one_says_so():
    end = START + timedelta(hours=2)
    svg = line_chart("<b>", [Series("a & <b>", [(START, 1), (end, 2)])], START, end)
    root = ET.fromstring(svg)
    assert root.find(f"{SVG}title").text == "<b>"
    assert [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "legend"] == ["■ a & <b>"]
    empty = ET.fromstring(line_chart("t", [Series("a")], START, end, empty="nothing here"))
    assert [t.text for t in empty.iter(f"{SVG}text") if t.get("class") == "empty"] == [
        "nothing here"
    ]


def test_chart_time_ticks_are_round_and_fit_the_frame():
    end = START + timedelta(days=3)
    root = ET.fromstring(line_chart("t", [Series("a", [(START, 1)])], START, end))
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("text-anchor") != "end"]
    assert "01-02" in labels and len([t for t in root.iter(f"{SVG}text")]) < 20


def test_durations_read_as_a_person_says_them():
    assert [duration_text(timedelta(seconds=s)) for s in (45, 600, 7500, 93600)] == [
        "45s",
        "10m",
        "2h 5m",
        "1d 2h",
    ]


# -- the buttons' endpoints ---------------------------------------------------------------


def test_clock_button_without_a_driver_moves_the_seller_and_runs_its_automation(client, seller):
    service = order(seller, tariff=6)  # set up 10 minutes after the order
    reply = client.post("/_sim/dashboard/clock", json={"advance": "1h"})
    assert reply.json == {"now": "2026-01-01 01:00:00"}
    assert seller.services[service.id].status == 2


class RecordingDriver:
    """A driver that records what the dashboard asked of it."""

    def __init__(self):
        self.advanced: list[timedelta] = []

    def advance(self, duration: timedelta) -> None:
        self.advanced.append(duration)

    def story(self):
        return None

    def next_step(self) -> dict:
        raise AssertionError("no story to step")


def test_clock_button_with_a_driver_leaves_the_clock_to_it(seller):
    driver = RecordingDriver()
    client = dashboard_app(seller, driver=driver).test_client()
    assert client.post("/_sim/dashboard/clock", json={"advance": "1d"}).status_code == 200
    assert driver.advanced == [timedelta(days=1)]
    assert seller.now == START  # the driver moves both sides; this one did not


@pytest.mark.parametrize(
    "body, message",
    [
        ({}, "advance: missing"),
        ({"advance": "5x"}, "advance: expected a duration like 30s, 5m, 2h or 1d, got '5x'"),
        ({"advance": "0m"}, "advance: expected a duration above 0"),
    ],
)
def test_a_bad_clock_button_request_is_refused_and_changes_nothing(client, seller, body, message):
    reply = client.post("/_sim/dashboard/clock", json=body)
    assert (reply.status_code, reply.json["error"]["msg"]) == (400, message)
    assert seller.now == START


def test_story_step_without_a_story_is_not_found(client):
    reply = client.post("/_sim/dashboard/story/next")
    assert reply.status_code == 404
    assert reply.json["error"]["msg"] == "no story is being told here"


# -- the demo's provider ------------------------------------------------------------------


def test_demo_provider_gives_the_engines_state_in_the_shape_the_dashboard_reads():
    scenario = load(DEMO)
    h = Harness(scenario.seller, scenario.reseller, scenario.start)
    try:
        for step in scenario.steps:
            run_step(h, step)
        data = reseller_view(h.store)
        assert json.loads(json.dumps(data)) == data  # plain JSON values
        view = overview(h.seller, data)
    finally:
        h.close()
    assert view["reseller_error"] == ""
    rows = [(r["seller"]["id"], r["reseller"]["status"], r["differs"]) for r in view["services"]]
    assert rows == [(1000, "suspended", False), (1001, "active", False)]
    assert {e["fate"] for e in view["events"]} == {"applied"}
    assert [e["lag"] for e in view["events"]] == ["5m", "0s", "0s"]  # newest first
    (alice,) = view["reseller"]["clients"]
    opening = alice["balance"] - sum(amount for _, amount in alice["movements"])
    assert (opening, alice["balance"]) == (Decimal(100), Decimal("78.00"))
    assert [op["state"] for op in view["reseller"]["operations"]] == ["done", "done"]
    assert datetime.fromisoformat(view["now"]) == h.now
