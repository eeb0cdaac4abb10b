"""A scenario run's HTML report in headless Chromium: what a person sees, screenshots kept."""

from __future__ import annotations

import re

import run


def test_a_person_reads_a_report_with_a_failing_scenario(page, expect, small_run, tmp_path, shoot):
    target = tmp_path / "reports" / "run.html"
    files = [small_run["suspension"], small_run["wrong_expiry"]]
    assert run.main(["scenarios", *files, "--html", str(target), "--failures", str(tmp_path)]) == 1

    page.goto(target.as_uri())
    expect(page).to_have_title("Scenario run: 1 passed, 1 failed")
    for path, name in (
        (files[0], "The seller suspends a VPS and the reseller follows"),
        (files[1], "An expiry a month too late is caught"),
    ):
        heading = page.get_by_role("heading", name=re.compile(re.escape(name)))
        expect(heading).to_be_visible()
        expect(heading).to_contain_text(path)

    failed = page.locator("section.scenario.failed")
    expect(failed).to_have_count(1)
    expect(failed.get_by_role("heading").first).to_contain_text("FAILED")
    # the failure, open where it happened: step 4, what was expected and what was found
    step = failed.locator("li.step.failed")
    expect(step.locator("summary")).to_contain_text("expect: service: vps, expires: 2026-03-01")
    expect(step.locator("tr.expected").first).to_have_text(re.compile(r"expected\s*'2026-03-01'"))
    expect(step.locator("tr.actual").first).to_have_text(re.compile(r"actual\s*'2026-02-01'"))
    expect(step.locator("table.state").first).to_be_visible()
    expect(failed.locator("svg.timeline")).to_contain_text("step 5 did not run")
    expect(failed.locator("svg.timeline g.step.failed")).to_have_attribute("data-step", "4")
    shoot(page, "report-1-a-failing-scenario")

    passed = page.locator("section.scenario.passed")
    expect(passed.locator("svg.timeline g.step")).to_have_count(6)
    chart = passed.locator('[data-chart="seller_balances"] svg')
    expect(chart).to_be_visible()
    expect(chart.locator("polyline.line")).to_have_count(1)
    expect(passed.locator("li.step.failed")).to_have_count(0)

    # a step opened: the poll it made, and the seller's service marked as changed
    suspend = passed.locator("li.step").nth(3)
    suspend.locator("summary").first.click()
    expect(suspend.locator("td.changed")).to_have_text(["1", "suspended"])
    wait = passed.locator("li.step").nth(4)
    wait.locator("summary").first.click()
    wait.get_by_text("Calls between the two sides").click()
    expect(wait.locator("table.calls")).to_contain_text("itemevent")
    wait.scroll_into_view_if_needed()
    shoot(page, "report-2-a-passing-scenario-opened")

    coverage = page.locator("#coverage")
    expect(coverage.get_by_role("heading", name="Coverage map")).to_be_visible()
    suspended = coverage.locator("table.transitions").first.locator("tr", has_text="active")
    expect(suspended.locator("td.hit")).to_have_count(1)
