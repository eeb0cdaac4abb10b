"""The engine's errors: each carries a `type` that scenarios name in `fails:` and `error:`."""

from __future__ import annotations


class ResellerError(Exception):
    """A refusal of the reseller engine, with its error type and a message naming the cause."""

    def __init__(self, type: str, message: str):
        super().__init__(f"{type}: {message}")
        self.type = type
        self.message = message


class SellerError(ResellerError):
    """The seller refused a call: its BILLmanager error type, object and message kept."""

    def __init__(self, type: str, message: str, object: str = "", params: dict | None = None):
        super().__init__(type, message)
        self.object = object
        self.params = params or {}


class SellerUnavailable(ResellerError):
    """The seller could not be reached or gave no usable reply (refused, 5xx, timeout, garbage)."""

    def __init__(self, message: str):
        super().__init__("unavailable", message)
