"""Users and access codes: first contact, ban/unban, blocked bots, code generation, listing,
activation (with its per-user limit) and what each of them writes to the audit log."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pytest

from adapters.system import CODE_ALPHABET, SecretIds
from flamepay.access_code import CODE_BITS, normalise_code
from flamepay.activate_user import WRONG_CODE, activate_user
from flamepay.admin import NotAllowed
from flamepay.ban_user import ban_user, unban_user
from flamepay.errors import NotEligible, NotFound, Refused
from flamepay.generate_codes import MAX_COUNT, MAX_USES, generate_codes
from flamepay.list_codes import list_codes
from flamepay.mark_bot_blocked import mark_bot_blocked, mark_bot_unblocked
from flamepay.see_user import MAX_NAME, MAX_USERNAME, see_user
from tests.helpers.core_checks import USER, admin_world, audit_actions, paid_order
from tests.helpers.support import START, World, make_world

ADMIN = 1
OTHER_ADMIN = 2
STRANGER = 99


# --- helpers ------------------------------------------------------------------------------


def new_code(world: World, uses: int = 1, expires_on: date | None = None) -> str:
    return generate_codes(world.core, ADMIN, uses=uses, expires_on=expires_on)[0].code


def stored_user(world: World, user_id: int = USER):
    return world.state.users.get(user_id)


def stored_code(world: World, text: str):
    return world.state.codes[world.state.code_index[text]]


def refusals(world: World) -> list:
    return [a for a in world.state.audit if a.action == "admin_action_refused"]


def failed_attempts(world: World, user_id: int = USER) -> int:
    return sum(1 for uid, _ in world.state.failed_activations if uid == user_id)


# --- see_user -----------------------------------------------------------------------------
def test_first_contact_stores_the_user_and_audits_it_once():
    world = make_world()

    user = see_user(world.core, USER, "alice", "Alice A")

    stored = stored_user(world)
    assert (stored.id, stored.username, stored.name) == (USER, "alice", "Alice A")
    assert stored.first_seen == START
    assert not stored.activated and not stored.banned
    assert user.id == USER
    assert audit_actions(world) == ["user_first_seen"]
    assert world.state.audit[0].target == f"user:{USER}"


def test_a_later_contact_updates_username_and_name_without_a_new_audit():
    world = make_world()
    see_user(world.core, USER, "alice", "Alice")
    world.clock.advance(days=3)

    see_user(world.core, USER, "alice2", "Alice B")
    see_user(world.core, USER, "alice2", "Alice B")

    stored = stored_user(world)
    assert (stored.username, stored.name) == ("alice2", "Alice B")
    assert stored.first_seen == START  # not moved by later contacts
    assert audit_actions(world) == ["user_first_seen"]
    assert len(world.state.users) == 1


def test_see_user_clips_long_names_and_treats_none_as_empty():
    world = make_world()
    see_user(world.core, USER, "u" * 500, "n" * 500)
    assert len(stored_user(world).username) == MAX_USERNAME
    assert len(stored_user(world).name) == MAX_NAME

    see_user(world.core, USER, None, None)  # type: ignore[arg-type]
    assert (stored_user(world).username, stored_user(world).name) == ("", "")


@pytest.mark.parametrize("bad", [0, -5, True, "7", 7.0])
def test_see_user_refuses_what_is_not_a_positive_integer_id(bad):
    world = make_world()
    with pytest.raises(ValueError, match="positive integer"):
        see_user(world.core, bad)
    assert world.state.users == {}
    assert world.state.audit == []


# --- ban / unban --------------------------------------------------------------------------
def test_an_admin_bans_and_unbans_a_user():
    world = admin_world()
    see_user(world.core, USER)
    world.clock.advance(minutes=5)

    banned = ban_user(world.core, ADMIN, USER)

    assert banned.banned and banned.banned_by == ADMIN
    assert stored_user(world).banned_at == START + timedelta(minutes=5)
    assert stored_user(world).banned_by == ADMIN
    ban_audit = world.state.audit[-1]
    assert (ban_audit.actor, ban_audit.action, ban_audit.target) == (
        f"admin:{ADMIN}",
        "user_banned",
        f"user:{USER}",
    )

    unbanned = unban_user(world.core, OTHER_ADMIN, USER)

    assert not unbanned.banned
    assert stored_user(world).banned_at is None and stored_user(world).banned_by is None
    unban_audit = world.state.audit[-1]
    assert (unban_audit.actor, unban_audit.action, unban_audit.target) == (
        f"admin:{OTHER_ADMIN}",
        "user_unbanned",
        f"user:{USER}",
    )


@pytest.mark.parametrize("use_case", [ban_user, unban_user], ids=["ban", "unban"])
def test_a_non_admin_cannot_ban_or_unban_and_the_refusal_is_audited(use_case):
    world = admin_world()
    see_user(world.core, USER)
    if use_case is unban_user:
        ban_user(world.core, ADMIN, USER)
    before = stored_user(world).banned_at

    with pytest.raises(NotAllowed, match=r"^Not allowed"):
        use_case(world.core, STRANGER, USER)

    assert stored_user(world).banned_at == before
    refused = refusals(world)
    assert len(refused) == 1
    assert refused[0].actor == f"user:{STRANGER}"
    assert refused[0].target == f"user:{USER}"
    assert refused[0].details["command"] == ("ban" if use_case is ban_user else "unban")


def test_a_non_admin_changes_nothing_and_each_refusal_is_audited():
    world = admin_world()
    see_user(world.core, USER)
    code = new_code(world)
    for call in (
        lambda: ban_user(world.core, STRANGER, USER),
        lambda: unban_user(world.core, STRANGER, USER),
        lambda: generate_codes(world.core, STRANGER, count=3),
        lambda: list_codes(world.core, STRANGER),
    ):
        with pytest.raises(NotAllowed):
            call()
    assert not stored_user(world).banned
    assert list(world.state.code_index) == [code]
    assert (
        audit_actions(world)
        == ["user_first_seen", "codes_generated"] + ["admin_action_refused"] * 4
    )
    assert [a.details["command"] for a in refusals(world)] == ["ban", "unban", "gencode", "codes"]


def test_with_no_admins_configured_nobody_may_ban():
    world = make_world(admins=frozenset())  # no ADMIN_IDS
    see_user(world.core, USER)
    with pytest.raises(NotAllowed):
        ban_user(world.core, ADMIN, USER)
    assert not stored_user(world).banned


@pytest.mark.parametrize("use_case", [ban_user, unban_user], ids=["ban", "unban"])
def test_banning_or_unbanning_an_unknown_user_is_refused(use_case):
    world = admin_world()
    with pytest.raises(NotFound, match=r"No user 12345: they have not talked to the bot yet\."):
        use_case(world.core, ADMIN, 12345)
    assert world.state.users == {}
    assert "user_banned" not in audit_actions(world)


def test_banning_a_banned_user_is_refused_and_keeps_the_first_ban():
    world = admin_world()
    see_user(world.core, USER)
    ban_user(world.core, ADMIN, USER)
    world.clock.advance(hours=1)

    with pytest.raises(Refused, match=rf"^User {USER} is already banned\.$"):
        ban_user(world.core, OTHER_ADMIN, USER)

    assert stored_user(world).banned_at == START
    assert stored_user(world).banned_by == ADMIN
    assert audit_actions(world).count("user_banned") == 1


def test_unbanning_a_user_who_is_not_banned_is_refused():
    world = admin_world()
    see_user(world.core, USER)
    with pytest.raises(Refused, match=rf"^User {USER} is not banned\.$"):
        unban_user(world.core, ADMIN, USER)
    assert "user_unbanned" not in audit_actions(world)


@pytest.mark.parametrize("target", [ADMIN, OTHER_ADMIN], ids=["self", "other admin"])
def test_an_admin_cannot_be_banned(target):
    world = admin_world()
    see_user(world.core, target)
    with pytest.raises(Refused, match=r"An admin cannot be banned; remove them from ADMIN_IDS"):
        ban_user(world.core, ADMIN, target)
    assert not stored_user(world, target).banned
    assert "user_banned" not in audit_actions(world)


def test_a_ban_keeps_the_money_and_stops_activation_until_unbanned():
    world = admin_world()
    code = new_code(world, uses=2)
    activate_user(world.core, USER, code)
    paid_order(world, 100_00)
    ban_user(world.core, ADMIN, USER)

    assert world.available(USER) == 85_00  # money stays in the ledger untouched

    # A banned user who is activated stays activated, but cannot re-activate meanwhile.
    with pytest.raises(NotEligible, match="banned"):
        activate_user(world.core, USER, code)
    assert stored_code(world, code).uses == 1

    unban_user(world.core, ADMIN, USER)
    assert activate_user(world.core, USER, code).already
    assert world.available(USER) == 85_00


# --- mark_bot_blocked ---------------------------------------------------------------------
def test_mark_bot_blocked_records_once_and_ignores_unknown_users():
    world = make_world()
    see_user(world.core, USER)
    world.clock.advance(minutes=1)

    assert mark_bot_blocked(world.core, USER) is True
    assert stored_user(world).blocked_bot_at == START + timedelta(minutes=1)

    world.clock.advance(minutes=1)
    assert mark_bot_blocked(world.core, USER) is False
    assert stored_user(world).blocked_bot_at == START + timedelta(minutes=1)  # first kept

    assert mark_bot_blocked(world.core, 4242) is False
    assert 4242 not in world.state.users

    blocked = [a for a in world.state.audit if a.action == "user_blocked_bot"]
    assert [(a.actor, a.target) for a in blocked] == [("system", f"user:{USER}")]


def test_mark_bot_unblocked_clears_it_and_a_later_block_is_recorded_again():
    world = make_world()
    see_user(world.core, USER)
    mark_bot_blocked(world.core, USER)

    mark_bot_unblocked(world.core, USER)
    assert stored_user(world).blocked_bot_at is None

    world.clock.advance(hours=2)
    assert mark_bot_blocked(world.core, USER) is True
    assert stored_user(world).blocked_bot_at == START + timedelta(hours=2)
    mark_bot_unblocked(world.core, 4242)  # unknown: nothing to do, no error
    assert 4242 not in world.state.users


# --- generate_codes -----------------------------------------------------------------------
def test_generate_codes_stores_them_with_uses_expiry_and_creator():
    world = admin_world()
    made = generate_codes(world.core, ADMIN, uses=3, expires_on=date(2026, 1, 5), count=4)

    assert len(made) == 4
    assert len({c.code for c in made}) == 4
    assert len(world.state.codes) == 4
    for code in made:
        stored = stored_code(world, code.code)
        assert stored.id == code.id
        assert stored.max_uses == 3 and stored.uses == 0
        assert stored.created_by == ADMIN and stored.created_at == START
        # good through the whole day it names (UTC)
        assert stored.expires_at == datetime(2026, 1, 6, tzinfo=UTC)


def test_a_code_without_expiry_never_expires():
    world = admin_world()
    (code,) = generate_codes(world.core, ADMIN)
    assert stored_code(world, code.code).expires_at is None
    assert stored_code(world, code.code).max_uses == 1
    world.clock.advance(days=3650)
    assert activate_user(world.core, USER, code.code).activated


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(count=0), f"Expected a count from 1 to {MAX_COUNT}; got 0."),
        (
            dict(count=MAX_COUNT + 1),
            f"Expected a count from 1 to {MAX_COUNT}; got {MAX_COUNT + 1}.",
        ),
        (dict(count=-1), f"Expected a count from 1 to {MAX_COUNT}; got -1."),
        (dict(uses=0), f"Expected uses from 1 to {MAX_USES}; got 0."),
        (dict(uses=MAX_USES + 1), f"Expected uses from 1 to {MAX_USES}; got {MAX_USES + 1}."),
        (dict(expires_on=date(2025, 12, 31)), "The expiry date 2025-12-31 is in the past."),
        (dict(expires_on=date(2020, 1, 1)), "The expiry date 2020-01-01 is in the past."),
    ],
)
def test_generate_codes_refusals(kwargs, message):
    world = admin_world()
    with pytest.raises(Refused) as refused:
        generate_codes(world.core, ADMIN, **kwargs)
    assert str(refused.value) == message
    assert world.state.codes == {}
    assert "codes_generated" not in audit_actions(world)


def test_generate_codes_accepts_the_bounds_and_today_as_expiry():
    world = admin_world()
    assert len(generate_codes(world.core, ADMIN, count=MAX_COUNT)) == MAX_COUNT
    (big,) = generate_codes(world.core, ADMIN, uses=MAX_USES)
    assert big.max_uses == MAX_USES
    # Today (START is 2026-01-01 12:00 UTC) is still good until midnight.
    (today,) = generate_codes(world.core, ADMIN, expires_on=START.date())
    assert today.expires_at == datetime(2026, 1, 2, tzinfo=UTC)
    assert len(world.state.codes) == MAX_COUNT + 2


def test_only_admins_generate_codes_and_the_refusal_is_audited():
    world = admin_world()
    with pytest.raises(NotAllowed, match=r"^Not allowed"):
        generate_codes(world.core, USER, count=5)
    assert world.state.codes == {}
    refused = refusals(world)
    assert [(a.actor, a.target, a.details["command"]) for a in refused] == [
        (f"user:{USER}", "gencode", "gencode")
    ]


def test_secret_codes_carry_at_least_60_bits_in_an_unambiguous_alphabet():
    world = admin_world()
    world.core.ids = SecretIds()

    made = generate_codes(world.core, ADMIN, count=MAX_COUNT)

    assert CODE_BITS >= 60
    assert not set("0O1IL") & set(CODE_ALPHABET)
    assert len(set(CODE_ALPHABET)) == len(CODE_ALPHABET)
    texts = [c.code for c in made]
    assert len(set(texts)) == MAX_COUNT
    for text in texts:
        assert set(text) <= set(CODE_ALPHABET)
        assert len(text) * math.log2(len(CODE_ALPHABET)) >= 60
        # what a user types must survive normalisation unchanged
        assert normalise_code(text) == text
    # each code is fresh randomness: no two share a long common prefix by construction
    assert len({t[:8] for t in texts}) == MAX_COUNT


def test_a_secret_code_activates_typed_in_lower_case_with_dashes():
    world = admin_world()
    world.core.ids = SecretIds()
    (code,) = generate_codes(world.core, ADMIN)
    typed = "-".join(code.code[i : i + 4] for i in range(0, len(code.code), 4)).lower()

    assert activate_user(world.core, USER, f"  {typed} ").activated
    assert stored_code(world, code.code).uses == 1


# --- list_codes ---------------------------------------------------------------------------
def test_list_codes_shows_newest_first_with_uses():
    world = admin_world()
    first = new_code(world, uses=2)
    second = new_code(world, uses=1)
    third = new_code(world, uses=5)
    activate_user(world.core, 7, first)
    activate_user(world.core, 8, first)
    activate_user(world.core, 9, third)

    listed = list_codes(world.core, ADMIN)

    assert [(c.code, c.uses, c.max_uses) for c in listed] == [
        (third, 1, 5),
        (second, 0, 1),
        (first, 2, 2),
    ]
    assert listed[2].last_used_at == START


def test_list_codes_limit_is_clamped():
    world = admin_world()
    for _ in range(3):
        generate_codes(world.core, ADMIN, count=MAX_COUNT)  # 150 codes

    assert len(list_codes(world.core, ADMIN, limit=2)) == 2
    assert len(list_codes(world.core, ADMIN, limit=0)) == 1
    assert len(list_codes(world.core, ADMIN, limit=-7)) == 1
    assert len(list_codes(world.core, ADMIN, limit=1000)) == 100
    default = list_codes(world.core, ADMIN)
    assert len(default) == 20
    assert [c.id for c in default] == list(range(150, 130, -1))


def test_only_admins_list_codes_and_the_refusal_is_audited():
    world = admin_world()
    new_code(world)
    with pytest.raises(NotAllowed, match=r"^Not allowed"):
        list_codes(world.core, STRANGER)
    assert [(a.actor, a.details["command"]) for a in refusals(world)] == [
        (f"user:{STRANGER}", "codes")
    ]


# --- activate_user ------------------------------------------------------------------------
def test_activation_with_a_good_code_activates_and_uses_it():
    world = admin_world()
    code = new_code(world)
    world.clock.advance(minutes=3)

    result = activate_user(world.core, USER, code)

    assert result.activated and not result.already and result.refusal == ""
    user = stored_user(world)
    assert user.activated_at == START + timedelta(minutes=3)
    stored = stored_code(world, code)
    assert user.activated_with == str(stored.id)  # the code's id, never the code
    assert stored.uses == 1 and stored.last_used_at == START + timedelta(minutes=3)
    assert failed_attempts(world) == 0


def test_activating_twice_says_already_and_uses_nothing():
    world = admin_world()
    code = new_code(world, uses=3)
    activate_user(world.core, USER, code)

    again = activate_user(world.core, USER, code)
    with_garbage = activate_user(world.core, USER, "not a code at all")

    assert again.activated and again.already
    assert with_garbage.already
    assert stored_code(world, code).uses == 1
    assert failed_attempts(world) == 0
    assert audit_actions(world).count("user_activated") == 1


def test_a_banned_user_cannot_activate_and_nothing_is_used_or_counted():
    world = admin_world()
    code = new_code(world)
    see_user(world.core, USER)
    ban_user(world.core, ADMIN, USER)

    with pytest.raises(NotEligible, match=r"^Your account is banned\. Contact the operator\.$"):
        activate_user(world.core, USER, code)

    assert not stored_user(world).activated
    assert stored_code(world, code).uses == 0
    assert failed_attempts(world) == 0


def test_a_wrong_code_is_refused_counted_and_committed():
    world = admin_world()
    code = new_code(world)

    with pytest.raises(Refused) as refused:
        activate_user(world.core, USER, "WRONGCODE123")

    assert str(refused.value) == WRONG_CODE
    assert failed_attempts(world) == 1
    # The refusal rolled nothing back: the user row created on first contact is kept too.
    assert stored_user(world) is not None and not stored_user(world).activated
    assert stored_code(world, code).uses == 0
    failed = [a for a in world.state.audit if a.action == "activation_failed"]
    assert [(a.actor, a.target) for a in failed] == [(f"user:{USER}", f"user:{USER}")]


@pytest.mark.parametrize("text", ["", "   ", "abc", "x" * 41, "CODE 0000 0001", "ＣＯＤＥ00000001"])
def test_text_that_cannot_be_a_code_is_refused_and_counted(text):
    world = admin_world()
    new_code(world)
    with pytest.raises(Refused, match="not valid"):
        activate_user(world.core, USER, text)
    assert failed_attempts(world) == 1
    assert not stored_user(world).activated


def test_the_fifth_wrong_code_locks_even_a_good_code_until_the_window_passes():
    world = admin_world()
    code = new_code(world)
    for i in range(5):
        world.clock.advance(seconds=30)
        with pytest.raises(Refused, match="not valid"):
            activate_user(world.core, USER, f"WRONGCODE{i:03d}")
    assert failed_attempts(world) == 5

    with pytest.raises(Refused) as locked:
        activate_user(world.core, USER, code)

    assert str(locked.value) == "Too many wrong codes. Try again in 10 minutes."
    assert not stored_user(world).activated
    assert stored_code(world, code).uses == 0
    assert failed_attempts(world) == 5  # the locked attempt is not counted again

    # Another user is not locked by this one's failures.
    other_code = new_code(world)
    assert activate_user(world.core, 8, other_code).activated

    world.clock.advance(minutes=11)
    assert activate_user(world.core, USER, code).activated
    assert stored_code(world, code).uses == 1


def test_the_window_slides_failures_older_than_it_stop_counting():
    world = admin_world()
    code = new_code(world)
    for i in range(4):
        with pytest.raises(Refused, match="not valid"):
            activate_user(world.core, USER, f"WRONGCODE{i:03d}")
    world.clock.advance(minutes=9)
    with pytest.raises(Refused, match="not valid"):
        activate_user(world.core, USER, "WRONGCODE999")  # 5 in the window now
    with pytest.raises(Refused, match="Too many"):
        activate_user(world.core, USER, code)

    world.clock.advance(minutes=1, seconds=1)  # the first four fell out; one remains
    assert activate_user(world.core, USER, code).activated


def test_the_limit_follows_the_policy():
    world = admin_world(activation_attempts=2, activation_window_minutes=60)
    code = new_code(world)
    for _ in range(2):
        with pytest.raises(Refused, match="not valid"):
            activate_user(world.core, USER, "WRONGCODE000")
    with pytest.raises(Refused, match=r"^Too many wrong codes\. Try again in 60 minutes\.$"):
        activate_user(world.core, USER, code)
    world.clock.advance(minutes=59)
    with pytest.raises(Refused, match="Too many"):
        activate_user(world.core, USER, code)
    world.clock.advance(minutes=2)
    assert activate_user(world.core, USER, code).activated


def test_an_expired_code_is_refused_and_counted():
    world = admin_world()
    code = new_code(world, uses=5, expires_on=START.date())
    assert activate_user(world.core, 8, code).activated  # still good today

    world.clock.advance(hours=12)  # 2026-01-02 00:00: the day it named is over

    with pytest.raises(Refused) as refused:
        activate_user(world.core, USER, code)
    assert str(refused.value) == WRONG_CODE
    assert failed_attempts(world) == 1
    assert stored_code(world, code).uses == 1
    assert not stored_user(world).activated


def test_a_used_up_code_is_refused_and_counted():
    world = admin_world()
    code = new_code(world, uses=2)
    assert activate_user(world.core, 7, code).activated
    assert activate_user(world.core, 8, code).activated

    with pytest.raises(Refused) as refused:
        activate_user(world.core, 9, code)

    assert str(refused.value) == WRONG_CODE
    assert stored_code(world, code).uses == 2
    assert failed_attempts(world, 9) == 1
    assert not stored_user(world, 9).activated


@pytest.mark.parametrize(
    "typed",
    [
        "code000000000001",
        "CODE-0000-0000-0001",
        "code-0000-0000-0001",
        "  Code000000000001\n",
        "C-O-D-E-000000000001",
    ],
)
def test_code_entry_ignores_case_dashes_and_surrounding_space(typed):
    world = admin_world()
    code = new_code(world)
    assert code == "CODE000000000001"  # SequentialIds: the first id of this world

    assert activate_user(world.core, USER, typed).activated
    assert stored_code(world, code).uses == 1


# --- the audit log ------------------------------------------------------------------------
def test_every_admin_action_and_money_event_is_audited_without_the_code_text():
    world = admin_world()
    made = generate_codes(world.core, ADMIN, uses=2, count=2, expires_on=date(2026, 2, 1))
    texts = [c.code for c in made]
    see_user(world.core, USER, "alice", "Alice")
    with pytest.raises(Refused):
        activate_user(world.core, USER, texts[1][:-1] + "X")  # a near miss
    activate_user(world.core, USER, texts[0].lower())
    activate_user(world.core, 8, texts[1])
    paid_order(world, 100_00)
    ban_user(world.core, ADMIN, 8)
    unban_user(world.core, ADMIN, 8)
    list_codes(world.core, ADMIN)

    by_action = {a.action: a for a in world.state.audit}
    generated = by_action["codes_generated"]
    assert generated.actor == f"admin:{ADMIN}"
    assert generated.details["count"] == 2 and generated.details["uses"] == 2
    assert generated.details["code_ids"] == [c.id for c in made]
    assert generated.details["expires_at"] == "2026-02-02T00:00:00+00:00"
    activated = [a for a in world.state.audit if a.action == "user_activated"]
    assert [(a.actor, a.details["code_id"]) for a in activated] == [
        (f"user:{USER}", made[0].id),
        ("user:8", made[1].id),
    ]
    assert by_action["activation_failed"].actor == f"user:{USER}"
    assert by_action["user_banned"].target == "user:8"
    assert by_action["user_unbanned"].target == "user:8"
    assert by_action["order_opened"].actor == f"user:{USER}"
    assert by_action["report_credit"].details["to_state"] == 2

    everything = repr(world.state.audit).upper()
    for text in texts:
        assert text not in everything
        assert text[:-1] not in everything  # nor the near miss typed by the user
    # Nor is the code kept on the user: only its id.
    assert stored_user(world).activated_with == str(made[0].id)
