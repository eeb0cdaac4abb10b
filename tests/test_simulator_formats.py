"""The contract of each output format: what a client of that format can count on."""

from __future__ import annotations

import copy
from datetime import UTC
from xml.etree import ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import formats
from simulator.functions.events import event_row, event_xml
from simulator.model import Event
from tests.replies import URL, nothing_changes, services

AUTH = {"authinfo": "reseller:s3cret"}
ORDER = {"func": "vds.order.param", "pricelist": 5, "period": 1, "sok": "ok", "skipbasket": "on"}


@pytest.fixture
def send(session):
    """POST a call (as `reseller` unless `authinfo` is given) and return the raw reply."""

    def post(func: str, **params):
        return session.post(URL, data={"func": func, **AUTH, **params})

    return post


@pytest.fixture
def ordered(send):
    """One VDS ordered; its id."""
    return send(**ORDER, out="xml").content.split(b"<id>")[1].split(b"</id>")[0].decode()


# -- xml ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("params", [{}, {"out": "xml"}, {"out": "devel"}])
def test_no_out_xml_and_devel_answer_xml_with_the_declaration(send, params):
    reply = send("whoami", **params)

    assert reply.headers["Content-Type"].startswith("text/xml")
    assert reply.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<doc>')
    assert ET.fromstring(reply.content).find("user").get("name") == "reseller"


# -- json, sjson, xjson ------------------------------------------------------------------------


@pytest.mark.parametrize("out", ["json", "sjson", "xjson"])
def test_json_formats_wrap_the_document_in_doc_with_dollar_keys(send, out):
    reply = send("whoami", out=out)

    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json() == {
        "doc": {
            "user": {
                "$name": "reseller",
                "$level": "16",
                "$balance": "100",
                "$currency": "EUR",
                "$": "reseller",
            }
        }
    }


@pytest.mark.parametrize("out", ["json", "sjson", "xjson"])
def test_a_list_of_one_row_is_an_array_in_every_json_format(send, ordered, out):
    elem = send("vds", out=out).json()["doc"]["elem"]

    assert isinstance(elem, list) and len(elem) == 1
    assert elem[0]["id"] == {"$": ordered}


@pytest.mark.parametrize("out", ["json", "sjson", "xjson"])
def test_a_select_with_one_value_is_an_array_of_values(send, client, out):
    client.post("/_sim/actions/edit_tariff", json={"id": 5, "ostempl": ["debian-12"]})

    doc = send("vds.order.param", pricelist=5, out=out).json()["doc"]

    (ostempl,) = [s for s in doc["slist"] if s["$name"] == "ostempl"]
    assert ostempl["val"] == [{"$key": "debian-12", "$valuegroup": "debian", "$": "debian-12"}]


def test_an_empty_list_has_no_elem_at_all_but_says_it_has_no_rows(send):
    doc = send("vds", out="json").json()["doc"]

    assert "elem" not in doc
    assert doc["p_elems"] == {"$": "0"}


def test_named_lists_of_a_form_are_an_array_even_alone(send):
    doc = send("account.discountinfo", out="json").json()["doc"]

    assert doc["list"] == [{"$name": "promotion"}]


# -- bjson -------------------------------------------------------------------------------------


def test_bjson_list_rows_are_plain_strings_with_the_raw_status_as_orig(send, ordered):
    body = send("vds", out="bjson").json()

    assert "doc" not in body
    (row,) = body["elem"]
    assert row["id"] == ordered
    assert (row["item_status"], row["item_status_orig"]) == ("Active", "2")
    assert body["p_elems"] == "1"


def test_bjson_form_fields_are_under_model(send, ordered):
    body = send("vds.edit", elid=ordered, out="bjson").json()

    assert body["model"]["id"] == ordered
    assert body["model"]["addon_11"] == "1024"
    assert body["model"]["ostempl"] == "debian-12"
    assert [v["k"] for v in body["slist"]["ostempl"]] == ["debian-12", "centos-7"]


