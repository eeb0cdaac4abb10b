"""The seller tariff most tests share: a VPS with integer, boolean and enumeration add-ons."""

VDS_1 = {
    "intname": "vds-1",
    "name": "VDS-1",
    "type": "vds",
    "prices": {1: 10, 3: 27, 12: 100},
    "addons": {
        "ram": {"id": 11, "type": "integer", "included": 1024, "max": 8192, "unit_price": 0.002},
        "backup": {"id": 12, "type": "boolean", "price": 2},
        "panel": {"id": 13, "type": "enumeration", "items": {"none": 0, "ispmanager": 5}},
    },
    "ostempl": ["debian-12", "centos-7"],
    "recipes": ["lamp"],
}
