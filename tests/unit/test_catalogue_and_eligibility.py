"""The catalogue (gateways, packages, what users may browse) and the real eligibility rules
(AccountRules) as opening an order and asking for a payout see them."""

from __future__ import annotations

import pytest

from flamepay.activate_user import activate_user
from flamepay.add_package import add_package
from flamepay.adjust_balance import adjust_balance
from flamepay.admin import NotAllowed
from flamepay.ban_user import ban_user, unban_user
from flamepay.browse_catalogue import browse_catalogue
from flamepay.configure_gateway import configure_gateway
from flamepay.eligibility import BANNED, NOT_ACTIVATED
from flamepay.errors import InvalidAmount, NotEligible, NotFound, Refused
from flamepay.generate_codes import generate_codes
from flamepay.open_order import open_recharge_order
from flamepay.order import OrderState, ReviewFlag
from flamepay.payout import Network, PayoutStatus
from flamepay.request_payout import request_payout
from flamepay.see_user import see_user
from flamepay.switch_package import switch_package
from tests.helpers.core_checks import (
    USER,
    admin_world,
    audit_actions,
    notify,
    report_state,
    reviews,
    rules_world,
    snapshot,
    stored_order,
)
from tests.helpers.support import World

ADMIN = 1
STRANGER = 99


# --- helpers ------------------------------------------------------------------------------


def activate(world: World, user_id: int = USER) -> None:
    (code,) = generate_codes(world.core, ADMIN)
    assert activate_user(world.core, user_id, code.code).activated


def package(world: World, amount_text: str, way_code: str = "ALI_QR") -> int:
    """Add an enabled gateway (if needed) and a package through the admin use cases."""
    if world.state.gateways.get(way_code) is None:
        configure_gateway(world.core, ADMIN, way_code, way_code.title(), True)
    draft = add_package(world.core, ADMIN, way_code, f"Pack {amount_text}", amount_text)
    assert draft.package is not None
    return draft.package.id


def orders_of(world: World, user_id: int = USER) -> list:
    return sorted(
        (o for o in world.state.orders.values() if o.user_id == user_id), key=lambda o: o.id
    )


def creates(world: World) -> list[str]:
    return [no for kind, no in world.provider.calls if kind == "create"]


# --- configure_gateway --------------------------------------------------------------------
def test_configure_gateway_adds_one_upper_cased_with_a_folded_title():
    world = admin_world()

    gateway = configure_gateway(world.core, ADMIN, "  ali_qr ", "  Alipay   QR  ", True)

    assert (gateway.way_code, gateway.title, gateway.enabled) == ("ALI_QR", "Alipay QR", True)
    stored = world.state.gateways["ALI_QR"]
    assert (stored.title, stored.enabled) == ("Alipay QR", True)
    entry = world.state.audit[-1]
    assert (entry.actor, entry.action, entry.target) == (
        f"admin:{ADMIN}",
        "gateway_configured",
        "gateway:ALI_QR",
    )
    assert entry.details == {"title": "Alipay QR", "enabled": True}


def test_configure_gateway_switches_off_and_on_and_renames_without_a_second_row():
    world = admin_world()
    configure_gateway(world.core, ADMIN, "WX_NATIVE", "WeChat", True)

    configure_gateway(world.core, ADMIN, "wx_native", "WeChat Pay", False)
    assert list(world.state.gateways) == ["WX_NATIVE"]
    assert world.state.gateways["WX_NATIVE"].enabled is False
    assert world.state.gateways["WX_NATIVE"].title == "WeChat Pay"

    configure_gateway(world.core, ADMIN, "WX_NATIVE", "WeChat Pay", True)
    assert world.state.gateways["WX_NATIVE"].enabled is True
    assert [a.details["enabled"] for a in world.state.audit] == [True, False, True]


@pytest.mark.parametrize(
    "code",
    ["", "A", "1ALI", "_ALI", "ALI-QR", "ALI QR", "ALI.QR", "A" * 33, "ÄLI_QR", "ALI_QR\x00"],
)
def test_configure_gateway_refuses_a_bad_way_code(code):
    world = admin_world()
    with pytest.raises(Refused, match=r"^Expected a way code: 2 to 32 characters"):
        configure_gateway(world.core, ADMIN, code, "Title", True)
    assert world.state.gateways == {}
    assert world.state.audit == []


