"""What the bot asks before a guided flow: the account's state, through the core's rules."""

from __future__ import annotations

import pytest

from flamepay.account_status import known_user, require_active_user
from flamepay.activate_user import activate_user
from flamepay.ban_user import ban_user
from flamepay.eligibility import BANNED, NOT_ACTIVATED
from flamepay.errors import NotEligible
from flamepay.generate_codes import generate_codes
from flamepay.see_user import see_user
from tests.helpers.core_checks import ADMIN, USER, rules_world


def test_a_user_must_be_activated_and_not_banned() -> None:
    world = rules_world()
    assert known_user(world.core, USER) is None
    with pytest.raises(NotEligible, match=NOT_ACTIVATED):
        require_active_user(world.core, USER)
    see_user(world.core, USER, "alice")
    activate_user(world.core, USER, generate_codes(world.core, ADMIN)[0].code)
    require_active_user(world.core, USER)  # no refusal
    assert known_user(world.core, USER).activated
    ban_user(world.core, ADMIN, USER)
    with pytest.raises(NotEligible, match=BANNED):
        require_active_user(world.core, USER)
