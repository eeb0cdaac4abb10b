"""Reconcile, service import and assign: the engine reading the seller's services directly.

Reconcile repairs what lost events would have said and completes the operations the seller's
state shows done. A reconcile asked for (and the one a lost poll makes) reads every service's
form; the cron's daily one lists each type's services first (one call per type) and reads in
full only the services whose list row differs from what is held here (status, expiry, the IP
the row shows, its domain, username or licence name), that await the seller, that the list
leaves out, or whose order's reply never came. A drift the list cannot show (an add-on, a
further IP, a parameter of the form) whose event was lost waits for a reconcile asked for or a
lost poll's. Import lists a seller account's services for the operator; assign gives one
to a client, refusing any that is already the reseller's own (by the remoteid its order sent,
or by the duplicate rule of its type).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import datetime

from reseller import collector
from reseller.client import LIST_ROW_PARAMS, RemoteService
from reseller.errors import ResellerError, SellerError
from reseller.events import overwritten_by_later
from reseller.job import Job
from reseller.model import (
    ACCEPTED,
    OPEN,
    PRODUCT_TYPES,
    STATUS_NAMES,
    UNKNOWN,
    Item,
    ItemAsListed,
    Module,
    day,
    identities,
    remoteid_of_ours,
    superseded,
)
from reseller.operations import complete
from reseller.store import stamp


@dataclass
class Reading:
    """What a reconcile read of a module's services at the seller, before any is repaired."""

    module: Module
    services: list[tuple] = field(default_factory=list)  # (item, seller's service, found?)
    problems: list[str] = field(default_factory=list)


