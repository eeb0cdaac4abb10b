"""The function table and the README's fidelity table name the same functions."""

from __future__ import annotations

import re
from pathlib import Path

from simulator.functions import REGISTRY

README = Path(__file__).parent.parent / "README.md"


def documented() -> set[str]:
    """The functions the README's table names, `<type>.x` for those declared per type."""
    text = README.read_text()
    table = text[text.index("### Functions") : text.index("Rules of the seller")]
    names = set()
    for line in table.splitlines():
        if not line.startswith("| `"):
            continue
        previous = ""
        for name in re.findall(r"`([^`]+)`", line.split("|")[1]):
            if name.startswith("."):
                name = previous.rsplit(".", 1)[0] + name
            names.add(name)
            previous = name
    return names


def declared() -> set[str]:
    return {
        fn.name.replace(fn.type, "<type>", 1) if fn.type else fn.name for fn in REGISTRY.values()
    }


def test_every_declared_function_is_in_the_readme_table():
    assert declared() - documented() == set()


def test_every_function_in_the_readme_table_is_declared():
    assert documented() - declared() == set()
