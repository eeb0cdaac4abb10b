"""The reseller engine's use cases: BILLmanager's "BILLmanager" processing module at work.

Every use case takes `now`; the engine never reads a clock. Its dependencies come in:
a `Store` and a function that opens a `SellerClient` for a module's URL and login.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from dateutil.relativedelta import relativedelta

from reseller import domain
from reseller.client import RemoteService, RemoteTariff, SellerClient
from reseller.domain import (
    ACTIVE,
    CLOSE,
    DELETED,
    DONE,
    FAILED,
    MANUAL,
    OPEN,
    ORDERED,
    PROLONG,
    RESUME,
    RUNNING,
    SETPARAM,
    SUSPEND,
    SUSPENDED,
    AddonSpec,
    PeriodRule,
)
from reseller.errors import ResellerError, SellerError, SellerUnavailable
from reseller.store import Store, day, stamp

CLIENT_LEVEL = 16
MANUAL_MODULE = 0
OPEN_TYPES = ("vds", "dedic", "vhost", "soft")

ClientFactory = Callable[[str, str, str], SellerClient]
STATUS_WANTED = {SUSPEND: SUSPENDED, RESUME: ACTIVE, CLOSE: DELETED}


@dataclass
class EventReport:
    """What one `checkevent` did: events fetched, applied, kept unmatched, operations done."""

    fetched: int = 0
    applied: int = 0
    unmatched: list[int] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)


class Engine:
    """The reselling BILLmanager: modules, tariffs, clients, services and their operations."""

    def __init__(self, store: Store, open_client: ClientFactory):
        self.store = store
        self.open_client = open_client
        self._clients: dict[int, SellerClient] = {}
        # A test hook: called with a point's name where a crash would hurt most.
        self.crash_point: Callable[[str], None] = lambda name: None

    # -- configuration -----------------------------------------------------------------------

    def configure(
        self,
        currency: str | None = None,
        rates: dict | None = None,
        order_periods: list[int] | None = None,
    ) -> None:
        """Set the main currency, exchange rates (1 unit of X = rate main) and order periods."""
        checked = {code: _amount(rate, f"rate of {code}") for code, rate in (rates or {}).items()}
        for code, rate in checked.items():
            if rate == 0:
                raise ResellerError("value", f"rate of {code}: must be above 0")
        try:
            periods = sorted(int(str(p)) for p in order_periods or [])
        except ValueError:
            raise ResellerError(
                "value", f"order periods: {order_periods!r} are not period codes like 1, 3, 12"
            ) from None
        with self.store.atomic():
            if currency is not None:
                self.store.set_setting("currency", currency)
            for code, rate in checked.items():
                self.store.set_rate(code, rate)
            if order_periods is not None:
                self.store.set_setting("order_periods", periods)

    def seller(self, module: dict) -> SellerClient:
        if module["id"] not in self._clients:
            self._clients[module["id"]] = self.open_client(
                module["url"], module["login"], module["password"]
            )
        return self._clients[module["id"]]

    def module(self, name: str) -> dict:
        module = self.store.module(name)
        if module is None:
            raise ResellerError("unknown", f"no processing module '{name}'")
        return module

    def connect(
        self,
        name: str,
        url: str,
        login: str,
        password: str,
        periods: list[PeriodRule],
        now: datetime,
    ) -> int:
        """Add a BILLmanager processing module after checking the seller account behind it."""
        if self.store.module(name):
            raise ResellerError("exists", f"a processing module named '{name}' exists")
        other = next(
            (
                m
                for m in self.store.modules()
                if m["login"] == login
                and domain.seller_address(m["url"]) == domain.seller_address(url)
            ),
            None,
        )
        if other:
            raise ResellerError(
                "duplicate_connection",
                f"module '{other['name']}' already uses account '{login}' at {url}; the seller's "
                "event feed empties on read, so two modules on one account lose events",
            )
        who = self.open_client(url, login, password).whoami()
        if who["level"] != CLIENT_LEVEL:
            raise ResellerError(
                "access",
                f"account '{login}' has level {who['level']}; the "
                "seller account must be client level (16)",
            )
        return self.store.add_module(name, url, login, password, periods, now)

    # -- tariffs -----------------------------------------------------------------------------

    def _rate(self, currency: str) -> Decimal:
        main = self.store.setting("currency")
        if not main:
            raise ResellerError("no_rate", "no main currency is set, so prices cannot be imported")
        if currency == main:
            return Decimal(1)
        rate = self.store.rates().get(currency)
        if rate is None:
            raise ResellerError("no_rate", f"no exchange rate from {currency} to {main}")
        return rate

    def _remote_tariff(self, module: dict, remote_id: int) -> RemoteTariff:
        found = [t for t in self.seller(module).tariffs(remote_id) if t.id == remote_id]
        if not found:
            raise ResellerError("unknown", f"the seller has no tariff {remote_id}")
        return found[0]

    def import_tariff(self, module_name: str, remote_id: int, now: datetime) -> str:
        """Import a seller tariff as `<seller id>-<intname>` with converted prices."""
        module = self.module(module_name)
        remote = self._remote_tariff(module, int(remote_id))
        intname = f"{remote.id}-{remote.intname}"
        if self.store.pricelist(intname):
            raise ResellerError("exists", f"tariff {intname} is already imported")
        rate = self._rate(remote.currency)
        wanted = self.store.setting("order_periods")
        if wanted is not None and set(wanted) != set(remote.prices):
            missing = sorted(set(wanted) - set(remote.prices))
            extra = sorted(set(remote.prices) - set(wanted))
            raise ResellerError(
                "period",
                f"tariff {remote.id} has periods "
                f"{sorted(remote.prices)}, the reseller sells {wanted}: missing "
                f"{missing}, extra {extra}",
            )
        with self.store.atomic():
            pricelist_id = self.store.add_pricelist(
                intname=intname,
                name=remote.name,
                itemtype=remote.type,
                processingmodule=module["id"],
                remote_id=remote.id,
                currency=remote.currency,
            )
            self.store.set_prices(
                pricelist_id, {p: domain.convert(c, rate) for p, c in remote.prices.items()}
            )
            for addon in remote.addons.values():
                self.store.add_addon(pricelist_id, self._local_addon(addon, rate, enabled=True))
            for param, values in (("ostempl", remote.ostempl), ("recipe", remote.recipes)):
                for value in values:
                    self.store.assign_value(module["id"], pricelist_id, param, value)
        return intname

    @staticmethod
    def _local_addon(addon, rate: Decimal, enabled: bool) -> AddonSpec:
        step = domain.UNIT_PRICE if addon.type == "integer" else domain.CENT
        return AddonSpec(
            addon.intname,
            addon.type,
            addon.id,
            enabled,
            addon.included,
            addon.max,
            domain.convert(addon.price, rate, step),
            {n: domain.convert(p, rate) for n, (_, p) in addon.items.items()},
            {n: i for n, (i, _) in addon.items.items()},
        )

    def tariff(self, intname: str) -> dict:
        pricelist = self.store.pricelist(intname)
        if pricelist is None:
            raise ResellerError("unknown", f"no tariff '{intname}'")
        return pricelist

    def sync_tariff(self, intname: str, now: datetime) -> list[str]:
        """`pricelist.sync`: follow the seller's add-ons, enumerations and templates."""
        pricelist = self.tariff(intname)
        module = self.store.module_by_id(pricelist["processingmodule"])
        remote = self._remote_tariff(module, pricelist["remote_id"])
        rate = self._rate(remote.currency)
        local = self.store.addons(pricelist["id"])
        changes: list[str] = []
        with self.store.atomic():
            for param, values in (("ostempl", remote.ostempl), ("recipe", remote.recipes)):
                have = self.store.tariff_values(pricelist["id"], param)
                for value in values:
                    if value not in have:
                        self.store.assign_value(module["id"], pricelist["id"], param, value)
                        changes.append(f"{param} {value} added")
                for value in have:
                    if value not in values:
                        self.store.unassign_value(pricelist["id"], param, value)
                        changes.append(f"{param} {value} removed")
            self.crash_point("syncing_tariff")
            for name, addon in remote.addons.items():
                if name not in local:
                    self.store.add_addon(
                        pricelist["id"], self._local_addon(addon, rate, enabled=False)
                    )
                    changes.append(f"add-on {name} created, disabled")
                elif addon.type == "enumeration":
                    changes += self._sync_items(pricelist["id"], local[name], addon, rate)
            for name in local:
                if name not in remote.addons:
                    self.store.delete_addon(pricelist["id"], name)
                    changes.append(f"add-on {name} deleted")
            dropped = set(local) - set(remote.addons)
            if dropped:
                self._end_changes_to_dropped_addons(pricelist["id"], dropped, now)
            # An event for an item (or add-on) not known here yet kept the seller's item id;
            # now that the item is known, services hold its name like every other value.
            for name, addon in remote.addons.items():
                for item, (item_id, _) in addon.items.items():
                    self.store.rename_addon_value(pricelist["id"], name, str(item_id), item)
        return changes

    def _end_changes_to_dropped_addons(self, pricelist_id: int, dropped: set, now) -> None:
        """Accepted add-on changes only to add-ons the seller dropped: nothing can confirm them
        any more (their events no longer name an add-on here), so they are over."""
        for item in self.store.items():
            if item["pricelist"] != pricelist_id:
                continue
            for operation in self.store.operations(item["id"]):
                if (
                    operation["kind"] == SETPARAM
                    and operation["state"] == MANUAL
                    and set(operation["params"]["addons"]) <= dropped
                ):
                    self._complete(operation["id"], now)

    def _sync_items(self, pricelist_id: int, spec: AddonSpec, addon, rate) -> list[str]:
        addon_id = self.store.addon_id(pricelist_id, spec.intname)
        changes = []
        for item, (remote_id, price) in addon.items.items():
            if item not in (spec.items or {}):
                self.store.add_enum_item(addon_id, item, remote_id, domain.convert(price, rate))
                changes.append(f"{spec.intname} item {item} created")
        for item in spec.items or {}:
            if item not in addon.items:
                self.store.delete_enum_item(addon_id, item)
                changes.append(f"{spec.intname} item {item} deleted")
        return changes

    def set_price(
        self, intname: str, prices: dict | None = None, addons: dict | None = None
    ) -> None:
        """The operator's own prices: per period, and per add-on (per item for enumerations)."""
        pricelist = self.tariff(intname)
        specs = self.store.addons(pricelist["id"])
        for name in addons or {}:
            if name not in specs:
                raise ResellerError("unknown", f"tariff {intname} has no add-on '{name}'")
        new_prices = {}
        for period, price in (prices or {}).items():
            amount = _amount(price, f"price of period {period}")
            try:
                new_prices[int(str(period))] = amount
            except ValueError:
                raise ResellerError("value", f"period {period!r} is not a period code") from None
        with self.store.atomic():
            self.store.set_prices(pricelist["id"], new_prices)
            for name, price in (addons or {}).items():
                if isinstance(price, dict):
                    addon_id = self.store.addon_id(pricelist["id"], name)
                    for item, item_price in price.items():
                        if item not in (specs[name].items or {}):
                            raise ResellerError("unknown", f"add-on {name} has no item '{item}'")
                        self.store.set_enum_item_price(
                            addon_id, item, _amount(item_price, f"{name}.{item}")
                        )
                else:
                    self.store.set_addon_price(pricelist["id"], name, _amount(price, name))

    # -- clients -----------------------------------------------------------------------------

    def add_client(self, name: str, balance=0) -> int:
        if self.store.client(name):
            raise ResellerError("exists", f"client '{name}' exists")
        return self.store.add_client(name, _amount(balance, f"balance of {name}"))

    def client(self, name: str) -> dict:
        client = self.store.client(name)
        if client is None:
            raise ResellerError("unknown", f"no client '{name}'")
        return client

    def topup(self, name: str, amount, now: datetime) -> None:
        value = _amount(amount, "amount")
        if value <= 0:
            raise ResellerError("value", f"a top-up must be positive, not {value}")
        with self.store.atomic():
            self.store.move_money(self.client(name)["id"], value, "topup", now)

    # -- services and their operations -------------------------------------------------------

    def item(self, item_id: int) -> dict:
        item = self.store.item(item_id)
        if item is None:
            raise ResellerError("unknown", f"no service {item_id}")
        return item

    def order(
        self,
        client: str,
        tariff: str,
        period: int,
        now: datetime,
        *,
        ostempl: str | None = None,
        recipe: str | None = None,
        domain_name: str | None = None,
        addons: dict | None = None,
        autoprolong: bool = False,
    ) -> int:
        """Charge the client, create the service and its `open` operation, and run it."""
        account = self.client(client)
        pricelist = self.tariff(tariff)
        specs = self.store.addons(pricelist["id"])
        values = domain.addon_values(specs, addons or {})
        for param, value in (("ostempl", ostempl), ("recipe", recipe)):
            allowed = self.store.tariff_values(pricelist["id"], param)
            if value is not None and value not in allowed:
                raise ResellerError(
                    "value", f"tariff {tariff} has no {param} '{value}'; it has {allowed}"
                )
        price = domain.price_for(
            self.store.prices(pricelist["id"]), specs, values, int(period), tariff
        )
        if Decimal(account["balance"]) < price:
            raise ResellerError(
                "insufficient_funds",
                f"client {client} has {account['balance']}, the order costs {price}",
            )
        with self.store.atomic():
            item_id = self.store.add_item(
                account=account["id"],
                pricelist=pricelist["id"],
                itemtype=pricelist["itemtype"],
                processingmodule=pricelist["processingmodule"],
                remote_module=pricelist["processingmodule"],
                period=int(period),
                status=ORDERED,
                autoprolong=int(bool(autoprolong)),
                createdate=stamp(now),
            )
            for name, value in values.items():
                self.store.set_item_addon(item_id, name, value)
            params = {"ostempl": ostempl, "recipe": recipe, "domain": domain_name}
            for name, value in params.items():
                if value is not None:
                    self.store.set_item_param(item_id, name, str(value))
            operation = self.store.add_operation(item_id, OPEN, {"period": int(period)}, now)
            self.store.move_money(account["id"], -price, "order", now, item_id, operation)
        self.run_operation(operation, now)
        return item_id

    def _linked(self, item_id: int) -> dict:
        item = self.item(item_id)
        if item["remote_id"] is None:
            raise ResellerError("not_linked", f"service {item_id} is not set up at the seller yet")
        return item

    def prolong(self, item_id: int, period: int, now: datetime) -> int:
        """Charge the client for another period and register the `prolong` operation."""
        item = self._linked(item_id)
        if item["status"] == DELETED:
            raise ResellerError("value", f"service {item_id} is deleted")
        if item["status"] == ORDERED:
            raise ResellerError("value", f"service {item_id} is not set up yet; prolong it later")
        pricelist = self.store.pricelist_by_id(item["pricelist"])
        specs = self.store.addons(item["pricelist"])
        price = domain.price_for(
            self.store.prices(item["pricelist"]),
            specs,
            self.store.item_addons(item_id),
            int(period),
            pricelist["intname"],
        )
        account = self.store.client_by_id(item["account"])
        if Decimal(account["balance"]) < price:
            raise ResellerError(
                "insufficient_funds",
                f"client {account['name']} has "
                f"{account['balance']}, the prolongation costs {price}",
            )
        with self.store.atomic():
            operation = self.store.add_operation(item_id, PROLONG, {"period": int(period)}, now)
            self.store.move_money(account["id"], -price, "prolong", now, item_id, operation)
        self.run_operation(operation, now)
        return operation

    def change_status(self, item_id: int, kind: str, now: datetime) -> int:
        """Register and run a `suspend`, `resume` or `close` (delete) operation."""
        if kind not in (SUSPEND, RESUME, CLOSE):
            raise ResellerError(
                "value", f"no status change {kind!r}; expected suspend, resume or close"
            )
        item = self._linked(item_id)
        if item["status"] == DELETED:
            raise ResellerError("value", f"service {item_id} is deleted")
        operation = self.store.add_operation(item_id, kind, {}, now)
        self.run_operation(operation, now)
        return operation

    def set_addons(self, item_id: int, addons: dict, now: datetime) -> int:
        """Charge the monthly increase and register the `setparam` operation."""
        item = self._linked(item_id)
        if item["status"] == DELETED:
            raise ResellerError("value", f"service {item_id} is deleted")
        if not addons:
            # An empty change would be "done" by any retry without the seller doing anything.
            raise ResellerError("value", "name at least one add-on to change")
        specs = self.store.addons(item["pricelist"])
        old = self.store.item_addons(item_id)
        unknown = sorted(set(addons) - {n for n, s in specs.items() if s.enabled})
        if unknown:
            raise ResellerError("unknown", f"no enabled add-on '{unknown[0]}' on this service")
        # What the service will have once the changes still pending land: the client pays
        # for a change once, however often it is asked for before its event arrives.
        for operation in self.store.operations(item_id):
            if operation["kind"] == SETPARAM and operation["state"] in (RUNNING, MANUAL):
                old = {**old, **operation["params"]["addons"]}
        wanted = {name: specs[name].normalise(value) for name, value in addons.items()}
        # Values the service already has are not sent: a change to nothing can't be told
        # from one the seller never got, when its reply is lost.
        wanted = {name: value for name, value in wanted.items() if old.get(name) != value}
        if not wanted:
            raise ResellerError(
                "value", "the service already has (or is being given) these add-on values"
            )
        price = domain.addon_change_price(specs, old, {**old, **wanted}, item["period"])
        account = self.store.client_by_id(item["account"])
        if Decimal(account["balance"]) < price:
            raise ResellerError(
                "insufficient_funds",
                f"client {account['name']} has {account['balance']}, the change costs {price}",
            )
        with self.store.atomic():
            operation = self.store.add_operation(item_id, SETPARAM, {"addons": wanted}, now)
            if price:
                self.store.move_money(account["id"], -price, "addon", now, item_id, operation)
        self.run_operation(operation, now)
        return operation

    def restart(self, item_id: int, now: datetime) -> int:
        """Tools -> Running operations -> Start: run the service's failed operation again."""
        operation = self.store.latest_operation(self.item(item_id)["id"])
        if operation is None or operation["state"] != FAILED:
            state = operation["state"] if operation else "none"
            raise ResellerError(
                "not_failed", f"service {item_id}'s operation is {state}, not failed"
            )
        # A refusal is certain: the seller did nothing, so the restart sends the command again
        # rather than asking whether an earlier attempt got through.
        refused = operation["error_type"] != "unavailable"
        self.store.update_operation(
            operation["id"],
            now,
            state=RUNNING,
            attempts=0 if refused else operation["attempts"],
            failures=0,
            first_failure=None,
            next_try=stamp(now),
            error_type=None,
            error_msg=None,
        )
        self.run_operation(operation["id"], now)
        return operation["id"]

    def change_tariff(self, item_id: int, tariff: str, now: datetime) -> None:
        """Change a service's tariff; only by hand, under the manual processing module."""
        item = self.item(item_id)
        pricelist = self.tariff(tariff)
        if item["processingmodule"] != MANUAL_MODULE:
            raise ResellerError(
                "manual_module",
                f"service {item_id} cannot change tariff through the "
                "BILLmanager module (a VPS disk size cannot change automatically): switch it to "
                "the manual processing module (set_module manual), change the tariff and the "
                "seller's service by hand, then switch the module back",
            )
        self.store.update_item(item_id, pricelist=pricelist["id"])

    def set_module(self, item_id: int, module_name: str) -> None:
        """Switch a service's processing module, as admins do in `item.processingmodule`."""
        self.item(item_id)
        module_id = MANUAL_MODULE if module_name == "manual" else self.module(module_name)["id"]
        self.store.update_item(item_id, processingmodule=module_id)

    # -- the service handler -----------------------------------------------------------------

    def run_operation(self, operation_id: int, now: datetime) -> str:
        """Send an operation's command to the seller and record what became of it."""
        operation = self.store.operation(operation_id)
        if operation["state"] != RUNNING:
            return operation["state"]
        item = self.store.item(operation["item"])
        if item["processingmodule"] == MANUAL_MODULE:
            self.store.update_operation(operation_id, now, state=MANUAL)
            return MANUAL
        # One at a time per service, in the order asked: sent while an earlier one's outcome
        # is unknown, a change could be overwritten by that one's resend, or taken for done.
        earlier = [
            op
            for op in self.store.operations(item["id"])
            if op["id"] < operation_id and op["state"] == RUNNING
        ]
        if earlier:
            due = max(datetime.fromisoformat(op["next_try"]) for op in earlier)
            self.store.update_operation(operation_id, now, next_try=stamp(max(due, now)))
            return RUNNING
        module = self.store.module_by_id(item["remote_module"])
        seller = self.seller(module)
        retrying = operation["attempts"] > 0
        self.store.update_operation(operation_id, now, attempts=operation["attempts"] + 1)
        try:
            if not (retrying and self._already_done(seller, operation, item)):
                self._send(seller, module, operation, item, now)
        except SellerError as error:
            self.store.update_operation(
                operation_id, now, state=FAILED, error_type=error.type, error_msg=error.message
            )
            return FAILED
        except SellerUnavailable as error:
            return self._transport_failed(operation, error, now)
        self.crash_point("after_seller_accepted")
        with self.store.atomic():
            self.store.update_operation(
                operation_id, now, state=MANUAL, accepted=1, error_type=None, error_msg=None
            )
            self.store.add_task(operation_id, operation["kind"], now)
        if self.store.operation(operation_id)["state"] == MANUAL and self._confirmed(
            self.store.operation(operation_id), self.store.item(item["id"])
        ):
            self._complete(operation_id, now)
        return self.store.operation(operation_id)["state"]

    def _transport_failed(self, operation: dict, error: SellerUnavailable, now: datetime) -> str:
        first = (
            datetime.fromisoformat(operation["first_failure"])
            if operation["first_failure"]
            else now
        )
        failures = operation["failures"] + 1
        if domain.gives_up(first, now):
            self.store.update_operation(
                operation["id"],
                now,
                state=FAILED,
                failures=failures,
                error_type="unavailable",
                error_msg=f"gave up after 24 hours: {error.message}",
            )
            return FAILED
        self.store.update_operation(
            operation["id"],
            now,
            failures=failures,
            first_failure=stamp(first),
            next_try=stamp(now + domain.retry_delay(failures)),
            error_type="unavailable",
            error_msg=error.message,
        )
        return RUNNING

    def _send(
        self, seller: SellerClient, module: dict, operation: dict, item: dict, now: datetime
    ) -> None:
        kind, remote = operation["kind"], item["remote_id"]
        if kind == OPEN:
            self._send_order(seller, module, operation, item)
        elif kind == PROLONG:
            before = seller.service(item["itemtype"], remote).expires
            self.store.update_operation(
                operation["id"], now, params={**operation["params"], "before": day(before)}
            )
            seller.prolong(remote, self._seller_period(module, item, operation["params"]))
        elif kind == SUSPEND:
            seller.suspend(item["itemtype"], remote)
        elif kind == RESUME:
            seller.resume(item["itemtype"], remote)
        elif kind == CLOSE:
            seller.delete(item["itemtype"], remote)
        elif kind == SETPARAM:
            specs = self.store.addons(item["pricelist"])
            gone = sorted(set(operation["params"]["addons"]) - set(specs))
            if gone:
                raise SellerError(
                    "value", f"add-on {gone[0]} is no longer in the tariff (removed by a sync)"
                )
            seller.set_addons(
                item["itemtype"],
                remote,
                {
                    specs[n].remote_id: specs[n].wire(v)
                    for n, v in operation["params"]["addons"].items()
                },
            )

    def _seller_period(self, module: dict, item: dict, params: dict) -> int:
        pricelist = self.store.pricelist_by_id(item["pricelist"])
        return domain.seller_period(
            self.store.period_rules(module["id"]), pricelist["intname"], params["period"]
        )

    def _send_order(self, seller, module, operation, item) -> None:
        pricelist = self.store.pricelist_by_id(item["pricelist"])
        specs = self.store.addons(item["pricelist"])
        params = self.store.item_params(item["id"])
        remote_id = seller.order(
            item["itemtype"],
            pricelist["remote_id"],
            self._seller_period(module, item, operation["params"]),
            str(item["id"]),
            addons={
                specs[n].remote_id: specs[n].wire(v)
                for n, v in self.store.item_addons(item["id"]).items()
                if n in specs
            },
            ostempl=params.get("ostempl"),
            recipe=params.get("recipe"),
            domain=params.get("domain"),
        )
        self.crash_point("order_accepted_before_link")
        self.store.update_item(item["id"], remote_id=remote_id)

    def _already_done(self, seller: SellerClient, operation: dict, item: dict) -> bool:
        """After a transport failure: did the seller act before the reply was lost?"""
        kind, remote = operation["kind"], item["remote_id"]
        if kind == OPEN:
            if remote is not None:
                return True
            found = seller.services(item["itemtype"], remoteid=str(item["id"]))
            if found:
                self.store.update_item(item["id"], remote_id=found[0].id)
            return bool(found)
        service = seller.service(item["itemtype"], remote)
        if kind == PROLONG:
            before = operation["params"].get("before")
            return before is not None and day(service.expires) != before
        if kind == SETPARAM:
            # Only add-ons both sides still have can tell: a sync or the seller may have
            # dropped one since the change was sent.
            specs = self.store.addons(item["pricelist"])
            known = {
                n: v
                for n, v in operation["params"]["addons"].items()
                if n in specs and specs[n].remote_id in service.addons
            }
            return bool(known) and all(
                specs[n].from_wire(service.addons[specs[n].remote_id]) == v
                for n, v in known.items()
            )
        target = {SUSPEND: SUSPENDED, RESUME: ACTIVE, CLOSE: DELETED}[kind]
        return service.status == target

    def _confirmed(self, operation: dict, item: dict) -> bool:
        """Whether the reseller's own state already shows what the operation asked for."""
        kind = operation["kind"]
        if kind == OPEN:
            return item["status"] in (ACTIVE, SUSPENDED, DELETED)
        if kind == SETPARAM:
            have = self.store.item_addons(item["id"])
            later = self._later_addon_changes(operation) if operation["accepted"] else set()
            return all(
                have.get(n) == v or n in later for n, v in operation["params"]["addons"].items()
            )
        if kind == PROLONG:
            return False
        return item["status"] == {SUSPEND: SUSPENDED, RESUME: ACTIVE, CLOSE: DELETED}[kind]

    def _later_addon_changes(self, operation: dict) -> set[str]:
        """Add-ons a later change the seller accepted set again: this change was overwritten."""
        return {
            name
            for later in self.store.operations(operation["item"])
            if later["kind"] == SETPARAM and later["id"] > operation["id"] and later["accepted"]
            for name in later["params"]["addons"]
        }

    def _complete(self, operation_id: int, now: datetime) -> None:
        # The seller's word that it was done is its acceptance too, when the reply was lost.
        self.store.update_operation(
            operation_id, now, state=DONE, accepted=1, error_type=None, error_msg=None
        )
        self.store.close_tasks(operation_id, now)

    def run_due(self, now: datetime) -> list[int]:
        """Retry every running operation whose time has come; autoprolong what expires soon."""
        ran = []
        for operation_id in self.store.due_operations(now):
            self.run_operation(operation_id, now)
            ran.append(operation_id)
        self.autoprolong(now)
        return ran

    def next_due(self) -> datetime | None:
        """When the next operation retry falls due, if any."""
        return self.store.next_retry()

    def autoprolong(self, now: datetime) -> list[int]:
        """Prolong each autoprolong service that expires within a day, if its client can pay."""
        prolonged = []
        for item in self.store.expiring_autoprolong(day(now + domain.AUTOPROLONG_LEAD)):
            prolongs = [op for op in self.store.operations(item["id"]) if op["kind"] == PROLONG]
            # a failed one waits for the operator's restart: prolonging again would charge twice
            if prolongs and prolongs[-1]["state"] != DONE:
                continue
            try:
                self.prolong(item["id"], item["period"], now)
                prolonged.append(item["id"])
            except ResellerError:
                continue
        return prolonged

    # -- events ------------------------------------------------------------------------------

    def checkevent(self, module_name: str, now: datetime) -> EventReport:
        """`mgrctl -m billmgr checkevent`: fetch the module's events, store them, apply them."""
        module = self.module(module_name)
        events = self.seller(module).events()
        report = EventReport(fetched=self.store.save_events(module["id"], events, now))
        self.crash_point("events_saved")
        self.apply_events(module, now, report)
        return report

    def apply_events(self, module: dict, now: datetime, report: EventReport) -> None:
        """Apply stored events in the seller's id order, each once, in one transaction."""
        # Each service's item is looked up once, and the applied events are finished together
        # at the end of the same transaction: a poll can bring thousands of events.
        items: dict[int, dict] = {}
        applied: list[tuple[dict, int]] = []
        with self.store.atomic():
            for index, row in enumerate(self.store.pending_events(module["id"])):
                if index == 1:
                    self.crash_point("applying_events")
                item = items.get(row["remote_item"]) or self._event_item(module, row)
                if item is None:
                    self.store.mark_unmatched(row["id"])
                    report.unmatched.append(row["event_id"])
                    continue
                items[row["remote_item"]] = item
                completed = self._apply_event(item, row, now)
                if completed:
                    report.completed.append(completed)
                applied.append((row, item["id"]))
                report.applied += 1
            self.store.finish_events(applied, now)

    def _event_item(self, module: dict, row: dict) -> dict | None:
        item = self.store.item_of_remote(module["id"], row["remote_item"])
        if item is not None:
            return item
        # our own service id, as the order sent it; anything else (a seller's own purchase,
        # or junk too long or not ASCII digits) names none of ours
        remoteid = row["remoteid"]
        if remoteid.isascii() and remoteid.isdigit() and len(remoteid) <= 18:
            item = self.store.item(int(remoteid))
            if (
                item is not None
                and item["remote_module"] == module["id"]
                and (item["remote_id"] in (None, row["remote_item"]))
            ):
                self.store.update_item(item["id"], remote_id=row["remote_item"])
                return self.store.item(item["id"])
        return None

    def _apply_event(self, item: dict, row: dict, now: datetime) -> int | None:
        kind, item_id = row["type"], item["id"]
        changes = {}
        if kind in domain.STATUS_AFTER:
            changes["status"] = domain.STATUS_AFTER[kind]
        if row["expiredate"]:
            changes["expiredate"] = row["expiredate"]
        if changes:
            self.store.update_item(item_id, **changes)
        if kind == "open":
            self.store.set_ips(item_id, row["ips"])
        elif kind == "ip_add":
            self.store.add_ip(item_id, row["value"])
        elif kind == "ip_del":
            self.store.remove_ip(item_id, row["value"])
        elif kind == "addon":
            specs = self.store.addons(item["pricelist"])
            spec = specs.get(row["name"])
            value = spec.from_wire(row["value"]) if spec else row["value"]
            self.store.set_item_addon(item_id, row["name"], value)
        elif kind == "param":
            self.store.set_item_param(item_id, row["name"], row["value"])
        confirms = domain.CONFIRMS.get(kind)
        if kind == "addon":
            return self._complete_addon_changes(item_id, row["name"], value, now)
        if kind == "expire":
            return self._complete_prolongation(item, row, now)
        if kind == "close":
            # Whatever the seller accepted and has not confirmed by now never will be: an
            # order deleted before its set-up sends no `open`, a change whose event was lost
            # is past. Deleted, the service's accepted operations are over.
            for operation in self.store.operations(item_id):
                if operation["state"] == MANUAL:
                    self._complete(operation["id"], now)
        if kind in domain.STATUS_AFTER:
            # The status is what every pending change to it asked for, however many there are
            # and whichever event brings it (a retry that found the work already done, by an
            # earlier change or by the seller's staff, has no event of its own).
            completed = None
            reached = domain.STATUS_AFTER[kind]
            for operation in self.store.operations(item_id):
                if (
                    operation["state"] in (RUNNING, MANUAL)
                    and STATUS_WANTED.get(operation["kind"]) == reached
                ):
                    self._complete(operation["id"], now)
                    completed = operation["id"]
            if kind != "open":
                return completed
        operation = self.store.pending_operation(item_id, confirms) if confirms else None
        if operation:
            self._complete(operation["id"], now)
            return operation["id"]
        return None

    def _complete_prolongation(self, item: dict, row: dict, now: datetime) -> int | None:
        """Complete the prolongation an `expire` event reports: the one sent from the expiry
        before it, for the period that gives the event's expiry.

        Not simply the latest pending one: that may not have been sent yet, and a late event
        of one reconcile already finished would be taken for it.
        """
        module = self.store.module_by_id(item["remote_module"])
        for operation in self.store.operations(item["id"]):
            before = operation["params"].get("before")
            if (
                operation["kind"] != PROLONG
                or operation["state"] not in (RUNNING, MANUAL)
                or before is None
            ):
                continue
            months = self._seller_period(module, item, operation["params"])
            start = datetime.fromisoformat(before)
            if months > 0 and day(start + relativedelta(months=months)) == row["expiredate"]:
                self._complete(operation["id"], now)
                return operation["id"]
        return None

    def _complete_addon_changes(self, item_id: int, name: str, value: str, now: datetime):
        """Complete the pending add-on changes this event (`name` set to `value`) finishes.

        A change the event speaks of, that was sent, and whose every value the service now
        shows: one poll can bring several changes' events, in any order they were asked, and
        a value the service merely had before proves nothing about a change.
        """
        completed = None
        for operation in self.store.operations(item_id):
            if (
                operation["kind"] == SETPARAM
                and operation["state"] in (RUNNING, MANUAL)
                and (operation["state"] == MANUAL or operation["attempts"])
                and operation["params"]["addons"].get(name) == value
                and self._confirmed(operation, self.store.item(item_id))
            ):
                self._complete(operation["id"], now)
                completed = operation["id"]
        return completed

    def cron(self, now: datetime) -> dict[str, EventReport | str]:
        """The 5-minute cron: `checkevent` for every module, then due retries and autoprolong."""
        reports: dict[str, EventReport | str] = {}
        for module in self.store.modules():
            try:
                reports[module["name"]] = self.checkevent(module["name"], now)
            except SellerUnavailable as error:
                reports[module["name"]] = error.message
            except SellerError as error:
                reports[module["name"]] = f"{error.type}: {error.message}"
        self.run_due(now)
        return reports

    # -- service import ----------------------------------------------------------------------

    def import_services(
        self, module_name: str, itemtype: str, mask: str, now: datetime
    ) -> list[dict]:
        """The background task that lists the seller's services of a type by name mask."""
        module = self.module(module_name)
        if itemtype not in OPEN_TYPES:
            raise ResellerError(
                "value",
                f"cannot import services of type '{itemtype}'; expected one of {OPEN_TYPES}",
            )
        listed = self.seller(module).services(itemtype)
        rows = [
            {
                "processingmodule": module["id"],
                "remote_id": s.id,
                "itemtype": itemtype,
                "name": s.name,
                "remote_pricelist": s.tariff,
                "status": s.status,
                "expiredate": day(s.expires),
                "ips": ",".join(s.ips),
                "params": ",".join(f"{k}={v}" for k, v in s.params.items()),
            }
            for s in listed
            if fnmatch.fnmatchcase(s.name, mask or "*")
        ]
        self.store.record_import(module["id"], itemtype, mask, rows, now)
        return rows

    def assign(self, remote_id: int, client: str, now: datetime) -> int:
        """Assign an imported seller service to a client: copied from the seller, not charged."""
        account = self.client(client)
        module, itemtype = self._find_remote(int(remote_id))
        if self.store.item_of_remote(module["id"], int(remote_id)):
            raise ResellerError("exists", f"seller service {remote_id} is already linked")
        remote = self.seller(module).service(itemtype, int(remote_id))
        self._refuse_duplicate(remote)
        pricelist = self.store.pricelist_of_remote(module["id"], remote.tariff)
        if pricelist is None:
            self.import_tariff(module["name"], remote.tariff, now)
            pricelist = self.store.pricelist_of_remote(module["id"], remote.tariff)
        specs = self.store.addons(pricelist["id"])
        by_remote = {s.remote_id: s for s in specs.values()}
        with self.store.atomic():
            item_id = self.store.add_item(
                account=account["id"],
                pricelist=pricelist["id"],
                itemtype=itemtype,
                processingmodule=module["id"],
                remote_module=module["id"],
                remote_id=remote.id,
                period=remote.period,
                status=remote.status,
                expiredate=day(remote.expires),
                autoprolong=0,
                createdate=stamp(now),
            )
            for addon_id, raw in remote.addons.items():
                if addon_id in by_remote:
                    spec = by_remote[addon_id]
                    self.store.set_item_addon(item_id, spec.intname, spec.from_wire(raw))
            for name, value in remote.params.items():
                self.store.set_item_param(item_id, name, value)
            self.store.set_ips(item_id, remote.ips)
        return item_id

    def _find_remote(self, remote_id: int) -> tuple[dict, str]:
        """The module and type of a seller service: from the import lists, else by asking."""
        listed = self.store.listed_services(remote_id)
        if len(listed) > 1:
            raise ResellerError("value", f"seller service {remote_id} is listed by several modules")
        if listed:
            return self.store.module_by_id(listed[0]["processingmodule"]), listed[0]["itemtype"]
        for module in self.store.modules():
            for itemtype in OPEN_TYPES:
                try:
                    self.seller(module).service(itemtype, remote_id)
                except SellerError:
                    continue
                return module, itemtype
        raise ResellerError("unknown", f"no module's seller account has a service {remote_id}")

    def _refuse_duplicate(self, remote: RemoteService) -> None:
        """A seller service matching a local one (by IP, username or licence) is not assigned."""
        if remote.type in ("vds", "dedic"):
            clash = [i for ip in remote.ips for i in self.store.items_with_ip(ip)]
            what = f"IP {', '.join(remote.ips)}"
        elif remote.type == "vhost":
            clash = self.store.items_with_param("username", remote.params.get("username", ""))
            what = f"username {remote.params.get('username')}"
        else:
            clash = [
                i
                for i in self.store.items_with_param("ip", remote.params.get("ip", ""))
                if self.store.item_params(i).get("licname") == remote.params.get("licname")
            ]
            what = f"licence {remote.params.get('licname')} on {remote.params.get('ip')}"
        clash = [i for i in clash if self.store.item(i)["status"] != DELETED]
        if clash:
            raise ResellerError("exists", f"service {clash[0]} already has {what}")

    # -- reconcile ---------------------------------------------------------------------------

    def reconcile(self, module_name: str, now: datetime) -> list[str]:
        """Compare every linked service with the seller, repair the drift, report each change."""
        module = self.module(module_name)
        seller = self.seller(module)
        report, read = [], []
        # read everything first: a seller lost half-way must leave nothing half-repaired
        for item in self.store.items(module["id"]):
            if item["remote_id"] is None:
                continue
            try:
                read.append((item, seller.service(item["itemtype"], item["remote_id"])))
            except SellerError as error:
                report.append(
                    f"service {item['id']}: seller service {item['remote_id']} "
                    f"unreadable ({error.type}: {error.message})"
                )
        with self.store.atomic():
            for item, remote in read:
                report += self._repair(item, remote, now)
        return report

    def _repair(self, item: dict, remote: RemoteService, now: datetime) -> list[str]:
        item_id, changes = item["id"], []
        with self.store.atomic():
            if remote.status in domain.STATUS_NAMES and remote.status != item["status"]:
                self.store.update_item(item_id, status=remote.status)
                changes.append(
                    f"status {domain.STATUS_NAMES[item['status']]} -> "
                    f"{domain.STATUS_NAMES[remote.status]}"
                )
            if day(remote.expires) != item["expiredate"]:
                self.store.update_item(item_id, expiredate=day(remote.expires))
                changes.append(f"expiredate {item['expiredate']} -> {day(remote.expires)}")
            specs = {s.remote_id: s for s in self.store.addons(item["pricelist"]).values()}
            have = self.store.item_addons(item_id)
            for addon_id, raw in remote.addons.items():
                spec = specs.get(addon_id)
                if (
                    spec
                    and spec.type == "enumeration"
                    and raw not in map(str, (spec.item_ids or {}).values())
                ):
                    continue  # an item the tariff no longer has: the service keeps its value
                if spec and have.get(spec.intname) != spec.from_wire(raw):
                    self.store.set_item_addon(item_id, spec.intname, spec.from_wire(raw))
                    changes.append(
                        f"add-on {spec.intname} {have.get(spec.intname)} -> {spec.from_wire(raw)}"
                    )
            ips = self.store.item_ips(item_id)
            if sorted(ips) != sorted(remote.ips):
                self.store.set_ips(item_id, remote.ips)
                changes.append(f"IPs {ips} -> {remote.ips}")
            for name, value in remote.params.items():
                self.store.set_item_param(item_id, name, value)
            for operation in self.store.operations(item_id):
                if operation["state"] == MANUAL and self._reconciled(operation, remote):
                    self._complete(operation["id"], now)
                    changes.append(f"operation {operation['id']} ({operation['kind']}) done")
        return [f"service {item_id}: {change}" for change in changes]

    def _reconciled(self, operation: dict, remote: RemoteService) -> bool:
        kind = operation["kind"]
        if remote.status == DELETED:
            return True  # accepted, and nothing more will ever happen to the service
        if kind == PROLONG:
            before = operation["params"].get("before")
            return before is not None and day(remote.expires) != before
        if kind == OPEN:
            return remote.status in (ACTIVE, SUSPENDED, DELETED)
        if kind == SETPARAM:
            # The seller accepted it; an add-on it no longer shows (dropped from the tariff
            # since) cannot contradict that, the ones it shows must hold the values.
            item = self.store.item(operation["item"])
            specs = self.store.addons(item["pricelist"])
            later = self._later_addon_changes(operation)
            return all(
                name in later
                or name not in specs
                or specs[name].remote_id not in remote.addons
                or specs[name].from_wire(remote.addons[specs[name].remote_id]) == value
                for name, value in operation["params"]["addons"].items()
            )
        return remote.status == {SUSPEND: SUSPENDED, RESUME: ACTIVE, CLOSE: DELETED}[kind]


def _amount(value, what: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except Exception:
        raise ResellerError("value", f"{what}: {value!r} is not an amount") from None
    if not amount.is_finite() or isinstance(value, bool):
        raise ResellerError("value", f"{what}: {value!r} is not an amount")
    if amount < 0:
        raise ResellerError("value", f"{what}: {value!r} is negative")
    return amount