@pytest.mark.parametrize("code", ["AB", "A" * 32, "USDT_TRC20", "x1"])
def test_configure_gateway_accepts_way_codes_at_the_bounds(code):
    world = admin_world()
    assert configure_gateway(world.core, ADMIN, code, "T", True).way_code == code.upper()
    assert code.upper() in world.state.gateways


@pytest.mark.parametrize("title", ["", "    ", "t" * 65, "bell\x07", "tab\x00x"])
def test_configure_gateway_refuses_a_bad_title(title):
    world = admin_world()
    with pytest.raises(Refused, match=r"^Expected a title of 1 to 64 printable characters\.$"):
        configure_gateway(world.core, ADMIN, "ALI_QR", title, True)
    assert world.state.gateways == {}


def test_configure_gateway_accepts_a_64_character_title():
    world = admin_world()
    assert configure_gateway(world.core, ADMIN, "ALI_QR", "t" * 64, True).title == "t" * 64


def test_only_admins_configure_gateways_and_the_refusal_is_audited():
    world = admin_world()
    with pytest.raises(NotAllowed, match=r"^Not allowed"):
        configure_gateway(world.core, STRANGER, "ALI_QR", "Alipay", True)
    assert world.state.gateways == {}
    assert [(a.action, a.actor, a.target) for a in world.state.audit] == [
        ("admin_action_refused", f"user:{STRANGER}", "ALI_QR")
    ]


# --- add_package --------------------------------------------------------------------------
def test_add_package_parses_the_amount_stores_it_and_echoes_it():
    world = admin_world()
    configure_gateway(world.core, ADMIN, "ALI_QR", "Alipay", True)

    draft = add_package(world.core, ADMIN, "ali_qr", "  Small   pack ", "100.5", sort_order=3)

    assert draft.amount == 100_50
    assert not draft.needs_confirmation
    stored = world.state.packages[draft.package.id]
    assert (stored.way_code, stored.label, stored.amount, stored.sort_order, stored.enabled) == (
        "ALI_QR",
        "Small pack",
        100_50,
        3,
        True,
    )
    entry = world.state.audit[-1]
    assert (entry.action, entry.target) == ("package_added", f"package:{stored.id}")
    assert entry.details["amount"] == 100_50 and entry.details["confirmed"] is False


@pytest.mark.parametrize(
    ("text", "cents"),
    [("1", 100), ("0.01", 1), ("99.9", 99_90), ("250.00", 250_00), ("10000", 10_000_00)],
)
def test_add_package_amounts_up_to_the_maximum_need_no_confirmation(text, cents):
    world = admin_world()
    configure_gateway(world.core, ADMIN, "ALI_QR", "Alipay", True)
    draft = add_package(world.core, ADMIN, "ALI_QR", "p", text)
    assert draft.amount == cents and draft.package.amount == cents
    assert [p.amount for p in world.state.packages.values()] == [cents]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "above zero"),
        ("0.00", "above zero"),
        ("-1", "Expected an amount like 100"),
        ("1.234", "Expected an amount like 100"),
        ("1_000", "Expected an amount like 100"),
        ("１００", "Expected an amount like 100"),
        ("١٠٠", "Expected an amount like 100"),
        (" +5", "Expected an amount like 100"),
        ("1e3", "Expected an amount like 100"),
        ("Infinity", "Expected an amount like 100"),
        ("NaN", "Expected an amount like 100"),
        ("", "Expected an amount like 100"),
        ("100\n", "Expected an amount like 100"),
        ("1234567890", "Expected an amount like 100"),
    ],
)
def test_add_package_refuses_amounts_that_do_not_parse(text, message):
    world = admin_world()
    configure_gateway(world.core, ADMIN, "ALI_QR", "Alipay", True)
    with pytest.raises(InvalidAmount, match=message):
        add_package(world.core, ADMIN, "ALI_QR", "p", text)
    assert world.state.packages == {}
    assert "package_added" not in audit_actions(world)


