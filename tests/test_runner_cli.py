"""The scenarios command as a new user meets it: picking files, checking them, reports, and a
loader that refuses what cannot be meant."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rich.console import Console

import run
from scenarios import runner
from scenarios.cli import keyword_matcher, run_scenarios, select
from scenarios.runner import run_file
from scenarios.spec import ScenarioError, load
from tests.test_runner import ORDER, RESELLER, SELLER, scenario

OPTIONS = dict(tags=[], examples=3, seed=None, http=False, junit=None)


def console() -> Console:
    return Console(width=100, file=None, force_terminal=False, record=True)


def write(path: Path, document: dict) -> str:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return str(path)


# -- picking and checking files -------------------------------------------------------------


def test_k_picks_files_by_words_of_their_path_name_and_tags(tmp_path):
    a = scenario(tmp_path, "orders go active", ORDER, tags=["ordering"])
    b = scenario(tmp_path, "a suspension", ORDER, tags=["events"])

    assert select([a, b], "ordering", None) == [a]
    assert select([a, b], "not ordering", None) == [b]
    assert select([a, b], "suspension or active", None) == [a, b]
    assert select([a, b], "(events and suspension) and not orders", None) == [b]


def test_a_k_expression_that_cannot_be_read_is_refused_naming_it():
    with pytest.raises(ScenarioError, match="cannot read the expression 'a and'"):
        keyword_matcher("a and")


def test_shards_split_the_files_between_them_with_none_run_twice(tmp_path):
    files = [scenario(tmp_path, f"story {n}", ORDER) for n in range(7)]

    shares = [select(files, None, (i, 3)) for i in (1, 2, 3)]

    assert sorted(f for share in shares for f in share) == sorted(files)
    assert all(len(share) in (2, 3) for share in shares)
    assert select(files, None, (2, 3)) == shares[1]  # the same every run


@pytest.mark.parametrize("value", ["0/3", "4/3", "2", "a/b", "1/0"])
def test_a_bad_shard_is_refused(value, capsys):
    assert run.main(["scenarios", "--shard", value]) == 2
    assert "--shard" in capsys.readouterr().err


def test_check_loads_every_file_and_runs_none(tmp_path):
    good = scenario(tmp_path, "good", ORDER)
    bad = write(tmp_path / "bad.yaml", {"name": "bad", "steps": [{"order": {"client": "x"}}]})
    out = console()

    assert (
        run_scenarios(
            [good, bad], failures_dir=str(tmp_path), check_only=True, console=out, **OPTIONS
        )
        == 1
    )
    text = out.export_text()
    assert f"ok     {good}" in text
    assert "bad.yaml: step 1 (order).period: missing" in text
    assert "1 ok, 1 with errors" in text


def test_list_names_the_files_a_run_would_run_without_running_them(tmp_path, monkeypatch):
    path = scenario(tmp_path, "listed", ORDER)
    monkeypatch.setattr("scenarios.cli.run_file", lambda *a, **k: pytest.fail("ran a file"))
    out = console()

    assert (
        run_scenarios([path], failures_dir=str(tmp_path), list_only=True, console=out, **OPTIONS)
        == 0
    )
    assert f"{path}  [scenario]  listed" in out.export_text()


def test_examples_must_be_at_least_one(capsys):
    assert run.main(["scenarios", "--examples", "0"]) == 2
    assert "--examples: expected at least 1, got 0" in capsys.readouterr().err


# -- reports --------------------------------------------------------------------------------


def test_report_paths_make_their_folders(tmp_path):
    path = scenario(tmp_path, "reported", ORDER)
    junit = tmp_path / "reports" / "deep" / "scenarios.xml"

    code = run.main(["scenarios", path, "--junit", str(junit)])

    assert code == 0 and junit.exists()


def test_without_a_terminal_each_finished_file_gets_one_line(tmp_path):
    paths = [scenario(tmp_path, f"story {n}", ORDER) for n in range(2)]
    out = console()

    run_scenarios(paths, failures_dir=str(tmp_path), console=out, **OPTIONS)

    text = out.export_text()
    for path in paths:
        assert f"passed {path} (" in text


def test_file_names_are_never_cut_in_the_table(tmp_path):
    path = scenario(tmp_path, "a story whose file name is long enough to be cut " * 2, ORDER)
    out = Console(width=60, record=True, force_terminal=False)

    run_scenarios([path], failures_dir=str(tmp_path), console=out, **OPTIONS)

    rows = [line.split("│") for line in out.export_text().splitlines() if line.count("│") == 5]
    first_column = "".join(cells[1].strip() for cells in rows)
    assert "…" not in first_column
    assert path.replace(" ", "") in first_column.replace(" ", "")


def test_ctrl_c_prints_what_finished(tmp_path, monkeypatch):
    paths = [scenario(tmp_path, f"story {n}", ORDER) for n in range(3)]
    real = run_file
    calls = {"n": 0}

    def interrupted(path, **options):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(path, **options)

    monkeypatch.setattr("scenarios.cli.run_file", interrupted)
    out = console()

    assert run_scenarios(paths, failures_dir=str(tmp_path), console=out, **OPTIONS) == 130
    text = out.export_text()
    assert "interrupted: 1 of 3 files finished" in text
    assert "1 passed, 0 failed" in text


def test_a_property_with_two_different_failures_reports_and_writes_both(tmp_path, monkeypatch):
    """Hypothesis tells failures apart by where they come from: a failed check and a crash of
    the code under test are two, and come back together (an ExceptionGroup)."""
    steps = [ORDER[0], {**ORDER[1], "order": {**ORDER[1]["order"], "period": "$period"}}]
    path = scenario(tmp_path, "two bugs", steps, let={"period": {"any": [1, 3, 12]}})
    real = runner.execute

    def buggy(concrete, http=False):
        period = concrete.steps[1].arg["period"]
        if period == 3:
            raise runner.StepFailure("step 2 (order): the engine charged twice")
        if period == 12:
            raise KeyError("a bug in the engine")
        return real(concrete, http)

    monkeypatch.setattr(runner, "execute", buggy)

    result = run_file(path, examples=30, failures_dir=str(tmp_path / "failures"))

    assert not result.passed
    assert "2 different failures" in result.message
    assert "step 2 (order): the engine charged twice" in result.message
    assert "the run crashed: KeyError: 'a bug in the engine'" in result.message
    written = sorted(p.name for p in (tmp_path / "failures").glob("*.yaml"))
    assert written == ["two_bugs-period12.yaml", "two_bugs-period3.yaml"]


def test_a_crash_of_the_code_under_test_fails_the_file_and_the_run_goes_on(tmp_path, monkeypatch):
    crashing, fine = scenario(tmp_path, "crashes", ORDER), scenario(tmp_path, "fine", ORDER)
    real = runner.execute

    def buggy(concrete, http=False):
        if concrete.name == "crashes":
            raise TypeError("a bug")
        return real(concrete, http)

    monkeypatch.setattr(runner, "execute", buggy)
    out = console()

    assert run_scenarios([crashing, fine], failures_dir=str(tmp_path), console=out, **OPTIONS) == 1
    text = out.export_text()
    assert "the run crashed: TypeError: a bug" in text
    assert "1 passed, 1 failed" in text


# -- the loader refuses what cannot be meant -------------------------------------------------


def loads(tmp_path, steps=ORDER, **extra) -> str:
    return scenario(tmp_path, "story", steps, **extra)


@pytest.mark.parametrize(
    "step, where, problem",
    [
        ({"expect": {"service": "vps", "status": "actve"}}, "step 3 (expect).status", "actve"),
        (
            {"expect": {"operation": "vps", "state": "finished"}},
            "step 3 (expect).state",
            "finished",
        ),
        (
            {"expect": {"operation": "vps", "error": "no_money"}},
            "step 3 (expect).error",
            "no_money",
        ),
        (
            {"expect": {"service": "vps", "expires": "2026-13-45"}},
            "step 3 (expect).expires",
            "2026-13-45",
        ),
        ({"suspend": "vps", "fails": "nope"}, "step 3.fails", "nope"),
    ],
)
def test_words_and_dates_that_mean_nothing_are_refused_naming_where(tmp_path, step, where, problem):
    path = loads(tmp_path, [*ORDER, step])

    with pytest.raises(ScenarioError) as refused:
        load(path)

    assert refused.value.where == where
    assert problem in refused.value.problem


@pytest.mark.parametrize("code", ["eur", "EURO", "E1R", 978])
def test_a_currency_that_is_not_three_capitals_is_refused(tmp_path, code):
    path = loads(tmp_path, reseller={**RESELLER, "currency": code})

    with pytest.raises(ScenarioError) as refused:
        load(path)

    assert refused.value.where == "reseller.currency"


def test_a_second_step_naming_the_same_thing_is_refused(tmp_path):
    path = loads(tmp_path, [*ORDER, ORDER[1]])

    with pytest.raises(ScenarioError) as refused:
        load(path)

    assert refused.value.where == "step 3 (order).as"
    assert "'vps' already names what step 2 (order) made" in refused.value.problem


def test_a_whole_number_given_as_text_is_taken_as_the_number(tmp_path):
    steps = [
        {"import": {"module": "seller", "tariff": "5"}},
        {
            "order": {
                "client": "alice",
                "tariff": "5-vds-1",
                "period": "1",
                "ostempl": "debian-12",
            },
            "as": "vps",
        },
        {"wait": "5m"},
        {"expect": {"services": "1", "seller_services": "1"}},
    ]
    path = loads(tmp_path, steps)

    assert load(path).steps[1].arg["period"] == 1
    assert run_file(path).passed


def test_the_simulator_takes_any_yaml_or_json_file_with_a_seller_section(tmp_path):
    """`simulator --world` needs no name or steps: a bare world file works."""
    from run import seller_section  # the one place run.py reads a world file

    json_world = tmp_path / "world.json"
    json_world.write_text('{"seller": {"currency": "EUR", "accounts": {"r": {"password": "p"}}}}')
    yaml_world = write(tmp_path / "world.yaml", {"seller": SELLER})

    assert "accounts" in seller_section(str(json_world))[0]
    assert "tariffs" in seller_section(yaml_world)[0]
