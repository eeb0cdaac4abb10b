"""The named invariants of the scenario format, shared by the runner and the property tests.

Each takes a `Harness` and returns the problems it found (an empty list when it holds). The
seller is read through the harness's `SellerSide` (`h.side`), as any user's test reads it; a
seller tariff's add-on definitions, which no `SellerSide` call shows, from its model.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, time, timedelta
from decimal import Decimal

from reseller.model import POLL_LEASE, SELLER_DEBITS, STATUS_NAMES, UNKNOWN


def seller_services(h) -> dict[int, dict]:
    """The seller's services by id, as the seller side shows them."""
    return {service["id"]: service for service in h.side.services()}


def money_conserved(h) -> list[str]:
    """Every debit belongs to one accepted operation or direct purchase; only top-ups add money."""
    problems = []
    ledger = h.side.ledger()
    for login, start in h.initial_seller_balances.items():  # the world's are all there are
        moved = sum((e["amount"] for e in ledger if e["account"] == login), Decimal(0))
        balance = h.side.balance(login)
        if start + moved != balance:
            problems.append(
                f"seller account {login}: {start} + ledger {moved} != balance {balance}"
            )
    for entry in ledger:
        reason = entry["reason"]
        if entry["amount"] < 0 and reason not in (*SELLER_DEBITS, "create_service"):
            problems.append(f"seller debit {entry['id']} has no purchase behind it ({reason})")
        if entry["amount"] > 0 and reason != "topup":
            problems.append(f"seller credit {entry['id']} is not a top-up ({reason})")
    debits = Counter((e["service"], e["reason"]) for e in ledger if e["reason"] in SELLER_DEBITS)
    services = seller_services(h)
    # Operations by the reseller's service id, which the seller keeps as the remoteid: a
    # running one may already have been done by the seller, its reply lost.
    # An operation whose outcome is unknown (its reply lost, or given up on) may be one.
    accepted, in_flight = Counter(), Counter()
    for op in h.store.operations():
        if op.accepted:
            accepted[(str(op.item), op.kind)] += 1
        elif op.outcome == UNKNOWN:
            in_flight[(str(op.item), op.kind)] += 1
    for (service, reason), count in debits.items():
        kind = SELLER_DEBITS[reason]
        remote = services.get(service)
        if remote is None or not remote["remoteid"]:
            continue  # ordered on the seller by someone else than this reseller
        key = (remote["remoteid"], kind)
        done, pending = accepted[key], in_flight[key]
        if not done <= count <= done + pending:
            problems.append(
                f"seller service {service}: {count} {reason} debit(s) but {done} accepted "
                f"and {pending} running {kind} operation(s)"
            )
    expenses = h.store.expenses()
    items = {item.id for item in h.store.items()}
    for name, start in h.initial_client_balances.items():
        client = h.store.client(name)
        total = sum((e.amount for e in expenses if e.account == client.id), Decimal(0))
        if start + total != client.balance:
            problems.append(
                f"client {name}: {start} + expenses {total} != balance {client.balance}"
            )
    charges, orders = Counter(), Counter()
    for expense in expenses:
        if expense.amount > 0 and expense.reason != "topup":
            problems.append(f"client credit {expense.id} is not a top-up")
        if expense.amount < 0:
            if expense.item not in items:
                problems.append(f"client charge {expense.id} belongs to no service")
            charges[expense.operation] += 1
            if expense.reason == "order":
                orders[expense.item] += 1
    for operation, count in charges.items():
        if count > 1:
            problems.append(f"operation {operation} was charged {count} times")
    for item, count in orders.items():
        if count > 1:
            problems.append(f"service {item} was charged for its order {count} times")
    return problems


def one_remote_per_service(h) -> list[str]:
    """No reseller service links two seller services, and none was ordered twice at the seller."""
    problems = []
    links = Counter((i.remote_module, i.remote_id) for i in h.store.items() if i.remote_id)
    for (_module, remote), count in links.items():
        if count > 1:
            problems.append(f"seller service {remote} is linked to {count} reseller services")
    ordered = Counter(s["remoteid"] for s in h.side.services() if s["remoteid"])
    for remoteid, count in ordered.items():
        if count > 1:
            problems.append(f"reseller service {remoteid} was ordered {count} times at the seller")
    return problems