def test_add_package_above_the_maximum_waits_for_confirmation_and_stores_nothing():
    world = admin_world(package_max=500_00)
    configure_gateway(world.core, ADMIN, "ALI_QR", "Alipay", True)

    draft = add_package(world.core, ADMIN, "ALI_QR", "Big", "100000")

    assert draft.needs_confirmation
    assert draft.package is None
    assert draft.amount == 100_000_00  # what FlamePay understood, for the admin to check
    assert world.state.packages == {}
    assert "package_added" not in audit_actions(world)

    confirmed = add_package(world.core, ADMIN, "ALI_QR", "Big", "100000", confirmed=True)

    assert not confirmed.needs_confirmation
    assert confirmed.amount == 100_000_00
    assert [p.amount for p in world.state.packages.values()] == [100_000_00]
    assert world.state.audit[-1].details["confirmed"] is True


def test_add_package_at_exactly_the_maximum_needs_no_confirmation():
    world = admin_world(package_max=500_00)
    configure_gateway(world.core, ADMIN, "ALI_QR", "Alipay", True)
    assert not add_package(world.core, ADMIN, "ALI_QR", "p", "500").needs_confirmation
    assert add_package(world.core, ADMIN, "ALI_QR", "p", "500.01").needs_confirmation
    assert [p.amount for p in world.state.packages.values()] == [500_00]


def test_add_package_for_an_unknown_gateway_is_refused():
    world = admin_world()
    configure_gateway(world.core, ADMIN, "ALI_QR", "Alipay", True)
    with pytest.raises(NotFound, match=r"^No gateway WX_NATIVE; add it first with /gateway"):
        add_package(world.core, ADMIN, "wx_native", "p", "10")
    assert world.state.packages == {}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(way_code="1X"), Refused, "Expected a way code"),
        (dict(label=""), Refused, r"^Expected a label of 1 to 64 printable characters\.$"),
        (dict(label="l" * 65), Refused, "Expected a label"),
        (dict(sort_order=1001), Refused, r"^Expected a sort order from -1000 to 1000\.$"),
        (dict(sort_order=-1001), Refused, "Expected a sort order"),
    ],
)
def test_add_package_refuses_bad_fields(kwargs, error, message):
    world = admin_world()
    configure_gateway(world.core, ADMIN, "ALI_QR", "Alipay", True)
    args = dict(way_code="ALI_QR", label="p", amount_text="10", sort_order=0) | kwargs
    with pytest.raises(error, match=message):
        add_package(world.core, ADMIN, **args)
    assert world.state.packages == {}


def test_only_admins_add_packages_and_the_refusal_is_audited():
    world = admin_world()
    configure_gateway(world.core, ADMIN, "ALI_QR", "Alipay", True)
    with pytest.raises(NotAllowed, match=r"^Not allowed"):
        add_package(world.core, STRANGER, "ALI_QR", "p", "10")
    assert world.state.packages == {}
    assert world.state.audit[-1].action == "admin_action_refused"


# --- switch_package -----------------------------------------------------------------------
def test_switch_package_off_and_on_leaves_open_orders_alone():
    world = admin_world()
    pkg = package(world, "50")
    number = open_recharge_order(world.core, USER, pkg).order.mch_order_no

    switch_package(world.core, ADMIN, pkg, False)

    assert world.state.packages[pkg].enabled is False
    assert stored_order(world, number).state is OrderState.PAYING
    # The open order is still paid and credited normally.
    report_state(world, number, OrderState.SUCCESS)
    assert world.available(USER) == 42_50

    switch_package(world.core, ADMIN, pkg, True)
    assert world.state.packages[pkg].enabled is True
    switched = [a for a in world.state.audit if a.action == "package_switched"]
    assert [(a.target, a.details["enabled"]) for a in switched] == [
        (f"package:{pkg}", False),
        (f"package:{pkg}", True),
    ]


def test_switch_package_unknown_is_refused():
    world = admin_world()
    with pytest.raises(NotFound, match=r"^No package 77\. /packages lists them\.$"):
        switch_package(world.core, ADMIN, 77, False)
    assert world.state.packages == {}
    assert "package_switched" not in audit_actions(world)


