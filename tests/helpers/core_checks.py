"""Helpers shared by the core's use-case tests: read what the in-memory adapters ended in.

Everything here reads `world.state` (the committed MemoryState) or drives the world through
the real use cases; nothing counts which methods were called.
"""

from __future__ import annotations

from collections import defaultdict

import attrs

from flamepay.apply_report import ReportResult, apply_provider_report
from flamepay.eligibility import AccountRules
from flamepay.ledger import Journal
from flamepay.open_order import open_recharge_order
from flamepay.order import Order, OrderState
from flamepay.records import Audience, OutboxMessage, Review, ReviewKind
from flamepay.report import ReportSource
from flamepay.see_user import see_user
from tests.helpers.support import World, make_world

USER = 7
OTHER_USER = 8
ADMIN = 1


# --- reading the committed state ----------------------------------------------------------
def journal(world: World, key: str) -> Journal | None:
    stored = world.state.journals.get(key)
    return stored.journal if stored else None


def journal_keys(world: World) -> set[str]:
    return set(world.state.journals)


def entries(world: World, key: str) -> dict[str, int]:
    found = journal(world, key)
    assert found is not None, f"no journal {key}"
    return {e.account: e.amount for e in found.entries}


def outbox(world: World, audience: Audience | None = None) -> list[OutboxMessage]:
    return [m for m in world.state.outbox if audience is None or m.audience is audience]


def admin_rows(world: World) -> list[OutboxMessage]:
    return outbox(world, Audience.ADMINS)


def user_rows(world: World, user_id: int = USER) -> list[OutboxMessage]:
    return [m for m in outbox(world, Audience.USER) if m.user_id == user_id]


def audit_actions(world: World) -> list[str]:
    return [a.action for a in world.state.audit]


def reviews(world: World, kind: ReviewKind | None = None) -> list[Review]:
    return [r for r in world.state.reviews.values() if kind is None or r.kind is kind]


def stored_order(world: World, number: str) -> Order:
    order = world.order(number)
    assert order is not None, f"no order {number}"
    return order


def snapshot(world: World) -> dict[str, object]:
    """What a refused or rolled-back call must leave exactly as it was (audit aside)."""
    s = world.state
    return {
        "balances": dict(s.balances),
        "journals": set(s.journals),
        "outbox": [(m.audience, m.kind, m.text) for m in s.outbox],
        "orders": {o.id: attrs.asdict(o) for o in s.orders.values()},
        "payouts": {p.id: attrs.asdict(p) for p in s.payouts.values()},
        "reviews": set(s.review_keys),
    }


def assert_books_balanced(world: World) -> None:
    """Every journal sums to zero and every balance equals the sum of its account's entries."""
    sums: dict[str, int] = defaultdict(int)
    for key, stored in world.state.journals.items():
        assert sum(e.amount for e in stored.journal.entries) == 0, key
        for e in stored.journal.entries:
            sums[e.account] += e.amount
    balances = {a: b for a, b in world.state.balances.items() if b != 0}
    assert balances == {a: b for a, b in sums.items() if b != 0}


# --- driving the world through the real use cases ---------------------------------------
def admin_world(*seen: int, **policy: object) -> World:
    """Admins 1 and 2 (the default world's); the users in `seen` have talked to the bot (not
    activated)."""
    world = make_world(**policy)
    for user_id in seen:
        see_user(world.core, user_id)
    return world


def rules_world(*seen: int, **policy: object) -> World:
    """admin_world with the real eligibility rules instead of AllowAll."""
    world = admin_world(*seen, **policy)
    world.core.eligibility = AccountRules(world.clock, lambda: world.core.policy)
    return world


def open_order(world: World, amount: int, user_id: int = USER) -> str:
    """Open an order (state 1 after the create response) and return its number."""
    package = world.add_package(amount)
    opened = open_recharge_order(world.core, user_id, package)
    assert opened.order.state is OrderState.PAYING
    return opened.order.mch_order_no


def notify(
    world: World, number: str, source: ReportSource = ReportSource.NOTIFY, **tamper
) -> ReportResult:
    """Deliver what the provider says about `number` now (keyword arguments tamper with it)."""
    return apply_provider_report(world.core, world.provider.report(number, **tamper), source)


def report_state(
    world: World, number: str, state: OrderState, source: ReportSource = ReportSource.NOTIFY
) -> ReportResult:
    """The provider moves the order to `state` and tells us."""
    if state is OrderState.SUCCESS:
        world.provider.pay(number)
    else:
        world.provider.set_state(number, state)
    return notify(world, number, source)


def paid_order(world: World, amount: int, user_id: int = USER) -> str:
    number = open_order(world, amount, user_id)
    result = report_state(world, number, OrderState.SUCCESS)
    assert result.state is OrderState.SUCCESS
    return number


def with_fields(report, **changes):
    return attrs.evolve(report, **changes)
