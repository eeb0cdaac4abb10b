"""Who watches a scenario run: the runner tells an observer each step; by default, nobody."""

from __future__ import annotations


class Observer:
    """What the runner tells whoever watches a run; this one watches nothing."""

    def started(self, h, scenario) -> None:
        """A run of a concrete scenario begins: both sides are set up, no step has run."""

    def stepped(self, h, step, failure: BaseException | None) -> None:
        """A step ran (and the invariants after it); `failure` if it failed, ending the run."""

    def ended(self, h, failure: BaseException | None) -> None:
        """Every step passed; `failure` if the invariants checked at the end did not hold."""

    def finished(self, result) -> None:
        """A file's result (`runner.Result`): one run, a property's many, or none if bad."""


NOT_OBSERVED = Observer()
_installed: list[Observer] = []


def install(observer: Observer | None) -> None:
    """Make `observer` see every `run_file` not given one (a pytest run's report); None stops."""
    _installed[:] = [observer] if observer is not None else []


def observing() -> Observer:
    return _installed[0] if _installed else NOT_OBSERVED
