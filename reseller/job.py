"""What every room of the engine works with: the engine's store, its sellers, its name."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reseller.engine import Engine
    from reseller.store import Store


class Job:
    """One room of the engine (tariffs, operations, events, reconcile) under its `Engine`."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @property
    def store(self) -> Store:
        return self.engine.store

    @property
    def owner(self) -> str:
        """The name this engine's claims and poll marks are held under."""
        return self.engine.owner

    def crash_point(self, name: str) -> None:
        """A test hook: the engine's process may die here (see `Engine.crash_point`)."""
        self.engine.crash_point(name)
