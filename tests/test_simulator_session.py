"""Logging in and the caller's own account: key login, keepalive, settings, JSON bodies, and
what only an administrator may do (users, acting as another)."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import pytest

from tests.replies import URL, nothing_changes

KEY = "0123456789abcdef0123"


def key_login(session, login: str = "reseller", key: str = KEY):
    reply = session.get(
        URL, params={"func": "auth", "username": login, "key": key, "checkcookie": "no"}
    )
    return ET.fromstring(reply.content)


# -- one-time keys (session.newkey) ------------------------------------------------------------


def test_a_key_from_session_newkey_logs_in_once(api, session):
    assert api("session.newkey", username="reseller", key=KEY).has("ok")

    first = key_login(session).find("auth")
    again = key_login(session).find("error")

    assert first.get("level") == "16"
    user = api("whoami", None, auth=first.get("id")).one("user")
    assert user.attr("name") == "reseller"
    assert again.get("type") == "auth"


def test_a_key_is_good_for_an_hour(api, client, session):
    api("session.newkey", username="reseller", key=KEY)
    client.post("/_sim/clock", json={"advance": "61m"})

    assert key_login(session).find("error").get("type") == "auth"


def test_a_key_logs_in_only_the_account_it_was_issued_for(api, session):
    api("session.newkey", "root", username="other", key=KEY)

    assert key_login(session, "reseller").find("error").get("type") == "auth"
    assert key_login(session, "other").find("auth") is not None


def test_a_client_may_issue_a_key_only_for_itself(api, client):
    with nothing_changes(client):
        doc = api("session.newkey", username="other", key=KEY)

    assert doc.error()[:2] == ("access", "username")


def test_a_short_key_is_refused(api):
    assert api("session.newkey", username="reseller", key="short").error()[:2] == ("value", "key")


# -- keepalive, settings, discounts ------------------------------------------------------------


def test_keepalive_answers_ok_and_keeps_the_session_alive(api, client):
    sid = api("auth", None, username="reseller", password="s3cret").one("auth").attr("id")

    for _ in range(3):
        client.post("/_sim/clock", json={"advance": "50m"})
        assert api("keepalive", None, auth=sid).has("ok")


def test_usrparam_shows_the_callers_settings_and_saves_an_email(api):
    api("usrparam", email="ops@example.com", sok="ok")

    form = api("usrparam")
    assert (form["name"], form["email"]) == ("reseller", "ops@example.com")


def test_usrparam_refuses_what_is_not_an_email(api):
    assert api("usrparam", email="nope", sok="ok").error()[:2] == ("value", "email")


def test_discountinfo_lists_no_promotion(api):
    (promotion,) = api("account.discountinfo").all("list")

    assert promotion.attr("name") == "promotion"
    assert promotion.all("elem") == []


# -- bodies ------------------------------------------------------------------------------------


def test_a_json_body_carries_the_parameters_as_a_form_does(session):
    reply = session.post(URL, json={"func": "whoami", "authinfo": "reseller:s3cret", "out": "json"})

    assert reply.json()["doc"]["user"]["$name"] == "reseller"


def test_a_body_without_a_content_type_is_read_as_a_form(session):
    reply = session.post(
        URL,
        data=b"func=whoami&authinfo=reseller%3As3cret&out=bjson",
        headers={"Content-Type": ""},
    )

    assert reply.json()["user"]["name"] == "reseller"


def test_the_query_wins_over_the_body_for_the_same_name(session):
    reply = session.post(
        URL + "?out=json", data={"func": "whoami", "out": "xml", "authinfo": "other:other-pw"}
    )

    assert reply.json()["doc"]["user"]["$name"] == "other"


@pytest.mark.parametrize(
    "body", [b"[1, 2]", b"{not json", b'{"func": ["whoami"]}', b'{"func": "whoami", "x": {}}']
)
def test_a_json_body_that_is_not_an_object_of_strings_is_refused(session, body):
    reply = session.post(URL, data=body, headers={"Content-Type": "application/json"})

    error = ET.fromstring(reply.content).find("error")
    assert error.get("type") == "value"


# -- administrators ----------------------------------------------------------------------------


def test_the_user_list_gives_each_account_id_and_email(api):
    api("usrparam", email="ops@example.com", sok="ok")

    rows = {r["name"]: r for r in api("user", "root").all("elem")}

    assert (rows["reseller"]["account_id"], rows["reseller"]["email"]) == ("1", "ops@example.com")
    assert api("user").error()[:2] == ("access", "user")


@pytest.mark.parametrize("func", ["su", "account.su"])
def test_su_answers_ok_and_a_session_of_the_other_account(api, func):
    doc = api(func, "root", elid="2")

    assert doc.has("ok")
    sid = doc.one("auth").attr("id")
    assert api("whoami", None, auth=sid).one("user").attr("name") == "other"


def test_su_takes_a_login_as_well_as_an_account_id(api):
    sid = api("su", "root", elid="poor").one("auth").attr("id")

    assert api("whoami", None, auth=sid).one("user").attr("name") == "poor"


def test_su_is_refused_to_a_client(api, client):
    with nothing_changes(client):
        doc = api("su", elid="2")

    assert doc.error()[:2] == ("access", "su")


def test_an_administrator_calls_as_another_account_with_the_su_parameter(api, order):
    service = order("other")

    rows = api("vds", "root", su="other").all("elem")

    assert [r["id"] for r in rows] == [service]
    assert api("vds", su="other").error()[:2] == ("access", "su")


def test_su_of_an_unknown_account_is_refused_as_missed(api):
    assert api("su", "root", elid="99").error()[:2] == ("missed", "elid")