def test_only_admins_switch_packages():
    world = admin_world()
    pkg = package(world, "50")
    with pytest.raises(NotAllowed):
        switch_package(world.core, STRANGER, pkg, False)
    assert world.state.packages[pkg].enabled is True
    assert world.state.audit[-1].details["command"] == "package_off"


# --- browse_catalogue ---------------------------------------------------------------------
def test_users_see_only_enabled_gateways_and_their_enabled_packages():
    world = admin_world()
    a1 = package(world, "10", "ALI_QR")
    a2 = package(world, "20", "ALI_QR")
    a3 = package(world, "30", "ALI_QR")
    w1 = package(world, "40", "WX_NATIVE")
    u1 = package(world, "50", "USDT_TRC20")
    switch_package(world.core, ADMIN, a2, False)
    configure_gateway(world.core, ADMIN, "WX_NATIVE", "Wx", False)

    shown = browse_catalogue(world.core)

    assert [g.way_code for g in shown.gateways] == ["ALI_QR", "USDT_TRC20"]
    assert [p.id for p in shown.packages_of("ALI_QR")] == [a1, a3]
    assert [p.id for p in shown.packages_of("USDT_TRC20")] == [u1]
    assert shown.packages_of("WX_NATIVE") == ()
    assert {p.id for p in shown.packages} == {a1, a3, u1}

    everything = browse_catalogue(world.core, include_disabled=True)

    assert [g.way_code for g in everything.gateways] == ["ALI_QR", "USDT_TRC20", "WX_NATIVE"]
    assert {p.id for p in everything.packages} == {a1, a2, a3, w1, u1}
    assert [p.id for p in everything.packages_of("WX_NATIVE")] == [w1]


def test_catalogue_packages_follow_sort_order_then_id():
    world = admin_world()
    configure_gateway(world.core, ADMIN, "ALI_QR", "Alipay", True)
    ids = [
        add_package(world.core, ADMIN, "ALI_QR", label, "10", sort_order=order).package.id
        for label, order in [("c", 5), ("a", -2), ("b", 5), ("d", 0)]
    ]
    shown = browse_catalogue(world.core)
    assert [p.id for p in shown.packages] == [ids[1], ids[3], ids[0], ids[2]]


def test_an_empty_catalogue():
    world = admin_world()
    assert browse_catalogue(world.core).gateways == ()
    assert browse_catalogue(world.core, include_disabled=True).packages == ()


# --- AccountRules: opening orders ---------------------------------------------------------
def test_a_user_who_is_not_activated_cannot_open_an_order():
    world = rules_world()
    pkg = package(world, "100")
    see_user(world.core, USER)
    before = snapshot(world)

    for user_id in (USER, 4242):  # an unknown user and one who only never activated
        with pytest.raises(NotEligible) as refused:
            open_recharge_order(world.core, user_id, pkg)
        assert str(refused.value) == NOT_ACTIVATED

    assert snapshot(world) == before
    assert world.state.orders == {}
    assert creates(world) == []


def test_an_activated_user_opens_an_order():
    world = rules_world()
    pkg = package(world, "100")
    activate(world)

    opened = open_recharge_order(world.core, USER, pkg)

    assert not opened.reused
    assert opened.order.state is OrderState.PAYING
    assert [o.mch_order_no for o in orders_of(world)] == [opened.order.mch_order_no]


def test_a_banned_user_cannot_open_an_order_or_ask_for_a_payout_until_unbanned():
    world = rules_world()
    pkg = package(world, "100")
    activate(world)
    number = open_recharge_order(world.core, USER, pkg).order.mch_order_no
    report_state(world, number, OrderState.SUCCESS)
    ban_user(world.core, ADMIN, USER)
    pkg2 = package(world, "200")
    before = snapshot(world)

    with pytest.raises(NotEligible) as on_order:
        open_recharge_order(world.core, USER, pkg2)
    with pytest.raises(NotEligible) as on_payout:
        request_payout(world.core, USER, 20_00, Network.TRC20, "TAddr")

    assert str(on_order.value) == BANNED
    assert str(on_payout.value) == BANNED
    assert snapshot(world) == before
    assert world.available(USER) == 85_00 and world.held(USER) == 0
    refused = [a for a in world.state.audit if a.action == "payout_request_refused"]
    assert [a.details["reason"] for a in refused] == [BANNED]

    unban_user(world.core, ADMIN, USER)
    assert not open_recharge_order(world.core, USER, pkg2).reused
    payout = request_payout(world.core, USER, 20_00, Network.TRC20, "TAddr")
    assert payout.status is PayoutStatus.PENDING
    assert world.available(USER) == 65_00 and world.held(USER) == 20_00


