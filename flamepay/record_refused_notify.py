"""A notify refused before the core (bad signature, malformed, another merchant's): the
delivery is logged with its outcome, and a burst of bad signatures raises one alarm."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from flamepay.alerts import raise_alert
from flamepay.context import Core
from flamepay.ports import UnitOfWork
from flamepay.records import CallbackEvent

BAD_SIGNATURE = "bad_signature"
MALFORMED = "malformed"
OTHER_MERCHANT = "other_merchant"
# This many refused signatures within the window most likely mean a wrong PROVIDER_KEY.
SIGNATURE_BURST = 5
SIGNATURE_WINDOW = timedelta(minutes=10)


def record_refused_notify(
    core: Core, mch_order_no: str | None, outcome: str, remote: str, fields: Mapping[str, str]
) -> None:
    def body(uow: UnitOfWork) -> None:
        uow.callback_events.record(CallbackEvent(mch_order_no, outcome, remote, fields, core.now()))

    core.transaction(body)


def alarm_on_refused_signatures(core: Core) -> bool:
    """SIGNATURE_BURST or more refused signatures within SIGNATURE_WINDOW: then nobody is
    being credited. Raised at most once per ALERT_INTERVAL_MINUTES; True when this call
    raised it."""
    since = core.now() - SIGNATURE_WINDOW
    count = core.transaction(lambda uow: uow.callback_events.count(BAD_SIGNATURE, since))
    if count < SIGNATURE_BURST:
        return False
    return raise_alert(
        core,
        BAD_SIGNATURE,
        f"{count} notifies were refused for their "
        "signature in 10 minutes: check PROVIDER_KEY; nobody is being "
        "credited while it is wrong.",
    )
