"""Small scenario runs for the report's and the coverage map's tests: what each file does is
known, so what the report and the map must show is too."""

from __future__ import annotations

from pathlib import Path

import yaml

WORLD = {
    "seller": {
        "currency": "EUR",
        "accounts": {"reseller": {"password": "s3cret", "balance": 100}},
        "tariffs": {
            5: {
                "intname": "vds-1",
                "name": "VDS-1",
                "type": "vds",
                "prices": {1: 10},
                "ostempl": ["debian-12"],
            }
        },
    },
    "reseller": {
        "currency": "EUR",
        "clients": {"alice": {"balance": 100}},
        "modules": {"seller": {"account": "reseller", "password": "s3cret"}},
    },
}
ORDER = [
    {"import": {"module": "seller", "tariff": 5}},
    {
        "order": {"client": "alice", "tariff": "5-vds-1", "period": 1, "ostempl": "debian-12"},
        "as": "vps",
    },
    {"checkevent": "seller"},
]
SUSPENSION = {
    "name": "The seller suspends a VPS and the reseller follows",
    "tags": ["events"],
    **WORLD,
    "steps": ORDER
    + [
        {"seller.suspend": "vps"},
        {"wait": "5m"},
        {"expect": {"service": "vps", "status": "suspended"}},
    ],
    "invariants": ["converged", "events_applied_once"],
}
WRONG_EXPIRY = {
    "name": "An expiry a month too late is caught",
    "tags": ["ordering"],
    **WORLD,
    "steps": ORDER + [{"expect": {"service": "vps", "expires": "2026-03-01"}}, {"wait": "1h"}],
}
SHRINKING = {
    "name": "A top-up that must cover the order, drawn at random",
    "tags": ["property"],
    "let": {"topup": {"between": [1, 40]}},
    "seller": WORLD["seller"] | {"accounts": {"reseller": {"password": "s3cret", "balance": 0}}},
    "reseller": WORLD["reseller"],
    "steps": [
        {"seller.topup": {"account": "reseller", "amount": "$topup"}},
        *ORDER,
        {"expect": {"service": "vps", "status": "active"}},
    ],
}


def write(folder: Path, document: dict, stem: str) -> str:
    path = folder / f"{stem}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return str(path)
