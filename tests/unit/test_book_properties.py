"""Properties of code redemption and of keyset paging, driven by Hypothesis.

(a) An access code with `uses` uses, tried by any number of distinct users, lets exactly
    min(uses, users) of them in: in turn, and with real threads racing on the in-memory
    adapter (whose unit of work holds the store's lock, like rows locked FOR UPDATE).
(b) Paging a user's history by key returns every entry that existed when the first page was
    read exactly once, newest first, however many entries are posted between page reads.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flamepay import ledger
from flamepay.activate_user import WRONG_CODE, activate_user
from flamepay.adjust_balance import adjust_balance
from flamepay.errors import Refused
from flamepay.generate_codes import generate_codes
from flamepay.see_user import see_user
from flamepay.user_history import user_history
from tests.helpers.support import World, make_world

ADMIN = 1
HEAVY = 7  # the user whose history is paged
OTHER = 8  # another user whose entries must never show up
FIRST_USER = 100


def try_activate(world: World, user_id: int, code: str) -> bool:
    """True when this call let the user in; False for the one refusal a used-up code gives."""
    try:
        result = activate_user(world.core, user_id, code)
    except Refused as refused:
        assert str(refused) == WRONG_CODE
        return False
    assert result.activated and not result.already
    return True


def check_redemption(world: World, code: str, uses: int, users: int, wins: list[bool]) -> None:
    expected = min(uses, users)
    assert sum(wins) == expected
    stored = world.state.codes[world.state.code_index[code]]
    assert stored.uses == expected
    activated = [u for u in world.state.users.values() if u.activated]
    assert len(activated) == expected
    assert {u.activated_with for u in activated} <= {str(stored.id)}
    assert len(world.state.failed_activations) == users - expected
    audited = [a for a in world.state.audit if a.action == "user_activated"]
    assert len(audited) == expected


# --- (a) code redemption ------------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(
    uses=st.integers(1, 5),
    users=st.integers(1, 15),
    retries=st.lists(st.integers(0, 14), max_size=10),
)
def test_a_code_lets_in_exactly_min_of_uses_and_users(uses, users, retries):
    world = make_world(admins=frozenset({ADMIN}))
    (code,) = generate_codes(world.core, ADMIN, uses=uses)

    wins = [try_activate(world, FIRST_USER + i, code.code) for i in range(users)]

    # Users who got in and try again are told so and use nothing.
    for index in retries:
        if index < users and wins[index]:
            assert activate_user(world.core, FIRST_USER + index, code.code).already
    check_redemption(world, code.code, uses, users, wins)
    # The winners are the first `uses` users in turn.
    assert wins == [i < uses for i in range(users)]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(uses=st.integers(1, 5), users=st.integers(1, 15))
def test_a_code_lets_in_exactly_min_of_uses_and_users_when_they_race(uses, users):
    world = make_world(admins=frozenset({ADMIN}))
    (code,) = generate_codes(world.core, ADMIN, uses=uses)
    barrier = threading.Barrier(users)

    def attempt(user_id: int) -> bool:
        barrier.wait(timeout=10)  # all users press the button at once
        return try_activate(world, user_id, code.code)

    with ThreadPoolExecutor(max_workers=16) as pool:
        wins = list(pool.map(attempt, [FIRST_USER + i for i in range(users)]))

    check_redemption(world, code.code, uses, users, wins)


# --- (b) keyset paging under concurrent inserts -------------------------------------------
READ = "read"

steps = st.lists(
    st.one_of(
        st.just(READ),
        st.tuples(st.sampled_from([HEAVY, OTHER]), st.integers(1, 4)),  # post n credits
    ),
    max_size=40,
)


def heavy_entry_ids(world: World) -> list[int]:
    mine = {ledger.available(HEAVY), ledger.held(HEAVY)}
    return [e.id for e in world.state.entries if e.account in mine]


@settings(max_examples=150, deadline=None)
@given(initial=st.integers(0, 30), size=st.integers(1, 7), script=steps)
def test_paging_returns_each_entry_once_in_order_while_entries_are_posted(initial, size, script):
    world = make_world(admins=frozenset({ADMIN}))
    see_user(world.core, HEAVY)
    see_user(world.core, OTHER)
    posted = 0

    def post(user_id: int, n: int) -> None:
        nonlocal posted
        for _ in range(n):
            posted += 1
            adjust_balance(world.core, ADMIN, user_id, posted, f"credit {posted}")

    post(HEAVY, initial)
    post(OTHER, initial // 3)

    existed: list[int] | None = None  # the heavy user's entries when the first page is read
    cursor: int | None = None
    pages = []
    done = False

    def read_page() -> None:
        nonlocal existed, cursor, done
        if existed is None:
            existed = heavy_entry_ids(world)
        page = user_history(world.core, HEAVY, before=cursor, size=size)
        pages.append(page)
        if page.next_before is None:
            done = True
        else:
            assert page.next_before == page.items[-1].id
            cursor = page.next_before

    for step in script:
        if step == READ:
            if not done:
                read_page()
        else:
            post(*step)
    while not done:  # finish the walk
        read_page()
        assert len(pages) <= 200, "paging does not end"

    read = [line.id for page in pages for line in page.items]
    assert len(read) == len(set(read)), "an entry was shown twice"
    assert read == sorted(read, reverse=True), "not newest first"
    assert set(read) == set(existed), "pages must hold exactly what existed at the first read"
    assert all(len(page.items) == size for page in pages[:-1])
    assert len(pages[-1].items) <= size
    assert all(line.account == ledger.available(HEAVY) for p in pages for line in p.items)
    # What was posted meanwhile is there for a fresh walk to find, newest first.
    fresh = user_history(world.core, HEAVY, size=100)
    assert [line.id for line in fresh.items] == sorted(heavy_entry_ids(world), reverse=True)[:100]