def test_bjson_gives_a_new_id_as_v(send):
    body = send(**ORDER, out="bjson").json()

    assert body["id"] == {"v": "1000"}
    assert body["ok"] == {"v": ""}


def test_bjson_error_has_its_message_as_a_plain_string(send):
    body = send("vds.edit", elid=404, out="bjson").json()

    assert body["error"]["type"] == "missed"
    assert body["error"]["msg"] == "no service 404"


def test_bjson_auth_puts_the_session_in_model(send):
    body = send("auth", authinfo="", username="reseller", password="s3cret", out="bjson").json()

    assert len(body["model"]["auth"]) == 32


# -- ajax (no out, sfrom=ajax) -----------------------------------------------------------------


def test_ajax_lists_rows_as_content_with_each_cell_a_v_and_status_as_its_label(send, ordered):
    body = send("vds", sfrom="ajax").json()

    (row,) = body["content"]
    assert row["id"] == {"v": ordered}
    assert row["item_status"]["v"] == "Active"
    assert row["datacentername"] == {"v": "Datacenter 1"}


def test_ajax_action_answers_a_message_with_status_ok(send, ordered):
    body = send("vds.suspend", elid=ordered, sfrom="ajax").json()

    assert body["message"] == [{"status": "ok"}]


def test_ajax_error_answers_an_error_message_and_a_warning_per_elid(send):
    body = send("vds.delete", elid="77", sfrom="ajax").json()

    assert body["message"][0]["status"] == "error"
    assert body["warning"]["77"]["msg"] == "no service 77"


def test_sfrom_ajax_with_an_out_answers_in_that_out(send):
    reply = send("whoami", sfrom="ajax", out="json")

    assert reply.json()["doc"]["user"]["$name"] == "reseller"


# -- an out the simulator does not speak -------------------------------------------------------


@pytest.mark.parametrize("out", ["yaml", "JSON", "text", "ajax", "x" * 300])
def test_an_unknown_out_is_refused_as_a_json_value_error_naming_out(send, out):
    reply = send("whoami", out=out)

    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    error = reply.json()["doc"]["error"]
    assert (error["$type"], error["$object"]) == ("value", "out")


def test_a_call_with_an_unknown_out_does_nothing(send, client):
    with nothing_changes(client):
        reply = send(**ORDER, out="yaml")

    assert reply.json()["doc"]["error"]["$object"] == "out"
    assert services(client) == []


# -- a list written from its rows --------------------------------------------------------------

TEXTS = st.text(
    st.characters(codec="utf-16", exclude_categories=["Cs"]) | st.sampled_from('&<>"\t\r\n\x00\x1f')
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(
                st.sampled_from(["id", "name", "ip", "remoteid"]),
                TEXTS | st.none(),
                st.none() | st.dictionaries(st.sampled_from(["orig", "color", "_label"]), TEXTS),
            ),
            max_size=4,
        ),
        max_size=3,
    ),
    st.booleans(),
)
def test_a_list_written_straight_from_its_cells_is_byte_for_byte_its_tree(table, with_element):
    made = [[(tag, text, attrs or None) for tag, text, attrs in row] for row in table]
    if with_element:
        made = [
            [
                *row,
                formats.el("item_status", "2", {"color": "<green>", "_label": "x"}),
                formats.el("ip", "203.0.113.1 & <x>"),
                formats.el("ip"),
            ]
            for row in made
        ]

    def listed():
        return formats.rows([list(row) for row in made], p_elems=len(made))

    def tree():  # the rows as elements, as every list was made before
        elems = [formats.el("elem", children=[element(c) for c in row]) for row in made]
        return formats.Document(formats.LIST, elems).add(*formats.fields(p_elems=len(made)))

    for out in ("xml", "json", "bjson", "ajax"):
        assert formats.render(listed(), out, {}) == formats.render(tree(), out, {})


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["id", "param", "ip", "ok", "addon_11"]),
            TEXTS | st.none(),
            st.none() | st.dictionaries(st.sampled_from(["name", "intname", "_label"]), TEXTS),
        ),
        max_size=6,
    ),
    st.booleans(),
    st.sampled_from([None, "ok", "ip", "doc/ok"]),
)
def test_a_form_written_straight_from_its_cells_is_byte_for_byte_its_tree(cells, slist, asked):
    made = [(tag, text, attrs or None) for tag, text, attrs in cells]
    if slist:
        made.append(formats.slist("ostempl", [("debian-12", "Debian & <12>"), ("centos-7", "")]))

    def tree():  # the fields as elements, as every form was made before
        return formats.Document(formats.FORM, [element(c) for c in made])

    for out in ("xml", "json", "bjson", "ajax"):
        written = formats.form(*made)
        if asked is not None:  # a form asked what it has first (as `sok` replies are)
            assert written.has(asked) == tree().has(asked)
        assert formats.render(written, out, {}) == formats.render(tree(), out, {})