def test_a_user_who_is_not_activated_cannot_ask_for_a_payout():
    world = rules_world()
    # Money could reach an account only through an admin, but the rule holds regardless.
    see_user(world.core, USER)
    adjust_balance(world.core, ADMIN, USER, 50_00, "goodwill")

    with pytest.raises(NotEligible) as refused:
        request_payout(world.core, USER, 20_00, Network.TRC20, "TAddr")

    assert str(refused.value) == NOT_ACTIVATED
    assert world.state.payouts == {}
    assert world.available(USER) == 50_00 and world.held(USER) == 0


def test_a_switched_off_package_cannot_be_ordered():
    world = rules_world()
    pkg = package(world, "100")
    other = package(world, "200")
    activate(world)
    switch_package(world.core, ADMIN, pkg, False)

    with pytest.raises(NotEligible, match=r"^That package is not available\.$"):
        open_recharge_order(world.core, USER, pkg)
    with pytest.raises(NotEligible, match=r"^That package is not available\.$"):
        open_recharge_order(world.core, USER, 999)  # no such package
    assert world.state.orders == {}

    assert open_recharge_order(world.core, USER, other).order.amount == 200_00


def test_a_package_of_a_switched_off_gateway_cannot_be_ordered():
    world = rules_world()
    pkg = package(world, "100", "ALI_QR")
    other = package(world, "100", "WX_NATIVE")
    activate(world)
    configure_gateway(world.core, ADMIN, "ALI_QR", "Alipay", False)

    with pytest.raises(NotEligible, match=r"^That package is not available\.$"):
        open_recharge_order(world.core, USER, pkg)
    assert world.state.orders == {}
    assert creates(world) == []
    assert open_recharge_order(world.core, USER, other).order.way_code == "WX_NATIVE"

    configure_gateway(world.core, ADMIN, "ALI_QR", "Alipay", True)
    assert open_recharge_order(world.core, USER, pkg).order.way_code == "ALI_QR"


def test_the_same_package_hands_back_the_open_order_until_it_expires():
    world = rules_world()  # orders expire after 30 minutes
    pkg = package(world, "100")
    activate(world)
    first = open_recharge_order(world.core, USER, pkg)
    world.clock.advance(minutes=29)

    again = open_recharge_order(world.core, USER, pkg)

    assert again.reused
    assert again.order.mch_order_no == first.order.mch_order_no
    assert again.order.cashier_url == first.order.cashier_url
    assert len(orders_of(world)) == 1
    assert creates(world) == [first.order.mch_order_no]  # the gateway was not asked again

    world.clock.advance(minutes=1)  # expires_at == now: expired

    fresh = open_recharge_order(world.core, USER, pkg)

    assert not fresh.reused
    assert fresh.order.mch_order_no != first.order.mch_order_no
    assert len(orders_of(world)) == 2
    assert creates(world) == [first.order.mch_order_no, fresh.order.mch_order_no]


def test_reuse_is_per_user_and_per_package_and_never_hands_back_a_paid_order():
    world = rules_world()
    pkg = package(world, "100")
    other_pkg = package(world, "100")  # same amount, another package
    activate(world, USER)
    activate(world, 8)
    mine = open_recharge_order(world.core, USER, pkg).order.mch_order_no

    theirs = open_recharge_order(world.core, 8, pkg)
    second = open_recharge_order(world.core, USER, other_pkg)
    assert not theirs.reused and theirs.order.user_id == 8
    assert not second.reused and second.order.mch_order_no != mine

    report_state(world, mine, OrderState.SUCCESS)
    after_paid = open_recharge_order(world.core, USER, pkg)
    assert not after_paid.reused and after_paid.order.mch_order_no != mine


