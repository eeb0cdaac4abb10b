"""Snapshots by name inside the state folder: never a path, files only the owner reads.

A restore reads a file back field by field; one that is not a snapshot is refused naming
where it is wrong, and changes nothing.
"""

from __future__ import annotations

import json
import stat

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator import snapshot
from simulator.app import create_app

ORDER = {"func": "vds.order.param", "authinfo": "reseller:s3cret", "pricelist": 5}
ORDER |= {"period": 1, "sok": "ok", "skipbasket": "on"}


def save(client, name: str):
    return client.post("/_sim/snapshot", json={"name": name})


def restore(client, name: str):
    return client.post("/_sim/restore", json={"name": name})


def files_under(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def saved(client, state_dir) -> dict:
    """A snapshot `good` of the seller with one order, as the JSON its file holds."""
    client.post("/billmgr", data=ORDER)
    assert save(client, "good").status_code == 200
    return json.loads((state_dir / "good.json").read_text())


def test_a_snapshot_is_saved_by_name_inside_the_state_folder(client, state_dir):
    reply = save(client, "before-upgrade.v2_1")

    assert reply.json == {"ok": True, "name": "before-upgrade.v2_1"}
    assert files_under(state_dir) == ["before-upgrade.v2_1.json"]
    assert client.get("/_sim/snapshots").json == {"snapshots": ["before-upgrade.v2_1"]}


def test_a_snapshot_file_is_readable_by_its_owner_only(client, state_dir):
    save(client, "private")

    assert stat.S_IMODE((state_dir / "private.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700


def test_a_snapshot_saved_again_under_its_name_replaces_the_old_one(client, state_dir):
    save(client, "latest")
    client.post("/billmgr", data=ORDER)

    save(client, "latest")
    client.post("/_sim/reset", json={})
    restore(client, "latest")

    assert len(client.get("/_sim/services").json["services"]) == 1
    assert files_under(state_dir) == ["latest.json"]


def test_the_state_file_of_run_py_is_written_readable_by_its_owner_only(seller, tmp_path):
    path = tmp_path / "seller.json"

    snapshot.save(seller, path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert snapshot.load(path).accounts.keys() == seller.accounts.keys()


@pytest.mark.parametrize(
    "name",
    [
        "../../../../tmp/x",
        "/tmp/x",
        "a/b",
        "a\\b",
        "..",
        ".",
        ".hidden",
        "a..b",
        "",
        "x" * 101,
        "naïve",
        "name with spaces",
        "semi;colon",
        "nul\x00byte",
        5,
        None,
        ["x"],
    ],
)
@pytest.mark.parametrize("endpoint", ["snapshot", "restore"])
def test_a_name_that_is_not_a_plain_name_is_refused_naming_it(
    client, tmp_path, unchanged, endpoint, name
):
    with unchanged():
        reply = client.post(f"/_sim/{endpoint}", json={"name": name})

    assert reply.status_code == 400
    found = reply.json["error"]
    assert found["object"] == "name"
    assert found["msg"].startswith("name: expected 1 to 100 of A-Z a-z 0-9 . _ -")
    assert repr(name)[:40] in found["msg"]
    assert files_under(tmp_path) == [], "nothing is written anywhere"


def test_a_restore_of_a_missing_name_is_a_404_that_tells_nothing_of_the_disk(
    client, state_dir, unchanged
):
    with unchanged():
        reply = restore(client, "never-saved")

    assert reply.status_code == 404
    assert reply.json["error"] == {
        "type": "missed",
        "object": "name",
        "msg": "name: no snapshot 'never-saved'",
    }
    assert str(state_dir) not in reply.get_data(as_text=True)


def test_snapshots_without_a_state_folder_are_refused(seller):
    client = create_app(seller).test_client()

    reply = client.post("/_sim/snapshot", json={"name": "x"})

    assert reply.status_code == 409
    assert "--state-dir" in reply.json["error"]["msg"]


def broken(data: dict, where: str, value) -> dict:
    """`data` with the value at the dotted path `where` replaced (or removed, for ...)."""
    data = json.loads(json.dumps(data))
    *path, last = where.split(".")
    node = data
    for part in path:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is ...:
        del node[last]
    else:
        node[int(last) if isinstance(node, list) else last] = value
    return data


@pytest.mark.parametrize(
    "where, value, named",
    [
        ("currency", ..., "currency: missing"),
        ("version", 2, "version: expected 1"),
        ("now", "2026-01-01", "now: expected datetime"),
        ("now", {"__datetime__": "2026-01-01T00:00:00+03:00"}, "now: expected a time without"),
        ("now", {"__datetime__": "yesterday"}, "not a snapshot's JSON"),
        ("seed", "0", "seed: expected int"),
        ("slow_seconds", 1e12, "slow_seconds: expected 0 to 600"),
        ("next.service", "x", "next.service: expected int"),
        ("next.service", 1000, "next.service: expected more than 1000"),
        ("next.event", ..., "next.event: missing"),
        ("accounts.0.balance", {"__decimal__": "NaN"}, "accounts[0].balance: expected an amount"),
        ("accounts.0.balance", {"__decimal__": "1e999999999"}, "accounts[0].balance"),
        ("accounts.0.balance", {"__decimal__": "lots"}, "not a snapshot's JSON"),
        ("accounts.0.password", None, "accounts[0].password: expected str"),
        ("accounts.0.admin", True, "accounts[0].admin: unknown field of Account"),
        ("tariffs.0.type", "boat", "tariffs[0].type: expected one of"),
        ("tariffs.0.prices", [1, 2], "tariffs[0].prices: expected a mapping"),
        ("services.0.account", "stranger", "services[0].account: expected one of"),
        ("services.0.tariff", 99, "services[0].tariff: expected one of"),
        ("services.0.status", 7, "services[0].status: expected one of"),
        ("services.0.expires", 5, "services[0].expires: expected datetime or null"),
        ("services.0.ips", "203.0.113.1", "services[0].ips: expected a list"),
        ("services.0.addons", {"__pairs__": [[["x"], 1]]}, "services[0].addons"),
        (
            "services.0.addons",
            {"__pairs__": [["ram", "lots"]]},
            "services[0].addons.ram: expected integer",
        ),
        (
            "services.0.addons",
            {"__pairs__": [["backup", 1]]},
            "services[0].addons.backup: expected boolean",
        ),
        ("services.0.period", 10**6, "services[0].period: expected a period code"),
        (
            "services.0.setup_due",
            {"__datetime__": "9999-12-15T00:00:00"},
            "services[0].setup_due: period 1 from 9999-12-15 would end after 9999-12-31",
        ),
        (
            "tariffs.0.addons.__pairs__.2.1.item_ids",
            {"__pairs__": []},
            "item_ids: no id for the item",
        ),
        ("feeds.0.account", "stranger", "feeds[0].account: expected one of"),
        ("ledger.0.amount", "-10", "ledger[0].amount: expected Decimal"),
        ("faults", {"queued": [{"kind": "flood", "times": 1}], "used": {}}, "faults: kind"),
        ("faults", {"queued": [{"kind": "down", "times": 1, "used": "x"}]}, "faults.queued[0]"),
        ("faults", [], "faults: expected a mapping"),
        ("extra", 1, "extra: unknown key"),
    ],
)
def test_a_restore_of_a_malformed_snapshot_is_refused_naming_where_and_changes_nothing(
    client, state_dir, saved, unchanged, where, value, named
):
    (state_dir / "bad.json").write_text(json.dumps(broken(saved, where, value)))

    with unchanged():
        reply = restore(client, "bad")

    assert reply.status_code == 400, reply.json
    found = reply.json["error"]
    assert found["object"] == "name"
    assert found["msg"].startswith("name: snapshot 'bad' cannot be restored: ")
    assert named in found["msg"], found["msg"]


@pytest.mark.parametrize(
    "text",
    ['{"version": 1}', "", "not json", "[]", "null", '{"version": 1, ' * 1, "[" * 100_000],
    ids=["version-only", "empty", "not-json", "list", "null", "cut", "deep"],
)
def test_a_restore_of_a_file_that_is_no_snapshot_is_a_400_that_changes_nothing(
    client, state_dir, saved, unchanged, text
):
    (state_dir / "junk.json").write_text(text)

    with unchanged():
        reply = restore(client, "junk")

    assert reply.status_code == 400
    assert reply.json["error"]["msg"].startswith("name: snapshot 'junk' cannot be restored: ")


def test_a_restored_good_snapshot_still_works_after_the_checks(client, saved):
    client.post("/_sim/reset", json={})

    assert restore(client, "good").status_code == 200
    client.post("/billmgr", data=ORDER)
    assert client.post("/_sim/clock", json={"advance": "40d"}).status_code == 200
    statuses = [s["status"] for s in client.get("/_sim/services").json["services"]]
    assert statuses == ["suspended", "suspended"]


# -- any corruption of a good snapshot: refused, or restored into a seller that works ---------


def leaves(node, path=()):
    """Every place in a JSON tree: (path, value) for each value, containers included."""
    yield path, node
    children = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in children:
        yield from leaves(child, (*path, key))


def replaced(tree, path, value):
    if not path:
        return value
    copy = dict(tree) if isinstance(tree, dict) else list(tree)
    copy[path[0]] = replaced(tree[path[0]], path[1:], value)
    return copy


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["EUR", "2026-01-01T00:00:00", "-1e9999", "vds", "reseller"])
    | st.builds(lambda t: {"__datetime__": t}, st.sampled_from(["9999-12-31T23:59:59", "x"]))
    | st.builds(lambda d: {"__decimal__": d}, st.sampled_from(["1e30", "-5", "sNaN", "0.001"]))
    | st.builds(lambda s: {"__seconds__": s}, st.sampled_from([1e300, -1, 0.5])),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=5,
)


@settings(
    max_examples=settings().max_examples * 5,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_corrupted_snapshot_is_refused_or_restores_a_seller_that_works(
    client, state_dir, saved, data
):
    places = list(leaves(saved))
    path, _ = data.draw(st.sampled_from(places), label="place")
    corrupted = replaced(saved, path, data.draw(JSON_VALUES, label="value"))
    (state_dir / "corrupt.json").write_text(json.dumps(corrupted))

    reply = restore(client, "corrupt")

    assert reply.status_code in (200, 400), reply.json
    if reply.status_code == 200:
        for call in (
            lambda: client.post("/billmgr", data=ORDER),
            lambda: client.post("/billmgr", data={"func": "vds", "authinfo": "reseller:s3cret"}),
            lambda: client.post("/billmgr", data={"func": "itemevent", "auth": "x"}),
            lambda: client.get("/_sim/state"),
            lambda: client.get("/_sim/services"),
            lambda: client.post("/_sim/clock", json={"advance": "40d"}),
            lambda: client.post("/_sim/faults", json={"kind": "reorder_events", "times": 1}),
            lambda: client.post(
                "/billmgr", data={"func": "itemevent", "authinfo": "reseller:s3cret"}
            ),
        ):
            answered = call()
            # a corruption may queue faults, which answer 5xx as they are told to
            fault = answered.headers.get("X-Simulator-Fault")
            assert answered.status_code < 500 or fault, answered.data[:500]
            assert b'type="internal"' not in answered.data, answered.data[:500]
    restore(client, "good")
