"""The BILLmanager API as a function table: one module per family, each function declared once.

Families: `session` (auth, whoami, ...), `catalog` (pricelist.export, order wizard),
`services`, `licences`, `basket` (ordering and the cart), `events` (itemevent), `admin`.
"""

from simulator.functions import (  # noqa: F401  (each registers its functions)
    admin,
    basket,
    catalog,
    events,
    licences,
    services,
    session,
)
from simulator.functions.table import (
    ADMIN,
    CLIENT,
    LOGIN,
    PUBLIC,
    REGISTRY,
    Call,
    Function,
    Param,
    resolve,
)

__all__ = ["ADMIN", "CLIENT", "LOGIN", "PUBLIC", "REGISTRY", "Call", "Function", "Param", "resolve"]