def test_at_most_max_open_orders_and_paid_or_failed_ones_do_not_count():
    world = rules_world(max_open_orders=3)
    pkgs = [package(world, str(10 * (i + 1))) for i in range(5)]
    activate(world)
    numbers = [open_recharge_order(world.core, USER, p).order.mch_order_no for p in pkgs[:3]]
    before = snapshot(world)

    with pytest.raises(NotEligible) as refused:
        open_recharge_order(world.core, USER, pkgs[3])

    assert str(refused.value) == "You have 3 unpaid orders (at most 3). Pay or /cancel one first."
    assert snapshot(world) == before
    # Asking again for one of the three is not a new order: it is handed back.
    assert open_recharge_order(world.core, USER, pkgs[1]).order.mch_order_no == numbers[1]

    report_state(world, numbers[0], OrderState.SUCCESS)
    assert not open_recharge_order(world.core, USER, pkgs[3]).reused
    report_state(world, numbers[1], OrderState.FAILED)
    assert not open_recharge_order(world.core, USER, pkgs[4]).reused
    assert sum(1 for o in orders_of(world) if o.is_open) == 3


def test_expired_but_unclosed_orders_still_count_towards_the_limit():
    world = rules_world(max_open_orders=2)
    pkgs = [package(world, str(10 * (i + 1))) for i in range(3)]
    activate(world)
    for p in pkgs[:2]:
        open_recharge_order(world.core, USER, p)
    world.clock.advance(minutes=45)

    with pytest.raises(NotEligible, match=r"You have 2 unpaid orders \(at most 2\)"):
        open_recharge_order(world.core, USER, pkgs[2])
    # An expired order of the same package is not handed back either.
    with pytest.raises(NotEligible, match="unpaid orders"):
        open_recharge_order(world.core, USER, pkgs[0])


def test_orders_under_review_do_not_count_and_are_not_handed_back():
    world = rules_world(max_open_orders=2)
    pkgs = [package(world, str(10 * (i + 1))) for i in range(3)]
    activate(world)
    flagged = open_recharge_order(world.core, USER, pkgs[0]).order.mch_order_no
    open_recharge_order(world.core, USER, pkgs[1])
    with pytest.raises(NotEligible, match="unpaid orders"):
        open_recharge_order(world.core, USER, pkgs[2])

    world.provider.pay(flagged)
    notify(world, flagged, amount=99)  # fails the match rule: flagged for review

    assert stored_order(world, flagged).review is ReviewFlag.PENDING
    assert stored_order(world, flagged).state is OrderState.PAYING
    assert len(reviews(world)) == 1
    third = open_recharge_order(world.core, USER, pkgs[2])
    assert not third.reused
    assert len(orders_of(world)) == 3
    # The flagged order's package does not get the order an admin holds handed back: with
    # two open orders besides it, asking for that package again meets the limit.
    with pytest.raises(NotEligible, match=r"You have 2 unpaid orders \(at most 2\)"):
        open_recharge_order(world.core, USER, pkgs[0])
    assert len(orders_of(world)) == 3


def test_a_fresh_order_for_a_flagged_orders_package_is_not_the_flagged_one():
    world = rules_world(max_open_orders=3)
    pkg = package(world, "10")
    activate(world)
    flagged = open_recharge_order(world.core, USER, pkg).order.mch_order_no
    world.provider.pay(flagged)
    notify(world, flagged, currency="EUR")

    fresh = open_recharge_order(world.core, USER, pkg)

    assert not fresh.reused
    assert fresh.order.mch_order_no != flagged
    assert len(orders_of(world)) == 2


def test_the_limit_follows_the_policy_in_force():
    world = rules_world(max_open_orders=1)
    pkgs = [package(world, str(10 * (i + 1))) for i in range(2)]
    activate(world)
    open_recharge_order(world.core, USER, pkgs[0])
    with pytest.raises(NotEligible, match=r"\(at most 1\)"):
        open_recharge_order(world.core, USER, pkgs[1])

    world.set_policy(max_open_orders=2)  # AccountRules reads the policy per call

    assert not open_recharge_order(world.core, USER, pkgs[1]).reused
