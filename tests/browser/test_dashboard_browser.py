"""The dashboard in headless Chromium: what a person sees and clicks, screenshots kept."""

from __future__ import annotations

import re

import pytest
from flask import jsonify, request

from simulator.app import create_app
from simulator.clock import Clock
from simulator.world import seller_from_world
from tests.conftest import START

TOKEN = "s3cret-token"


def open_dashboard(page, url: str) -> None:
    page.goto(url + "/")
    page.wait_for_selector("body[data-loaded=yes]")


def seller_row(page, service: int):
    return page.locator(f'tr[data-seller-service="{service}"]')


def click_in(row, action: str) -> None:
    row.locator(f'button[data-action="{action}"]').click()


def test_a_person_drives_the_demo_from_the_browser(page, expect, demo, shoot):
    url, printed = demo
    assert f"Open {url}/ in a browser" in printed.getvalue()
    open_dashboard(page, url)
    expect(page.locator("#clock-now")).to_have_text("2026-01-01 00:00:00")
    expect(page.locator("#clock-mode")).to_have_text("manual")
    story = page.get_by_role("heading", name=re.compile("^Story: A reseller imports"))
    expect(story).to_be_visible()

    # The story's first two steps: import the tariff, Alice orders a VPS.
    page.get_by_role("button", name="Run the next step").click()
    expect(page.locator('li[data-step="1"]')).to_have_class(re.compile(r"\bdone\b"))
    page.get_by_role("button", name="Run the next step").click()
    row = seller_row(page, 1000)
    expect(row.locator("td.status")).to_have_text(["ordered", "ordered"])
    expect(row).to_contain_text("open manual")

    # The seller's staff set it up early; its event waits on the feed.
    click_in(row, "activate")
    expect(row.locator("td.status")).to_have_text(["active", "ordered"])
    expect(row).to_have_class("differs")
    event = page.locator('tr[data-event="1"]')
    expect(event).to_contain_text("open")
    expect(event.locator("td.fate")).to_have_text("on the feed")

    # The seller is down for the next poll of its feed.
    form = page.locator("#fault-form")
    form.locator("select[name=kind]").select_option("down")
    form.locator("input[name=func]").fill("itemevent")
    form.get_by_role("button", name="Queue fault").click()
    expect(page.locator("table.faults tbody tr")).to_have_text(re.compile(r"down\s*1\s*itemevent"))

    page.get_by_role("button", name="+5m").click()
    expect(page.locator("#clock-now")).to_have_text("2026-01-01 00:05:00")
    expect(page.locator("table.calls tbody tr").first).to_contain_text("itemevent")
    expect(page.locator("table.calls tbody tr").first).to_contain_text("down (503)")
    expect(page.locator("table.faults")).to_contain_text("no fault queued")
    expect(page.locator(".used")).to_have_text("Hit so far: down 1")
    expect(event.locator("td.fate")).to_have_text("on the feed")
    expect(row.locator("td.status")).to_have_text(["active", "ordered"])
    shoot(page, "demo-1-poll-hit-by-a-fault")

    # The next poll brings the event: both sides agree, ten minutes after it was made.
    page.get_by_role("button", name="+5m").click()
    expect(event.locator("td.fate")).to_have_text("applied 01-01 00:10")
    expect(event.locator("td").last).to_have_text("10m")
    expect(row.locator("td.status")).to_have_text(["active", "active"])
    expect(row).to_contain_text("open done")
    expect(row).not_to_have_class("differs")
    expect(page.locator('[data-chart="event_lag"] circle')).to_have_count(1)
    shoot(page, "demo-2-event-landed")

    # The staff give it more memory; the add-on event is made.
    click_in(row, "set_addon")
    dialog = page.locator("#addon-dialog")
    expect(dialog).to_be_visible()
    dialog.locator("#addon-value input").fill("2048")
    dialog.get_by_role("button", name="Set add-on").click()
    expect(row.locator("td.addons")).to_have_text("ram=2048")
    expect(page.locator('tr[data-event="2"]')).to_contain_text("ram=2048")

    page.locator("#call-filter").fill("vds.*")
    # newest first: the reconcile the poll after the failed one ran first, then the order
    expect(page.locator("table.calls td.func")).to_have_text(["vds.edit", "vds.order.param"])

    # The rest of the story, to its invariants.
    page.get_by_role("button", name="Run to the end").click()
    expect(page.locator(".next-card")).to_contain_text("The story is over", timeout=20_000)
    expect(page.locator(".invariant")).to_have_text(
        [re.compile(f"invariant {name}: holds") for name in ("converged", "money_conserved")]
        + [re.compile(r"one_remote_per_service: holds"), re.compile(r"events_applied_once: holds")]
    )
    expect(seller_row(page, 1000).locator("td.status")).to_have_text(["suspended", "suspended"])
    expect(page.locator('tr[data-event="2"] td.fate')).to_have_text(re.compile("^applied"))
    page.locator("#call-filter").fill("")
    shoot(page, "demo-3-story-over")