def element(cell) -> ET.Element:
    if not isinstance(cell, tuple):
        return cell
    tag, text, attrs = cell
    return formats.el(tag, text, attrs)


EVENT_TEXTS = TEXTS | st.sampled_from(["", "open", "hostname", "203.0.113.7"])
DAYS = st.none() | st.datetimes() | st.datetimes(timezones=st.just(UTC))


@settings(max_examples=300, deadline=None)
@given(
    st.builds(
        Event,
        id=st.integers(0, 10**9) | st.sampled_from([None, True]),
        account=st.just("reseller"),
        type=EVENT_TEXTS,
        service=st.integers(0, 10**9) | st.none(),
        remoteid=EVENT_TEXTS,
        date=DAYS,
        status=st.integers(0, 5) | st.none(),
        expires=DAYS,
        name=EVENT_TEXTS,
        value=EVENT_TEXTS,
        ips=st.lists(EVENT_TEXTS | st.none(), max_size=3),
    )
)
def test_an_event_written_in_one_piece_is_byte_for_byte_the_row_its_cells_make(event):
    assert event_xml(event) == formats.row_xml(event_row(event))


# -- a tree written ----------------------------------------------------------------------------

ATTRIBUTES = st.dictionaries(st.sampled_from(["name", "key", "type", "_label"]), TEXTS, max_size=3)


def with_tail(element: ET.Element, tail: str | None) -> ET.Element:
    element.tail = tail
    return element


TREES = st.recursive(
    st.builds(
        lambda tag, text, attrs, tail: with_tail(formats.el(tag, text, attrs), tail),
        st.sampled_from(["id", "param", "val", "ip"]),
        TEXTS | st.none(),
        st.none() | ATTRIBUTES,
        st.none() | TEXTS,
    ),
    lambda children: st.builds(
        lambda tag, text, attrs, kids: formats.el(tag, text, attrs, kids),
        st.sampled_from(["doc", "slist", "list", "elem"]),
        TEXTS | st.none(),
        st.none() | ATTRIBUTES,
        st.lists(children, max_size=5),
    ),
    max_leaves=20,
)


def as_elementtree_writes_it(root: ET.Element) -> bytes:
    """What `ET.tostring` writes of the tree without its renderers' attributes (`_label`) and
    with what XML cannot carry replaced, after the simulator's declaration."""
    copied = copy.deepcopy(root)
    for element in copied.iter():
        for name in [name for name in element.keys() if name.startswith("_")]:
            del element.attrib[name]
        for name, value in element.items():
            element.set(name, formats.NOT_XML.sub("\ufffd", value))
        for part in ("text", "tail"):
            if getattr(element, part) is not None:
                setattr(element, part, formats.NOT_XML.sub("\ufffd", getattr(element, part)))
    return formats.XML_DECLARATION + ET.tostring(copied, encoding="unicode").encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(TREES)
def test_a_tree_is_written_as_elementtree_writes_it(root):
    assert formats.to_xml(root) == as_elementtree_writes_it(root)
