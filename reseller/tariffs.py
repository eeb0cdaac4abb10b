"""Tariffs: import from the seller, prices converted; `pricelist.sync`; the operator's prices."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from reseller.client import RemoteAddon, RemoteTariff
from reseller.errors import ResellerError
from reseller.job import Job
from reseller.model import (
    CENT,
    MANUAL,
    SETPARAM,
    UNIT_PRICE,
    AddonSpec,
    Module,
    Tariff,
    amount,
    convert,
)
from reseller.operations import complete


class Tariffs(Job):
    """The reseller's tariff plans, each imported from one seller tariff."""

    def rate(self, currency: str) -> Decimal:
        """What one unit of `currency` is in the main currency; `no_rate` when unknown."""
        main = self.store.setting("currency")
        if not main:
            raise ResellerError("no_rate", "no main currency is set, so prices cannot be imported")
        if currency == main:
            return Decimal(1)
        rate = self.store.rates().get(currency)
        if rate is None:
            raise ResellerError("no_rate", f"no exchange rate from {currency} to {main}")
        return rate

    def remote_tariff(self, module: Module, remote_id: int) -> RemoteTariff:
        found = [t for t in self.engine.seller(module).tariffs(remote_id) if t.id == remote_id]
        if not found:
            raise ResellerError("unknown", f"the seller has no tariff {remote_id}")
        return found[0]

    def import_tariff(self, module_name: str, remote_id: int, now: datetime) -> str:
        """Import a seller tariff as `<seller id>-<intname>` with converted prices."""
        module = self.engine.module(module_name)
        remote = self.remote_tariff(module, int(remote_id))
        intname = f"{remote.id}-{remote.intname}"
        if self.store.tariff(intname):
            raise ResellerError("exists", f"tariff {intname} is already imported")
        rate = self.rate(remote.currency)
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
            pricelist = self.store.add_tariff(
                intname, remote.name, remote.type, module.id, remote.id, remote.currency
            )
            self.store.set_prices(
                pricelist, {p: convert(c, rate) for p, c in remote.prices.items()}
            )
            for addon in remote.addons.values():
                self.store.add_addon(pricelist, local_addon(addon, rate, enabled=True))
            for param, values in (("ostempl", remote.ostempl), ("recipe", remote.recipes)):
                for value in values:
                    self.store.assign_value(module.id, pricelist, param, value)
        return intname

    def tariff(self, intname: str) -> Tariff:
        plan = self.store.tariff(intname)
        if plan is None:
            raise ResellerError("unknown", f"no tariff '{intname}'")
        return plan

    def sync_tariff(self, intname: str, now: datetime) -> list[str]:
        """`pricelist.sync`: follow the seller's add-ons, enumerations and templates."""
        plan = self.tariff(intname)
        module = self.store.module_by_id(plan.module)
        remote = self.remote_tariff(module, plan.remote_id)
        rate = self.rate(remote.currency)
        changes: list[str] = []
        with self.store.atomic():
            for param, values in (("ostempl", remote.ostempl), ("recipe", remote.recipes)):
                have = plan.values(param)
                for value in values:
                    if value not in have:
                        self.store.assign_value(module.id, plan.id, param, value)
                        changes.append(f"{param} {value} added")
                for value in have:
                    if value not in values:
                        self.store.unassign_value(plan.id, param, value)
                        changes.append(f"{param} {value} removed")
            self.crash_point("syncing_tariff")
            for name, addon in remote.addons.items():
                if name not in plan.addons:
                    self.store.add_addon(plan.id, local_addon(addon, rate, enabled=False))
                    changes.append(f"add-on {name} created, disabled")
                elif addon.type == "enumeration":
                    changes += self._sync_items(plan, plan.addons[name], addon, rate)
            for name in plan.addons:
                if name not in remote.addons:
                    self.store.delete_addon(plan.id, name)
                    changes.append(f"add-on {name} deleted")
            dropped = set(plan.addons) - set(remote.addons)
            if dropped:
                self._end_changes_to_dropped_addons(plan.id, dropped, now)
            # An event for an item (or add-on) not known here yet kept the seller's item id;
            # now that the item is known, services hold its name like every other value.
            for name, addon in remote.addons.items():
                for item, (item_id, _) in addon.items.items():
                    self.store.rename_addon_value(plan.id, name, str(item_id), item)
        return changes

    def _end_changes_to_dropped_addons(self, pricelist_id: int, dropped: set, now) -> None:
        """Accepted add-on changes only to add-ons the seller dropped: the seller's tariff says
        they are gone, so no event will ever confirm them; they are over."""
        for item in self.store.items_of_tariff(pricelist_id):
            for operation in self.store.operations(item.id):
                if (
                    operation.kind == SETPARAM
                    and operation.state == MANUAL
                    and set(operation.params["addons"]) <= dropped
                ):
                    complete(self.store, operation, now)

    def _sync_items(self, plan: Tariff, spec: AddonSpec, addon: RemoteAddon, rate) -> list[str]:
        changes = []
        for item, (remote_id, price) in addon.items.items():
            if item not in (spec.items or {}):
                self.store.add_enum_item(
                    plan.id, spec.intname, item, remote_id, convert(price, rate)
                )
                changes.append(f"{spec.intname} item {item} created")
        for item in spec.items or {}:
            if item not in addon.items:
                self.store.delete_enum_item(plan.id, spec.intname, item)
                changes.append(f"{spec.intname} item {item} deleted")
        return changes

    def set_price(
        self, intname: str, prices: dict | None = None, addons: dict | None = None
    ) -> None:
        """The operator's own prices: per period, and per add-on (per item for enumerations)."""
        plan = self.tariff(intname)
        for name in addons or {}:
            if name not in plan.addons:
                raise ResellerError("unknown", f"tariff {intname} has no add-on '{name}'")
        new_prices = {}
        for period, price in (prices or {}).items():
            value = amount(price, f"price of period {period}")
            try:
                new_prices[int(str(period))] = value
            except ValueError:
                raise ResellerError("value", f"period {period!r} is not a period code") from None
        with self.store.atomic():
            self.store.set_prices(plan.id, new_prices)
            for name, price in (addons or {}).items():
                if isinstance(price, dict):
                    for item, item_price in price.items():
                        if item not in (plan.addons[name].items or {}):
                            raise ResellerError("unknown", f"add-on {name} has no item '{item}'")
                        self.store.set_enum_item_price(
                            plan.id, name, item, amount(item_price, f"{name}.{item}")
                        )
                else:
                    self.store.set_addon_price(plan.id, name, amount(price, name))


def local_addon(addon: RemoteAddon, rate: Decimal, enabled: bool) -> AddonSpec:
    """A seller add-on as the local tariff keeps it, its prices converted."""
    step = UNIT_PRICE if addon.type == "integer" else CENT
    return AddonSpec(
        addon.intname,
        addon.type,
        addon.id,
        enabled,
        addon.included,
        addon.max,
        convert(addon.price, rate, step),
        {n: convert(p, rate) for n, (_, p) in addon.items.items()},
        {n: i for n, (i, _) in addon.items.items()},
    )