def guarded(app, token: str):
    """A stand-in for the control-API token guard: `/_sim` wants the token, else 401."""

    @app.before_request
    def require_token():
        if not request.path.startswith("/_sim"):
            return None
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in (request.cookies.get("simtoken"), bearer):
            return jsonify(error={"type": "auth", "msg": "a control token is needed"}), 401
        return None

    return app


def test_dashboard_asks_for_the_control_token_once_and_keeps_it(page, expect, serve, world, shoot):
    seller = seller_from_world(world, START)
    seller.order(seller.accounts["reseller"], "vds", 5, 1)
    url = serve(guarded(create_app(seller), TOKEN))
    page.goto(url + "/")
    dialog = page.locator("#token-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#token-refused")).to_be_hidden()
    shoot(page, "token-asked")

    dialog.locator("input[name=token]").fill("wrong")
    dialog.get_by_role("button", name="Use token").click()
    expect(page.locator("#token-refused")).to_be_visible()
    dialog.locator("input[name=token]").fill(TOKEN)
    dialog.get_by_role("button", name="Use token").click()
    expect(dialog).to_be_hidden()
    expect(page.locator('[data-panel="side"]')).to_contain_text("Seller side only")
    expect(seller_row(page, 1000).locator("td.status")).to_have_text(["active"])
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    assert cookies["simtoken"] == TOKEN

    page.reload()  # the cookie is kept: not asked again
    expect(page.locator("body[data-loaded=yes]")).to_have_count(1)
    expect(dialog).to_be_hidden()
    shoot(page, "token-accepted-seller-side-only")


def test_staff_buttons_and_top_up_act_on_the_seller(page, expect, serve, world, shoot):
    seller = seller_from_world(world, START)
    service = seller.order(seller.accounts["reseller"], "vds", 7, 1)  # set up by hand
    open_dashboard(page, serve(create_app(seller)))
    row = seller_row(page, service.id)
    expect(row.locator("td.status")).to_have_text(["ordered"])

    click_in(row, "activate")
    expect(row.locator("td.status")).to_have_text(["active"])
    click_in(row, "add_ip")
    expect(row.locator("td.ips")).to_have_text(re.compile(r"^[\d.]+, [\d.]+$"))
    click_in(row, "suspend")
    expect(row.locator("td.status")).to_have_text(["suspended"])
    expect(page.locator("#notice")).to_have_text(f"suspend #{service.id}: done")
    click_in(row, "resume")
    expect(row.locator("td.status")).to_have_text(["active"])

    account = page.locator('tr[data-account="reseller"]')
    expect(account.locator(".balance")).to_have_text("90.00 EUR")
    click_in(account, "topup")
    page.locator("#topup-dialog input[name=amount]").fill("12.50")
    page.locator("#topup-dialog").get_by_role("button", name="Top up").click()
    expect(account.locator(".balance")).to_have_text("102.50 EUR")

    click_in(row, "delete")
    expect(row.locator("td.status")).to_have_text(["deleted"])
    expect(row.locator("button")).to_have_count(0)
    kinds = page.locator("table.events tbody td:nth-child(3)")
    expect(kinds).to_have_text(["close", "resume", "suspend", "ip_add", "open"])
    shoot(page, "seller-staff-buttons")


@pytest.mark.parametrize(
    ("mode", "speed", "shown"),
    [("manual", None, "manual"), ("real", None, "real"), ("speed", 60, "speed ×60")],
)
def test_clock_shows_the_mode_and_speed_the_simulator_runs_at(
    page, expect, serve, world, shoot, mode, speed, shown
):
    app = create_app(seller_from_world(world, START), clock=Clock(mode, speed))

    open_dashboard(page, serve(app))

    expect(page.locator("#clock-mode")).to_have_text(shown)
    if mode == "speed":
        shoot(page, "clock-sped-up")