def events_applied_once(h) -> list[str]:
    """No seller event changed reseller state more than once."""
    applied = Counter((e.module, e.event_id) for e in h.store.applied_events())
    return [
        f"event {event} applied {count} times" for (_, event), count in applied.items() if count > 1
    ]


def drain(h) -> None:
    """Clear faults, retry what is pending, poll every feed until empty, reconcile lost events.

    A poll another engine process holds (it died mid-poll, its lease still runs) is waited
    out, as the clock would: its next poll then reconciles first.
    """
    h.side.clear_faults()
    for _ in range(200):
        due = h.engine.next_due()
        if due is None:
            break
        h.advance(max(due, h.now))
    for module in h.store.modules():
        for _ in range(50):
            report = h.engine.checkevent(module.name, h.now)
            if report.busy:
                h.advance(h.now + POLL_LEASE)
                continue
            if not h.side.account(module.login)["pending_events"]:
                break
        if h.drop_events_used or h.side.faults_used().get("drop_events"):
            h.engine.reconcile(module.name, h.now)


def converged(h) -> list[str]:
    """After a drain, every linked service has the same status, expiry, add-ons and IPs."""
    drain(h)
    problems = []
    services = seller_services(h)
    for item in h.store.items():
        if item.remote_id is None:
            continue
        remote = services.get(item.remote_id)
        if remote is None:
            problems.append(
                f"service {item.id} links seller service {item.remote_id}, which does not exist"
            )
            continue
        expires = remote["expires"] or None  # a lifetime service never expires
        specs = h.store.tariff_by_id(item.pricelist).addons
        seller_addons = {}
        tariff = h.seller.tariffs[remote["tariff"]]
        for name, value in remote["addons"].items():
            if name in specs and name in tariff.addons:
                spec = tariff.addons[name]
                seller_addons[name] = (
                    str(value)  # item names on both sides, even of an item since dropped
                    if spec.type == "enumeration"
                    else specs[name].from_wire(spec.wire(value))
                )
        # An add-on the service never had here (one created disabled by a sync) counts at its
        # default, which is what the seller gave it.
        mine = {k: item.addons.get(k, specs[k].default()) for k in seller_addons}
        pairs = [
            ("status", item.status_name, remote["status"]),
            ("expiry", item.expiredate, expires),
            ("add-ons", mine, seller_addons),
            ("IPs", sorted(item.ips), sorted(remote["ips"])),
        ]
        for what, local, seller in pairs:
            if local != seller:
                problems.append(
                    f"service {item.id} (seller {remote['id']}): {what} {local} "
                    f"here, {seller} at the seller"
                )
    return problems


def balances_within_limits(h) -> list[str]:
    """No seller account and no reseller client was ever below zero: neither side gives credit."""
    problems = []
    ledger = h.side.ledger()
    for login, start in h.initial_seller_balances.items():
        balance = start
        for entry in (e for e in ledger if e["account"] == login):
            balance += entry["amount"]
            if balance < 0:
                problems.append(f"seller account {login} went to {balance} (ledger {entry['id']})")
                break
    for name, start in h.initial_client_balances.items():
        balance = start
        for expense in h.store.expenses(h.store.client(name).id):
            balance += expense.amount
            if balance < 0:
                problems.append(f"client {name} went to {balance} (expense {expense.id})")
                break
    return problems


# The statuses a service may reach from each, in one step or several: never back to ordered,
# never back from deleted.
REACHABLE = {1: {1, 2, 3, 4}, 2: {2, 3, 4}, 3: {2, 3, 4}, 4: {4}}
STATUS_CODES = {name: code for code, name in STATUS_NAMES.items()}


