"""Reply shapes: XML by element paths and attributes, JSON by key paths and value types."""

from __future__ import annotations

import json

from simulator.shape import differences, parse_reply, shape_of


def xml_differences(recorded: str, replayed: str) -> list[str]:
    return differences(shape_of(parse_reply(recorded)), shape_of(parse_reply(replayed)))


def json_differences(recorded, replayed) -> list[str]:
    shapes = [
        shape_of(parse_reply(json.dumps(r), "application/json")) for r in (recorded, replayed)
    ]
    return differences(*shapes)


def row(**values) -> dict:
    return {key: {"$": value} for key, value in values.items()}


def test_ids_dates_and_money_that_differ_are_the_same_shape():
    recorded = {"doc": {"elem": [row(id="4521", expiredate="2026-03-01", cost="12.50")] * 2}}
    replayed = {"doc": {"elem": [row(id="1000", expiredate="2027-11-30", cost="7")] * 3}}

    assert json_differences(recorded, replayed) == []


def test_a_json_list_where_the_recording_has_an_object_is_one_difference():
    recorded = {"doc": {"elem": row(id="1", name="vds1")}}
    replayed = {"doc": {"elem": [row(id="1", name="vds1")]}}

    assert json_differences(recorded, replayed) == [
        "doc.elem[]: object in recording, list in simulator"
    ]


def test_a_missing_key_is_named_once_with_its_list_and_an_extra_one_too():
    recorded = {"doc": {"elem": [row(id="1", cost="5")] * 2}}
    replayed = {"doc": {"elem": [row(id="1", status="2")] * 2}}

    assert json_differences(recorded, replayed) == [
        "doc.elem[].cost: missing in simulator",
        "doc.elem[].status: not in the recording",
    ]


def test_a_value_of_another_kind_is_named_with_both_kinds():
    recorded = {"doc": {"elem": [row(item_status="2")] * 2, "p_elems": 2}}
    replayed = {"doc": {"elem": [row(item_status="Active")] * 2, "p_elems": "2"}}

    assert json_differences(recorded, replayed) == [
        "doc.elem[].item_status.$: number in recording, text in simulator",
        "doc.p_elems: json-number in recording, number in simulator",
    ]


def test_an_empty_or_masked_value_fits_any_kind_of_value():
    recorded = {"doc": {"auth": {"$id": "MASKED-SESSION-1"}, "ip": {"$": ""}}}
    replayed = {"doc": {"auth": {"$id": "5f0e"}, "ip": {"$": "203.0.113.10"}}}

    assert json_differences(recorded, replayed) == []


def test_named_lists_are_told_apart_by_name():
    def form(*names):
        return {
            "doc": {"slist": [{"$name": n, "val": [{"$key": "a"}, {"$key": "b"}]} for n in names]}
        }

    assert json_differences(form("period", "ostempl", "recipe"), form("period", "ostempl")) == [
        "doc.slist[$name=recipe]: missing in simulator"
    ]


def test_ids_in_keys_and_names_are_normalised():
    recorded = {"doc": {"addon_12": {"$": "on"}, "warning": {"4521": {"msg": "x"}}}}
    replayed = {"doc": {"addon_7": {"$": "off"}, "warning": {"1000": {"msg": "y"}}}}

    assert json_differences(recorded, replayed) == []


def test_xml_is_compared_by_element_paths_and_attributes():
    recorded = (
        '<doc><user name="a" balance="1.00" currency="EUR">a</user><elem><id>1</id></elem></doc>'
    )
    replayed = (
        '<doc><user name="a" balance="2.00" level="16">a</user>'
        "<elem><id>2</id></elem><elem><id>3</id><ip/></elem></doc>"
    )

    assert xml_differences(recorded, replayed) == [
        "doc/user/@currency: missing in simulator",
        "doc/elem/ip: not in the recording",
        "doc/user/@level: not in the recording",
    ]


def test_xml_repeats_one_element_or_many_in_the_same_shape():
    one = "<doc><elem><id>1</id></elem></doc>"
    many = "<doc><elem><id>1</id></elem><elem><id>2</id></elem></doc>"

    assert xml_differences(one, many) == []


def test_an_error_where_the_recording_has_none_is_the_only_difference_named():
    error = '<doc><error type="missed" object="elid"><msg>no service</msg></error></doc>'

    assert xml_differences("<doc><ok/></doc>", error) == [
        "error: none in recording, 'missed' in simulator"
    ]


def test_another_error_type_is_named_with_both():
    recorded = {"doc": {"error": {"$type": "notexists", "msg": {"$": "x"}}}}
    replayed = {"doc": {"error": {"$type": "missed", "msg": {"$": "y"}}}}

    assert json_differences(recorded, replayed) == [
        "error type: 'notexists' in recording, 'missed' in simulator"
    ]


def test_a_reply_in_another_format_is_one_difference():
    recorded = shape_of(parse_reply('{"doc": {}}', "application/json"))
    replayed = shape_of(parse_reply('<?xml version="1.0"?><doc/>', "text/xml"))

    assert differences(recorded, replayed) == ["format: json in recording, xml in simulator"]


def test_an_empty_value_where_the_other_has_a_structure_is_a_difference():
    recorded = {"doc": {"ip": {"$": ""}}}
    replayed = {"doc": {"ip": {"$": {"v": "203.0.113.10"}}}}

    assert json_differences(recorded, replayed) == [
        "doc.ip.$.v: not in the recording",
        "doc.ip.$: empty in recording, object in simulator",
    ]
