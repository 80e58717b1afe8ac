"""A user activates with an access code.

The code is redeemed with one conditional update (uses < max_uses and not expired), so a
one-use code given to twenty people at once lets exactly one in. Wrong codes are counted per
user in the store and limited, so codes cannot be guessed.
"""

from __future__ import annotations

from datetime import timedelta

import attrs

from flamepay.access_code import normalise_code
from flamepay.context import Core
from flamepay.errors import AlreadyDone, NotEligible, Refused, RetryableConflict
from flamepay.ports import UnitOfWork
from flamepay.user import User

WRONG_CODE = (
    "That code is not valid (unknown, used up or expired). Expected a code like ACDE3F4G7HJ9KM."
)


@attrs.frozen
class Activation:
    activated: bool
    already: bool = False
    refusal: str = ""


def activate_user(core: Core, user_id: int, code_text: str) -> Activation:
    policy = core.policy

    def body(uow: UnitOfWork) -> Activation:
        now = core.now()
        user = uow.users.get_for_update(user_id)
        if user is None:
            user = User(user_id, first_seen=now)
            try:
                uow.users.add(user)
            except AlreadyDone:
                # A first contact raced us; run again and find the stored user.
                raise RetryableConflict("user inserted concurrently") from None
        if user.banned:
            raise NotEligible("Your account is banned. Contact the operator.")
        if user.activated:
            return Activation(activated=True, already=True)
        since = now - timedelta(minutes=policy.activation_window_minutes)
        if uow.access_codes.count_failed_attempts(user_id, since) >= policy.activation_attempts:
            raise Refused(
                f"Too many wrong codes. Try again in {policy.activation_window_minutes} minutes."
            )
        code = normalise_code(code_text)
        redeemed = uow.access_codes.redeem(code, now) if code else None
        if redeemed is None:
            # Counted and committed: the refusal is returned, not raised, so it is kept.
            uow.access_codes.record_failed_attempt(user_id, now)
            core.audit(uow, f"user:{user_id}", "activation_failed", f"user:{user_id}")
            return Activation(activated=False, refusal=WRONG_CODE)
        user.activated_at = now
        user.activated_with = str(redeemed.id)
        uow.users.save(user)
        core.audit(uow, f"user:{user_id}", "user_activated", f"user:{user_id}", code_id=redeemed.id)
        return Activation(activated=True)

    result = core.transaction(body)
    if result.refusal:
        raise Refused(result.refusal)
    return result
