"""Issue 15 fault 1 at the notify endpoint, over real Hypercorn on MariaDB: a replayed
success notify on a disputed order is checked with the gateway before anything is released."""

from __future__ import annotations

import httpx
import pytest

from entrypoints.serving import serving
from entrypoints.web import build_web_app
from flamepay.apply_report import apply_provider_report
from flamepay.order import OrderState
from flamepay.report import ReportSource
from tests.helpers.web_support import notify_fields, open_orders, wire


@pytest.mark.mysql
def test_a_replayed_success_notify_on_a_disputed_order_is_checked_with_the_gateway(
    mysql_database,
):
    """Issue 15 fault 1: POST /notify with the payer's kept success notify released a
    dispute. Now the endpoint asks the gateway (outside the transaction, on the gateway's
    executor): while it says 7 nothing is released; with no answer it says 503 so the
    notify comes again; once it says 2 the same notify releases."""
    app = wire(mysql_database.config)
    try:
        (number,) = open_orders(app, 1)
        kept = notify_fields(app, number, state=2)
        fake = app.core.provider
        fake.pay(number)
        fake.set_state(number, OrderState.DISPUTED)
        with serving(build_web_app(app)) as url:

            def post():
                return httpx.post(f"{url}/notify", data=kept, timeout=10)

            assert post().text == "success"  # the first delivery credits
            apply_provider_report(app.core, fake.report(number), ReportSource.RECONCILE)
            assert _state(app, number) is OrderState.DISPUTED

            replay = post()
            assert (replay.status_code, replay.text) == (200, "success")
            assert _state(app, number) is OrderState.DISPUTED
            assert ("query", number) in fake.calls

            fake.query_timeouts = 1
            silent = post()
            assert (silent.status_code, silent.text) == (503, "fail")
            assert _state(app, number) is OrderState.DISPUTED

            fake.set_state(number, OrderState.SUCCESS)
            released = post()
            assert (released.status_code, released.text) == (200, "success")
            assert _state(app, number) is OrderState.SUCCESS
    finally:
        app.close()


def _state(app, number) -> OrderState:
    with app.core.uow() as uow:
        return uow.orders.get_by_number(number).state