class Reconciler(Job):
    """Reading the seller's services: reconcile, service import, assign."""

    def reconcile(self, module_name: str, now: datetime) -> list[str]:
        """Compare every service of the module with the seller, repair the drift, report it."""
        return self.reconcile_module(self.engine.module(module_name), now)

    def reconcile_module(self, module: Module, now: datetime, daily: bool = False) -> list[str]:
        """Reconcile one module; `daily`, read in full only what its lists show may differ."""
        # read everything first: a seller lost half-way must leave nothing half-repaired
        reading = self.read(module, listed_first=daily)
        with self.store.atomic():
            return self.repair(reading, now)

    def read(self, module: Module, listed_first: bool = False) -> Reading:
        """Every service of the module as the seller has it (orders whose reply never came
        found by remoteid); SellerUnavailable, with nothing written, if the seller is lost.

        `listed_first`: each type's list is read first, and a service is read in full only
        where its row differs from what is held here or it awaits the seller (see above).
        """
        with collector.paused():  # thousands of items and rows, all alive until the end
            return self._read(module, listed_first)

    def _read(self, module: Module, listed_first: bool) -> Reading:
        seller = self.engine.seller(module)
        reading = Reading(module)
        items = (
            self._listed_differing(seller, module) if listed_first else self.store.items(module.id)
        )
        for item in items:
            if item.remote_id is None:
                try:
                    found = self._find_order(seller, item)
                except SellerError as error:
                    reading.problems.append(
                        f"service {item.id}: not found ({error.type}: {error.message})"
                    )
                    continue
                if found is not None:
                    reading.services.append((item, found, True))
                continue
            try:
                reading.services.append(
                    (item, seller.service(item.itemtype, item.remote_id), False)
                )
            except SellerError as error:
                reading.problems.append(
                    f"service {item.id}: seller service {item.remote_id} "
                    f"unreadable ({error.type}: {error.message})"
                )
        return reading

    def _listed_differing(self, seller, module: Module) -> list[Item]:
        """The module's services whose list row differs from what is held here, that await the
        seller, or that no list shows (a list refused, an order not linked): those to read in
        full. Each is compared as its row shows it, its add-ons and other parameters unread."""
        held = self.store.items_as_listed(module.id, LIST_ROW_PARAMS)
        awaiting = self.store.items_awaiting_seller(module.id)
        rows: dict[str, dict[int, RemoteService]] = {}  # by type, then by the seller's id
        for itemtype in sorted({i.itemtype for i in held if i.remote_id is not None}):
            try:
                listed = seller.services_as_kept(itemtype)  # only read here
            except SellerError:
                continue  # a list refused: its services are read one by one, as ever
            rows[itemtype] = {s.id: s for s in listed}
        days: dict = {}  # each expiry a list shows, as held here: a list shows few
        differing = []
        unlisted: dict = {}  # a type with no list read: none of its services' rows
        for item in held:
            row = rows.get(item.itemtype, unlisted).get(item.remote_id)
            if row is None or item.id in awaiting:
                differing.append(item.id)
                continue
            shown = days.get(row.expires, days)
            if shown is days:
                shown = days[row.expires] = day(row.expires)
            if not _row_agrees(item, row, shown):
                differing.append(item.id)
        return self.store.items_of_ids(differing)

    def repair(self, reading: Reading, now: datetime) -> list[str]:
        """Repair what a reading shows differs, in the caller's transaction; what changed."""
        report = list(reading.problems)
        for item, remote, found in reading.services:
            if found:
                if self.store.item_of_remote(reading.module.id, remote.id) is not None:
                    continue  # someone else holds that seller service: leave both alone
                self.store.update_item(item.id, remote_id=remote.id)
                report.append(f"service {item.id}: linked to seller service {remote.id}")
            report += self._repair(self.store.item(item.id), remote, now)
        return report

    def _find_order(self, seller, item: Item):
        """The seller service an order of ours made, when its reply never came back."""
        opens = [op for op in self.store.operations(item.id) if op.kind == OPEN]
        if not opens or opens[-1].outcome not in (UNKNOWN, ACCEPTED):
            return None
        listed = seller.services(item.itemtype, remoteid=str(item.id))
        found = [s for s in listed if s.remoteid == str(item.id)]
        return seller.service(item.itemtype, found[0].id) if found else None

    def _repair(self, item: Item, remote, now: datetime) -> list[str]:
        changes = []
        if remote.status in STATUS_NAMES and remote.status != item.status:
            self.store.update_item(item.id, status=remote.status)
            changes.append(f"status {item.status_name} -> {STATUS_NAMES[remote.status]}")
        if day(remote.expires) != item.expiredate:
            self.store.update_item(item.id, expiredate=day(remote.expires))
            changes.append(f"expiredate {item.expiredate} -> {day(remote.expires)}")
        plan = self.store.tariff_by_id(item.pricelist)
        by_remote = {s.remote_id: s for s in plan.addons.values()}
        for addon_id, raw in remote.addons.items():
            spec = by_remote.get(addon_id)
            if spec is None or not spec.knows_item(raw):
                continue  # not ours, or an item the tariff no longer has: the service keeps it
            value = spec.from_wire(raw)
            if item.addons.get(spec.intname) != value:
                self.store.set_item_addon(item.id, spec.intname, value)
                changes.append(f"add-on {spec.intname} {item.addons.get(spec.intname)} -> {value}")
        if sorted(item.ips) != sorted(remote.ips):
            self.store.set_ips(item.id, remote.ips)
            changes.append(f"IPs {item.ips} -> {remote.ips}")
        for name, value in remote.params.items():
            self.store.set_item_param(item.id, name, value)
        operations = self.store.operations_from_first_awaiting(item.id)
        for operation in operations:
            if not operation.awaiting_seller:
                continue
            later = overwritten_by_later(operation, operations)
            shown = (
                operation.shown_done_by(remote, plan, later) or superseded(operation, operations)
                if operation.accepted
                else operation.shown_sent_by(remote, plan)
            )
            if shown:
                complete(self.store, operation, now)
                changes.append(f"operation {operation.id} ({operation.kind}) done")
        return [f"service {item.id}: {change}" for change in changes]

    # -- service import ----------------------------------------------------------------------

    def import_services(
        self, module_name: str, itemtype: str, mask: str, now: datetime
    ) -> list[dict]:
        """The background task that lists the seller's services of a type by name mask,
        leaving out those already linked here and those this reseller ordered itself."""
        module = self.engine.module(module_name)
        if itemtype not in PRODUCT_TYPES:
            raise ResellerError(
                "value",
                f"cannot import services of type '{itemtype}'; expected one of {PRODUCT_TYPES}",
            )
        listed = self.engine.seller(module).services(itemtype)
        rows = [
            {
                "processingmodule": module.id,
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
            if fnmatch.fnmatchcase(s.name, mask or "*") and self._why_not(module, s) is None
        ]
        self.store.record_import(module.id, itemtype, mask, rows, now)
        return rows

    def assign(self, remote_id: int, client: str, now: datetime) -> int:
        """Assign an imported seller service to a client: copied from the seller, not charged."""
        account = self.engine.client(client)
        module, itemtype = self._find_remote(int(remote_id))
        remote = self.engine.seller(module).service(itemtype, int(remote_id))
        refusal = self._why_not(module, remote)
        if refusal:
            raise ResellerError("exists", refusal)
        plan = self.store.tariff_of_remote(module.id, remote.tariff)
        if plan is None:
            self.engine.import_tariff(module.name, remote.tariff, now)
            plan = self.store.tariff_of_remote(module.id, remote.tariff)
        by_remote = {s.remote_id: s for s in plan.addons.values()}
        with self.store.atomic():
            item_id = self.store.add_item(
                account=account.id,
                pricelist=plan.id,
                itemtype=itemtype,
                processingmodule=module.id,
                remote_module=module.id,
                remote_id=remote.id,
                period=remote.period,
                status=remote.status,
                expiredate=day(remote.expires),
                autoprolong=False,
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

    def _why_not(self, module: Module, remote) -> str | None:
        """Why a seller service may not become a new service here, if it may not: linked
        already, ordered by this reseller (its remoteid is one of ours, whatever became of
        that order), or the same service as one of ours by its type's duplicate rule."""
        linked = self.store.item_of_remote(module.id, remote.id)
        if linked is not None:
            return f"seller service {remote.id} is already linked to service {linked.id}"
        ours = remoteid_of_ours(remote.remoteid)
        item = self.store.item(ours) if ours is not None else None
        if item is not None and item.remote_module == module.id:
            return (
                f"seller service {remote.id} was ordered by this reseller for service {item.id} "
                f"(its remoteid is {remote.remoteid})"
            )
        theirs = identities(remote.type, remote.params, remote.ips)
        clash = self.store.items_sharing(theirs)
        if clash:
            shared = sorted(set().union(*(i.identities() for i in clash)) & theirs)
            what = ", ".join(f"{kind} {value}" for kind, value in shared)
            return f"service {clash[0].id} already has {what}"
        return None

    def _find_remote(self, remote_id: int) -> tuple[Module, str]:
        """The module and type of a seller service: from the import lists, else by asking."""
        listed = self.store.listed_services(remote_id)
        if len(listed) > 1:
            raise ResellerError("value", f"seller service {remote_id} is listed by several modules")
        if listed:
            return self.store.module_by_id(listed[0]["processingmodule"]), listed[0]["itemtype"]
        for module in self.store.modules():
            for itemtype in PRODUCT_TYPES:
                try:
                    self.engine.seller(module).service(itemtype, remote_id)
                except SellerError:
                    continue
                return module, itemtype
        raise ResellerError("unknown", f"no module's seller account has a service {remote_id}")


def _row_agrees(item: ItemAsListed, row: RemoteService, expiredate: str | None) -> bool:
    """Whether a service's list row, its expiry shown as `expiredate`, shows what is held here
    (a row shows one IP at most)."""
    ips = row.ips
    return (
        row.status == item.status
        and expiredate == item.expiredate
        and (
            (ips[0] in item.ips if len(ips) == 1 else set(ips) <= set(item.ips))
            if ips
            else not item.ips
        )
        and (not row.params or row.params.items() <= item.params.items())
    )
