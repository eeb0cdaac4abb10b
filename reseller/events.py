"""`checkevent`: poll a module's event feed, store what came, apply it in the seller's order.

The poll is write-ahead: a mark that a read of the feed is in flight is committed before the
seller is asked, and the events and the end of the mark commit together. The seller's feed
empties on read, so a mark found open (the engine died after the read, the reply was lost or
timed out) means events may be gone: the next poll reconciles the module first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from reseller.errors import SellerError
from reseller.job import Job
from reseller.model import (
    CLOSE,
    OPEN,
    POLL_LEASE,
    PROLONG,
    REFUSALS,
    SETPARAM,
    STATUS_AFTER,
    ItemAsPolled,
    Module,
    Operation,
    StoredEvent,
    Tariff,
    remoteid_of_ours,
    seller_period,
    superseded,
)
from reseller.operations import complete

APPLY_CHUNK = 2_000  # events whose services one query reads while a poll is applied


@dataclass
class EventReport:
    """What one `checkevent` did: events fetched and applied (and to which services), kept
    unmatched, operations done, and what a reconcile first repaired (when the last poll had
    been lost)."""

    fetched: int = 0
    applied: int = 0
    applied_to: list[tuple[int, StoredEvent]] = field(default_factory=list)  # (service, event)
    unmatched: list[int] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)
    reconciled: list[str] | None = None
    busy: bool = False

    def summary(self) -> str:
        if self.busy:
            return "another engine is polling this module; skipped"
        line = (
            f"{self.fetched} fetched, {self.applied} applied, {len(self.unmatched)} kept unmatched"
        )
        if self.reconciled is not None:
            line += f"; the last poll was lost, reconciled first ({len(self.reconciled)} repairs)"
        return line


class Events(Job):
    """The event mechanism: the feed polled every 5 minutes, each event applied once."""

    def checkevent(self, module_name: str, now: datetime) -> EventReport:
        """`mgrctl -m billmgr checkevent`: fetch the module's events, store them, apply them."""
        return self.poll(self.engine.module(module_name), now)

    def poll(self, module: Module, now: datetime) -> EventReport:
        """`checkevent` of a module already read (the cron's tick reads them all first)."""
        report = EventReport()
        mark = self.store.open_poll(module.id, self.owner, now, POLL_LEASE)
        if mark is None:
            report.busy = True
            return report
        # Found open, the last poll may have lost events: the module's services are read first
        # and repaired with this poll's events, in one transaction after every read, so a
        # seller lost half-way changes nothing.
        reading = self.engine.reconciler.read(module) if mark == "reconcile" else None
        if reading is not None:
            self.store.renew_poll(module.id, self.owner, now, POLL_LEASE)
        try:
            events = self.engine.seller(module).events()
        except SellerError as error:
            if error.type in REFUSALS and reading is None:  # refused before reading anything
                self.store.close_poll(module.id, [], now)
            raise
        if reading is None:
            report.fetched = self.store.close_poll(module.id, events, now)
        else:  # the repairs and the mark's end stand or fall together
            with self.store.atomic():
                report.reconciled = self.engine.reconciler.repair(reading, now)
                report.fetched = self.store.close_poll(module.id, events, now)
        del events  # stored now: a poll of 100,000 must not hold them twice while applying
        self.crash_point("events_saved")
        self.apply_events(module, now, report)
        return report

    def apply_events(self, module: Module, now: datetime, report: EventReport) -> None:
        """Apply stored events in the seller's id order, each once, in one transaction."""
        # A poll can bring thousands of events: the services they name are read a chunk of
        # events at a time (one query each, not one per event, nor 100,000 services held at
        # once), their status and expiry kept current here, and the applied events are
        # finished together at the end of the same transaction. A service read again in a
        # later chunk is read as this transaction left it.
        if not report.fetched and not self.store.has_pending_events(module.id):  # most polls
            return
        applied: list[tuple[StoredEvent, int]] = []
        self._plans: dict[int, Tariff] = {}  # no event changes a tariff: read once a poll
        with self.store.atomic():
            pending = self.store.pending_events(module.id)
            if not pending:  # another process applied them since
                return
            self._awaiting: set[int] | None = None
            items: dict[int, ItemAsPolled] = {}
            for index, event in enumerate(pending):
                if index == 1:
                    self.crash_point("applying_events")
                if index % APPLY_CHUNK == 0:  # the services of the next events, read together
                    chunk = pending[index : index + APPLY_CHUNK]
                    items = self.store.items_of_remotes(module.id, {e.remote_item for e in chunk})
                    self._chunk, self._ahead = items, None
                item = items.get(event.remote_item) or self._item_by_remoteid(module, event)
                if item is None:
                    self.store.mark_unmatched(event.id)
                    report.unmatched.append(event.event_id)
                    continue
                items[event.remote_item] = item
                report.completed += self._apply(module, item, event, now)
                applied.append((event, item.id))
                report.applied_to.append((item.id, event))
                report.applied += 1
            self.store.finish_events(applied, now)

    def _plan(self, item: ItemAsPolled) -> Tariff:
        """The service's tariff, read once in a poll."""
        if item.pricelist not in self._plans:
            self._plans[item.pricelist] = self.store.tariff_by_id(item.pricelist)
        return self._plans[item.pricelist]

    def _operations(self, item: ItemAsPolled) -> list[Operation]:
        """`Store.operations_from_first_awaiting`, for a chunk's services read together."""
        # no query at all for a service that has nothing awaiting the seller
        if self._awaiting is None:
            # Applying an event completes operations but starts none: only the services that
            # had one awaiting the seller when the first was looked at can have any.
            self._awaiting = self.store.items_awaiting_seller(item.remote_module)
        if item.id not in self._awaiting:
            return []
        if self._ahead is None:
            # A service's operations change only by its own events, so those of the chunk's
            # services, read when the first is asked for, are each as read until asked for:
            # taken once, a service's are read again when asked again.
            self._ahead = self.store.operations_from_first_awaiting_of(
                [i.id for i in self._chunk.values() if i.id in self._awaiting]
            )
        operations = self._ahead.pop(item.id, None)
        if operations is None:
            operations = self.store.operations_from_first_awaiting(item.id)
        if not operations:
            self._awaiting.discard(item.id)
        return operations

    def _item_by_remoteid(self, module: Module, row: StoredEvent) -> ItemAsPolled | None:
        """Our service an event names by the remoteid our order sent, when none has the
        seller's id yet (an event that came before the order's reply, or instead of a lost
        one): it is linked to that id here."""
        ours = remoteid_of_ours(row.remoteid)
        item = self.store.item_as_polled(ours) if ours is not None else None
        if item is None or item.remote_module != module.id or item.remote_id is not None:
            return None  # a seller's own purchase, another billing's, or linked elsewhere
        self.store.update_item(item.id, remote_id=row.remote_item)
        item.remote_id = row.remote_item
        return item

    def _apply(
        self, module: Module, item: ItemAsPolled, row: StoredEvent, now: datetime
    ) -> list[int]:
        """Apply one event to `item` (its status and expiry kept current); what it completes."""
        kind = row.type
        changes = {}  # only what differs: most events repeat the expiry the service has
        if kind in STATUS_AFTER and STATUS_AFTER[kind] != item.status:
            changes["status"] = STATUS_AFTER[kind]
        if row.expiredate and row.expiredate != item.expiredate:
            changes["expiredate"] = row.expiredate
        if changes:
            self.store.update_item(item.id, **changes)
            item.status = changes.get("status", item.status)
            item.expiredate = changes.get("expiredate", item.expiredate)
        if kind == "open":
            self.store.set_ips(item.id, row.ips)
        elif kind == "ip_add":
            self.store.add_ip(item.id, row.value)
        elif kind == "ip_del":
            self.store.remove_ip(item.id, row.value)
        elif kind == "addon":
            spec = self._plan(item).addons.get(row.name)
            value = spec.from_wire(row.value) if spec else row.value
            self.store.set_item_addon(item.id, row.name, value)
            return self._complete_addon_changes(item, row.name, value, now)
        elif kind == "param":
            self.store.set_item_param(item.id, row.name, row.value)
        if kind == "expire":
            return self._complete_prolongation(module, item, row, now)
        if kind in STATUS_AFTER:
            return self._complete_status(item, kind, now)
        return []

    def _complete_status(self, item: ItemAsPolled, kind: str, now: datetime) -> list[int]:
        """A status event completes every change awaiting the seller that asks for that
        status, whichever event brings it (a retry that found the work already done, by an
        earlier change or the seller's staff, has no event of its own), and the accepted change
        it presupposes (`Operation.presupposed_by`); a deletion ends every change it can end
        (`Operation.ended_by_deletion`)."""
        reached = STATUS_AFTER[kind]
        completed = []
        operations = self._operations(item)
        for operation in operations:
            if not operation.awaiting_seller:
                continue
            if (
                (kind == CLOSE and operation.ended_by_deletion())
                or operation.wants_status() == reached
                or (operation.kind == OPEN and kind == OPEN)
                or (operation.accepted and superseded(operation, operations))
                or operation.presupposed_by(kind)
            ):
                complete(self.store, operation, now)
                completed.append(operation.id)
        return completed

    def _complete_prolongation(
        self, module: Module, item: ItemAsPolled, row: StoredEvent, now: datetime
    ) -> list[int]:
        """Complete the prolongation an `expire` event reports: the one sent from the expiry
        before it, for the period that gives the event's expiry (not simply the latest one: a
        late event of one that reconcile already finished would be taken for it)."""
        intname = self._plan(item).intname
        for operation in self._operations(item):
            if operation.kind != PROLONG:
                continue
            months = seller_period(module.rules, intname, operation.params["period"])
            if operation.completes_prolongation(row.expiredate, months):
                complete(self.store, operation, now)
                return [operation.id]
        return []

    def _complete_addon_changes(
        self, item: ItemAsPolled, name: str, value: str, now: datetime
    ) -> list[int]:
        """Complete the add-on changes this event (`name` set to `value`) finishes: a change
        that names it, was sent, and whose every value the service now shows. One poll can
        bring several changes' events, in any order they were asked."""
        operations = self._operations(item)
        completed = []
        shown: dict[str, str] | None = None
        for operation in operations:
            if (
                operation.kind != SETPARAM
                or not operation.awaiting_seller
                or operation.params["addons"].get(name) != value
            ):
                continue
            if shown is None:  # the add-ons as this poll's events so far left them
                shown = self.store.item_addons(item.id)
            later = overwritten_by_later(operation, operations)
            if all(shown.get(n) == v or n in later for n, v in operation.params["addons"].items()):
                complete(self.store, operation, now)
                completed.append(operation.id)
        return completed


def overwritten_by_later(operation, operations) -> set[str]:
    """Add-ons that a later change the seller accepted set again: this change's value for
    them was overwritten, so the service showing another value proves nothing."""
    return {
        name
        for later in operations
        if later.kind == SETPARAM and later.id > operation.id and later.accepted
        for name in later.params["addons"]
    }
