"""Point your own tests at a simulated selling BILLmanager.

- the pytest plugin (installed with the package): fixtures `billmanager` (a fresh simulator
  per test on a loopback socket, or in-process) and `mock_billmanager`;
- `mock_billmanager(url)`: `requests` and `httpx` calls to `url` go to an in-process
  simulator, as a context manager or a decorator;
- `SellerSide`: what both give a test, the seller's staff, clock, faults and records.
"""

from importlib.metadata import PackageNotFoundError, version

from bmsim.mock import DEFAULT_URL, MockBillmanager, mock_billmanager
from simulator.side import (
    InProcessSide,
    SellerRefused,
    SellerSide,
    SimulatorUnreachable,
    SocketSide,
)

try:
    __version__ = version("billmanager-resale-sim")
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"

__all__ = [
    "DEFAULT_URL",
    "InProcessSide",
    "MockBillmanager",
    "SellerRefused",
    "SellerSide",
    "SimulatorUnreachable",
    "SocketSide",
    "mock_billmanager",
]
