"""The service handler: operations asked for (order, prolong, status changes, add-ons), sent to
the seller exactly once, retried, restarted.

Each attempt claims its operation in a transaction of its own before any call goes out, marks
it sent just before the call that changes the seller's state, and records the reply in a third;
no transaction is open while the seller is asked. An outcome left unknown is settled by looking
the work up at the seller, never by sending it again blind.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from reseller.errors import ResellerError, SellerError, SellerUnavailable
from reseller.job import Job
from reseller.model import (
    AUTOPROLONG_LEAD,
    CLOSE,
    DONE,
    FAILED,
    MANUAL,
    MANUAL_MODULE,
    OPEN,
    ORDERED,
    PROLONG,
    REFUSALS,
    RESUME,
    RUNNING,
    SETPARAM,
    SUSPEND,
    Client,
    Item,
    LifecycleError,
    Operation,
    day,
    seller_period,
)
from reseller.store import stamp

STATUS_CHANGES = (SUSPEND, RESUME, CLOSE)


class Operations(Job):
    """Asking for operations, and running them against the seller."""

    # -- asking ------------------------------------------------------------------------------

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
        ip: str | None = None,
        licname: str | None = None,
    ) -> int:
        """Charge the client, create the service and its `open` operation, and run it."""
        account = self.engine.client(client)
        plan = self.engine.tariff(tariff)
        values = plan.addon_values(addons or {})
        for param, value in (("ostempl", ostempl), ("recipe", recipe)):
            if value is not None and value not in plan.values(param):
                raise ResellerError(
                    "value",
                    f"tariff {tariff} has no {param} '{value}'; it has {plan.values(param)}",
                )
        price = plan.price_for(int(period), values)
        account.pays(price, "the order")
        params = dict(ostempl=ostempl, recipe=recipe, domain=domain_name, ip=ip, licname=licname)
        with self.store.atomic():
            item_id = self.store.add_item(
                account=account.id,
                pricelist=plan.id,
                itemtype=plan.itemtype,
                processingmodule=plan.module,
                remote_module=plan.module,
                period=int(period),
                status=ORDERED,
                autoprolong=autoprolong,
                createdate=stamp(now),
            )
            for name, value in values.items():
                self.store.set_item_addon(item_id, name, value)
            for name, value in params.items():
                if value is not None:
                    self.store.set_item_param(item_id, name, str(value))
            operation = self.store.add_operation(item_id, OPEN, {"period": int(period)}, now)
            self.store.move_money(account.id, -price, "order", now, item_id, operation)
        self.run(operation, now)
        return item_id

    def prolong(self, item_id: int, period: int, now: datetime) -> int:
        """Charge the client for another period and register the `prolong` operation."""
        operation = self._register_prolongation(self.engine.item(item_id), period, now)
        self.run(operation, now)
        return operation

    def _prolongation_price(self, item: Item, period: int) -> tuple[Decimal, Client]:
        """Another period's price and the client as read; refused if it cannot be had or paid."""
        item.changeable()
        if item.status == ORDERED:
            raise ResellerError("value", f"service {item.id} is not set up yet; prolong it later")
        plan = self.store.tariff_by_id(item.pricelist)
        price = plan.price_for(int(period), item.addons)
        client = self.store.client_by_id(item.account)
        client.pays(price, "the prolongation")
        return price, client

    def _register_prolongation(self, item: Item, period: int, now: datetime) -> int:
        """Charge the client for another period and add the `prolong` operation (not run)."""
        price, _ = self._prolongation_price(item, period)  # read before the transaction
        with self.store.atomic():
            operation = self.store.add_operation(item.id, PROLONG, {"period": int(period)}, now)
            self.store.move_money(item.account, -price, "prolong", now, item.id, operation)
        return operation

    def change_status(self, item_id: int, kind: str, now: datetime) -> int:
        """Register and run a `suspend`, `resume` or `close` (delete) operation."""
        if kind not in STATUS_CHANGES:
            raise ResellerError(
                "value", f"no status change {kind!r}; expected suspend, resume or close"
            )
        self.engine.item(item_id).changeable()
        operation = self.store.add_operation(item_id, kind, {}, now)
        self.run(operation, now)
        return operation

    def set_addons(self, item_id: int, addons: dict, now: datetime) -> int:
        """Charge the monthly increase and register the `setparam` operation."""
        item = self.engine.item(item_id).changeable()
        if not addons:
            # An empty change would be "done" by any look-up without the seller doing anything.
            raise ResellerError("value", "name at least one add-on to change")
        plan = self.store.tariff_by_id(item.pricelist)
        unknown = sorted(set(addons) - {n for n, s in plan.addons.items() if s.enabled})
        if unknown:
            raise ResellerError("unknown", f"no enabled add-on '{unknown[0]}' on this service")
        # What the service will have once the changes still pending land: the client pays
        # for a change once, however often it is asked for before its event arrives.
        old = dict(item.addons)
        for operation in self.store.operations(item_id):
            if operation.kind == SETPARAM and operation.state in (RUNNING, MANUAL):
                old.update(operation.params["addons"])
        wanted = {name: plan.addons[name].normalise(value) for name, value in addons.items()}
        # Values the service already has are not sent: a change to nothing can't be told
        # from one the seller never got, when its reply is lost.
        wanted = {name: value for name, value in wanted.items() if old.get(name) != value}
        if not wanted:
            raise ResellerError(
                "value", "the service already has (or is being given) these add-on values"
            )
        price = plan.change_price(old, {**old, **wanted}, item.period)
        account = self.store.client_by_id(item.account)
        account.pays(price, "the change")
        with self.store.atomic():
            operation = self.store.add_operation(item_id, SETPARAM, {"addons": wanted}, now)
            if price:
                self.store.move_money(account.id, -price, "addon", now, item_id, operation)
        self.run(operation, now)
        return operation

    def restart(self, item_id: int, now: datetime) -> int:
        """Tools -> Running operations -> Start: run the service's failed operation again.

        A refusal proved the seller did nothing, so the command is sent again; an operation
        that gave up with its outcome unknown is looked up first.
        """
        operation = self.store.latest_operation(self.engine.item(item_id).id)
        if operation is None or operation.state != FAILED:
            state = operation.state if operation else "none"
            raise ResellerError(
                "not_failed", f"service {item_id}'s operation is {state}, not failed"
            )
        self.store.save_operation(operation.restart(now))
        self.run(operation.id, now)
        return operation.id

    def change_tariff(self, item_id: int, tariff: str, now: datetime) -> None:
        """Change a service's tariff; only by hand, under the manual processing module."""
        item = self.engine.item(item_id)
        plan = self.engine.tariff(tariff)
        if not item.manual:
            raise ResellerError(
                "manual_module",
                f"service {item_id} cannot change tariff through the "
                "BILLmanager module (a VPS disk size cannot change automatically): switch it to "
                "the manual processing module (set_module manual), change the tariff and the "
                "seller's service by hand, then switch the module back",
            )
        self.store.update_item(item_id, pricelist=plan.id)

    def set_module(self, item_id: int, module_name: str) -> None:
        """Switch a service's processing module, as admins do in `item.processingmodule`."""
        self.engine.item(item_id)
        module_id = MANUAL_MODULE if module_name == "manual" else self.engine.module(module_name).id
        self.store.update_item(item_id, processingmodule=module_id)

    # -- the retry job -----------------------------------------------------------------------

    def run_due(self, now: datetime) -> list[int]:
        """Attempt every running operation whose time has come; autoprolong what expires soon."""
        ran = self.retry(now)
        self.autoprolong(now)
        return ran

    def retry(self, now: datetime) -> list[int]:
        """Attempt every running operation whose time has come (a retry, or a lapsed claim)."""
        ran = []
        for operation_id in self.store.due_operations(now):
            self.run(operation_id, now)
            ran.append(operation_id)
        return ran

    def next_due(self) -> datetime | None:
        """When an attempt may next start on a running operation (a retry or a lapsed claim)."""
        return self.store.next_due()

    def autoprolong(self, now: datetime) -> list[int]:
        """Prolong each autoprolong service that expires within a day, if its client can pay.

        Once per expiry, however many engines run the job at once: which services need a
        prolongation is decided and their prolongations registered in one transaction, so no
        other engine's autoprolong can register one between this one's look and its write.
        """
        registered = []
        with self.store.atomic():
            for item in self.store.items_of_ids(self._awaiting_autoprolong(now)):
                self.crash_point("autoprolong_decided")
                try:
                    price, client = self._prolongation_price(item, item.period)
                except ResellerError:
                    continue
                # the operation and its charge in this transaction, the client as it read it,
                # with no savepoint of their own: nothing they raise is caught, so the whole
                # transaction stands or falls with them
                params = {"period": int(item.period)}
                operation = self.store.add_operation(item.id, PROLONG, params, now)
                self.store.move_money_of(client, -price, "prolong", now, item.id, operation)
                registered.append((item.id, operation))
        for _, operation in registered:
            self.run(operation, now)
        return [item_id for item_id, _ in registered]

    def _awaiting_autoprolong(self, now: datetime) -> list[int]:
        """Autoprolong services expiring within a day that no prolongation covers yet: one
        under way (or failed, waiting for the operator's restart) covers this expiry, and
        prolonging again would charge twice."""
        return self.store.awaiting_autoprolong(day(now + AUTOPROLONG_LEAD))

    def autoprolong_due(self, now: datetime) -> bool:
        """Whether autoprolong at `now` would prolong anything (it asks the seller nothing to
        refuse one): a service its client cannot pay for waits for a top-up, not a tick."""
        # read one by one: the first a client can pay answers, and a month's thousands of
        # services expiring on one day are read in full by the autoprolong itself
        for item_id in self._awaiting_autoprolong(now):
            item = self.store.item(item_id)
            try:
                self._prolongation_price(item, item.period)
            except ResellerError:
                continue
            return True
        return False

    # -- one attempt -------------------------------------------------------------------------

    def run(self, operation_id: int, now: datetime) -> str:
        """Attempt an operation if it may go now; the state it is in afterwards."""
        claimed = self._claim(operation_id, now)
        if claimed is None:
            return self.store.operation(operation_id).state
        operation, item = claimed
        module = self.store.module_by_id(item.remote_module)
        seller = self.engine.seller(module)
        if operation.must_look_up:
            try:
                shown = self._look_up(seller, operation, item, now)
            except (SellerError, SellerUnavailable) as error:
                # a look-up refused or unanswered settles nothing
                return self._record(operation, operation.reply_unknown(_why(error), now), item, now)
            if shown is not None:
                return self._record(operation, shown, item, now)
        try:
            operation = self._mark_sent(seller, operation, item, now)
        except Settled:
            return self.store.operation(operation.id).state
        except LocalRefusal as refusal:
            refused = operation.refuse(refusal.type, refusal.message, now, sent=False)
            return self._record(operation, refused, item, now)
        except (SellerError, SellerUnavailable) as error:  # a read before sending: nothing sent
            return self._record(operation, operation.reply_unknown(_why(error), now), item, now)
        try:
            remote_id = self._send(seller, module, operation, item)
        except SellerError as error:
            if error.type in REFUSALS:
                refused = operation.refuse(error.type, error.message, now)
                return self._record(operation, refused, item, now)
            return self._record(operation, operation.reply_unknown(_why(error), now), item, now)
        except SellerUnavailable as error:
            return self._record(operation, operation.reply_unknown(error.message, now), item, now)
        if operation.kind == OPEN:
            self.crash_point("order_accepted_before_link")
        self.crash_point("after_seller_accepted")
        return self._record(operation, operation.accept(now), item, now, remote_id)

    def _claim(self, operation_id: int, now: datetime) -> tuple[Operation, Item] | None:
        """Claim the operation for this engine in one transaction, if it may go now."""
        with self.store.atomic():
            operation = self.store.operation(operation_id)
            if operation is None or not operation.claimable(now):
                return None
            item = self.store.item(operation.item)
            if item.manual:
                self.store.save_operation(operation.hold_by_hand(now), was=operation)
                return None
            # One at a time per service, in the order asked: sent while an earlier one's
            # outcome is unknown, a change could be overwritten by that one's retry.
            earlier = self.store.earlier_running(operation)
            if earlier:
                due = max(op.due_at() or now for op in earlier)
                self.store.save_operation(operation.wait_behind(due, now), was=operation)
                return None
            claimed = operation.claim(self.owner, now)
            self.store.save_operation(claimed, was=operation)
        return claimed, item

    def _record(
        self,
        was: Operation,
        operation: Operation,
        item: Item,
        now: datetime,
        remote_id: int | None = None,
    ) -> str:
        """Write the attempt's end (`operation`, from `was` as this engine last wrote it), if
        this engine still holds the claim: an event, reconcile or another process may have
        settled the operation meanwhile, and then it stands."""
        with self.store.atomic():
            if not self.store.save_operation(operation, owner=self.owner, was=was):
                return self.store.operation(operation.id).state
            if remote_id is not None:
                self._link(item, remote_id)
            if operation.accepted:  # the seller took it: its task opens (and closes if done)
                self.store.add_task(operation.id, operation.kind, now)
            if operation.state == DONE:
                self.store.close_tasks(operation.id, now)
        return operation.state

    def _link(self, item: Item, remote_id: int) -> None:
        other = self.store.item_of_remote(item.remote_module, remote_id)
        if other is not None and other.id != item.id:
            raise LifecycleError(
                f"seller service {remote_id} is already linked to service {other.id}"
            )
        self.store.update_item(item.id, remote_id=remote_id)

    def _look_up(self, seller, operation: Operation, item: Item, now: datetime) -> Operation | None:
        """The operation settled by what the seller shows, or None if it shows nothing of it.

        A look-up reads the seller's service as a reconcile does, so the work shown done is
        the seller's word (`done`): no event may ever come for it (a resume of a service
        already active). An order found but not yet set up is only accepted.
        """
        plan = self.store.tariff_by_id(item.pricelist)
        if operation.kind == OPEN and item.remote_id is None:
            found = [
                s
                for s in seller.services(item.itemtype, remoteid=str(item.id))
                if s.remoteid == str(item.id)
            ]
            if not found:
                return None
            with self.store.atomic():
                self._link(item, found[0].id)
            service = found[0]
        else:
            service = seller.service(item.itemtype, item.remote_id)
        if operation.kind == OPEN:  # it exists: ordered; set up or not is for its status to say
            done = operation.shown_done_by(service, plan)
            return operation.confirm(now) if done else operation.accept(now)
        if not operation.shown_sent_by(service, plan):
            return None
        return operation.confirm(now)

    def _mark_sent(self, seller, operation: Operation, item: Item, now: datetime) -> Operation:
        """`send`: the operation marked sent (with what a later look-up needs), committed
        before its call goes out."""
        extra = {}
        if operation.kind == SETPARAM:
            plan = self.store.tariff_by_id(item.pricelist)
            gone = sorted(set(operation.params["addons"]) - set(plan.addons))
            if gone:
                raise LocalRefusal(
                    "value", f"add-on {gone[0]} is no longer in the tariff (removed by a sync)"
                )
        if operation.kind == PROLONG:
            # the expiry the seller had before: how a look-up later tells the work was done
            extra["before"] = day(seller.service(item.itemtype, item.remote_id).expires)
        sent = operation.send(now, **extra)
        if not self.store.save_operation(sent, owner=self.owner, was=operation):
            raise Settled(operation.id)
        return sent

    def _send(self, seller, module, operation: Operation, item: Item) -> int | None:
        """The operation's command to the seller; an order's new service id."""
        kind, remote = operation.kind, item.remote_id
        plan = self.store.tariff_by_id(item.pricelist)
        period = seller_period(module.rules, plan.intname, operation.params.get("period", 0))
        if kind == OPEN:
            params = item.params
            return seller.order(
                item.itemtype,
                plan.remote_id,
                period,
                str(item.id),
                addons=plan.wire_addons({n: v for n, v in item.addons.items() if n in plan.addons}),
                ostempl=params.get("ostempl"),
                recipe=params.get("recipe"),
                domain=params.get("domain"),
                ip=params.get("ip"),
                licname=params.get("licname"),
            )
        if kind == PROLONG:
            seller.prolong(remote, period)
        elif kind == SUSPEND:
            seller.suspend(item.itemtype, remote)
        elif kind == RESUME:
            seller.resume(item.itemtype, remote)
        elif kind == CLOSE:
            seller.delete(item.itemtype, remote)
        elif kind == SETPARAM:
            seller.set_addons(item.itemtype, remote, plan.wire_addons(operation.params["addons"]))
        return None


class LocalRefusal(ResellerError):
    """The engine's own refusal of an attempt, before anything is sent."""


class Settled(Exception):
    """The operation was settled by someone else (its event, reconcile) during the attempt."""


def _why(error) -> str:
    return (
        error.message if isinstance(error, SellerUnavailable) else f"{error.type}: {error.message}"
    )


def complete(store, operation: Operation, now: datetime) -> Operation:
    """`confirmed by event` or reconcile of `operation` as this transaction read it; tasks close."""
    done = operation.confirm(now)
    store.save_operation(done, was=operation)
    store.close_tasks(operation.id, now)
    return done