def statuses_move_legally(h) -> list[str]:
    """No status, here or at the seller, went back to ordered or came back from deleted."""
    seen = h.__dict__.setdefault("_statuses_seen", {})
    now = {("service", i.id): i.status for i in h.store.items()}
    now.update({("seller service", s["id"]): STATUS_CODES[s["status"]] for s in h.side.services()})
    problems = [
        f"{kind} {key}: {STATUS_NAMES[seen[(kind, key)]]} -> {STATUS_NAMES[status]}"
        for (kind, key), status in now.items()
        if (kind, key) in seen and status not in REACHABLE[seen[(kind, key)]]
    ]
    seen.update(now)
    return problems


def tariff_sync_converges(h) -> list[str]:
    """Synced, each tariff has the seller's add-ons, items and templates; resyncing is a no-op."""
    h.side.clear_faults()
    problems = []
    for plan in h.store.tariffs():
        intname = plan.intname
        h.engine.sync_tariff(intname, h.now)
        again = h.engine.sync_tariff(intname, h.now)
        if again:
            problems.append(f"tariff {intname}: a second sync still changed {again}")
        problems += [f"tariff {intname}: {p}" for p in _tariff_drift(h, h.engine.tariff(intname))]
    return problems


def _tariff_drift(h, plan) -> list[str]:
    """How a local tariff differs from the seller's in what a sync follows."""
    remote = h.seller.tariffs[plan.remote_id]
    local = plan.addons
    drift = []
    if set(local) != set(remote.addons):
        drift.append(f"add-ons {sorted(local)} here, {sorted(remote.addons)} at the seller")
    for name in set(local) & set(remote.addons):
        mine, theirs = local[name], remote.addons[name]
        if (mine.type, mine.remote_id) != (theirs.type, theirs.id):
            drift.append(
                f"add-on {name} is {mine.type} #{mine.remote_id} here, "
                f"{theirs.type} #{theirs.id} at the seller"
            )
        offered = {item: theirs.item_ids[item] for item in theirs.items}  # not dropped ones
        if theirs.type == "enumeration" and (mine.item_ids or {}) != offered:
            drift.append(f"add-on {name} items {mine.item_ids} here, {offered} there")
    for param, values in (("ostempl", remote.ostempl), ("recipe", remote.recipes)):
        mine = plan.values(param)
        if sorted(mine) != sorted(values):
            drift.append(f"{param} {sorted(mine)} here, {sorted(values)} at the seller")
    return drift


def operations_settle(h) -> list[str]:
    """After a drain and the engine's next daily reconcile, every operation is done, failed
    with a reason, or awaits a manual set-up.

    The daily reconcile is what completes a change a retry found already made (by the staff,
    say), which no event will ever report.
    """
    drain(h)
    midnight = datetime.combine(h.now.date() + timedelta(days=1), time())
    h.advance(midnight)
    drain(h)
    problems = []
    services = seller_services(h)
    for op in h.store.operations():
        if op.state == "done" or (op.state == "failed" and op.error_type):
            continue
        item = h.store.item(op.item)
        remote = services.get(item.remote_id) if item.remote_id else None
        if op.state == "manual" and op.kind == "open" and remote and remote["status"] == "ordered":
            continue  # the seller's staff have yet to set the service up
        problems.append(
            f"operation {op.id} ({op.kind} of service {op.item}) is {op.state}"
            + (" with no reason" if op.state == "failed" else " after a drain")
        )
    return problems


CHECKS = {
    "money_conserved": money_conserved,
    "one_remote_per_service": one_remote_per_service,
    "events_applied_once": events_applied_once,
    "converged": converged,
    "balances_within_limits": balances_within_limits,
    "statuses_move_legally": statuses_move_legally,
    "tariff_sync_converges": tariff_sync_converges,
    "operations_settle": operations_settle,
}
# These act before they check (a drain, a sync), so a scenario checks them only at its end.
FINAL_ONLY = ("converged", "tariff_sync_converges", "operations_settle")
DRAIN_LIMIT = timedelta(days=2)
