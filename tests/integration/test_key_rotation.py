"""Issue 15 fault 9: a weak previous key. PROVIDER_KEY_PREVIOUS was accepted on a live
installation whatever its length, and verified notifies for ever; it now follows
PROVIDER_KEY's rules and can be given an end, PROVIDER_KEY_PREVIOUS_UNTIL, which the clock
checks at each notify (the last day, UTC, it is accepted)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import httpx
import pytest

from entrypoints import commands
from entrypoints.serving import serving
from entrypoints.settings import SettingsError, load_settings
from entrypoints.web import build_web_app
from tests.helpers.settings_values import LIVE
from tests.helpers.web_support import ROOT, notify_fields, open_orders, settings_values, wire

PREVIOUS = "previous-key-0123456789"  # 23 characters: a real key's length
PREVIOUS_LINE = (
    "PROVIDER_KEY_PREVIOUS: a live gateway needs the previous merchant key in full, at least "
    "16 characters (or leave it empty)"
)
UNTIL_LINE = (
    "PROVIDER_KEY_PREVIOUS_UNTIL: expected a date as YYYY-MM-DD, the last day (UTC) the "
    "previous key is accepted"
)


def problems(values: dict[str, str]) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_settings(values)
    return caught.value.problems


@pytest.mark.parametrize("app_env", ["development", "production"])
def test_issue15_fault9_live_refuses_a_short_previous_key(app_env: str) -> None:
    """Issue 15 fault 9: a live installation took a PROVIDER_KEY_PREVIOUS of any length."""
    values = {**LIVE, "APP_ENV": app_env, "SQLITE_PATH": "var/p.sqlite3"}
    short = "SECRETprevious1"  # 15 characters
    refused = problems({**values, "PROVIDER_KEY_PREVIOUS": short})
    assert refused == [PREVIOUS_LINE]
    assert short not in "\n".join(refused)
    assert load_settings({**values, "PROVIDER_KEY_PREVIOUS": "x" * 16}).provider.key_previous
    assert load_settings(values).provider.key_previous == ""  # empty: no rotation, fine
    # The sandbox generates its own key; a previous key there is not a live one.
    sandbox = {k: v for k, v in LIVE.items() if k not in ("PROVIDER_KEY", "NOTIFY_URL")}
    sandbox.update(PROVIDER_BASE_URL="sandbox", PROVIDER_KEY_PREVIOUS="short")
    assert load_settings(sandbox).provider.key_previous == "short"


@pytest.mark.parametrize(
    "raw",
    [
        "2026-1-01",
        "2026-02-30",
        "20260101",
        "2026-01-01T00:00",
        "tomorrow",
        "01/02/2026",
        "２０２６-01-01",
        "2026-13-01",
        "+2026-01-01",
    ],
)
def test_issue15_fault9_previous_until_is_parsed_strictly(raw: str) -> None:
    """Issue 15 fault 9: PROVIDER_KEY_PREVIOUS_UNTIL is a date, YYYY-MM-DD, and nothing else."""
    assert problems(
        {**LIVE, "PROVIDER_KEY_PREVIOUS": PREVIOUS, "PROVIDER_KEY_PREVIOUS_UNTIL": raw}
    ) == [UNTIL_LINE]


def test_issue15_fault9_previous_until_names_its_day_and_needs_the_key() -> None:
    """Issue 15 fault 9: the date is read as the last day the previous key is accepted, and
    an end without a previous key to end is refused (it would silently mean nothing)."""
    settings = load_settings(
        {**LIVE, "PROVIDER_KEY_PREVIOUS": PREVIOUS, "PROVIDER_KEY_PREVIOUS_UNTIL": " 2026-01-31 "}
    )
    provider = settings.provider
    assert provider.key_previous_until == date(2026, 1, 31)
    last = datetime(2026, 1, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert provider.previous_key_in_force(last)
    assert not provider.previous_key_in_force(last + timedelta(microseconds=1))
    # Read in UTC: 01:00 on Feb 1 at UTC+2 is still Jan 31 in UTC.
    plus_two = timezone(timedelta(hours=2))
    assert provider.previous_key_in_force(datetime(2026, 2, 1, 1, 0, tzinfo=plus_two))
    assert (
        load_settings({**LIVE, "PROVIDER_KEY_PREVIOUS": PREVIOUS}).provider.key_previous_until
        is None
    )
    assert problems({**LIVE, "PROVIDER_KEY_PREVIOUS_UNTIL": "2026-01-31"}) == [
        "PROVIDER_KEY_PREVIOUS_UNTIL: set it only together with PROVIDER_KEY_PREVIOUS (the key "
        "it ends)"
    ]


class SettableClock:
    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at


@pytest.mark.mysql
def test_issue15_fault9_after_the_until_date_only_provider_key_verifies(mysql_database) -> None:
    """Issue 15 fault 9: notifies signed with PROVIDER_KEY_PREVIOUS were accepted for ever.
    Before the end of PROVIDER_KEY_PREVIOUS_UNTIL both keys verify; after it, decided by the
    clock at each notify in the running app, the previous key is refused 401 and
    PROVIDER_KEY (here the sandbox installation's key) is still accepted."""
    until = datetime.now(UTC).date() + timedelta(days=1)
    app = wire(
        mysql_database.config,
        PROVIDER_KEY_PREVIOUS=PREVIOUS,
        PROVIDER_KEY_PREVIOUS_UNTIL=until.isoformat(),
    )
    clock = SettableClock(datetime.combine(until, time(23, 59, 59), tzinfo=UTC))
    app.core.clock = clock
    before_old, before_new, after_old, after_new = open_orders(app, 4)
    try:
        with serving(build_web_app(app)) as url:

            def post(number: str, key: str | None) -> tuple[int, str]:
                response = httpx.post(
                    f"{url}/notify", data=notify_fields(app, number, key=key), timeout=10
                )
                return response.status_code, response.text

            assert app.notify_keys[1:] == (PREVIOUS,)  # (no key shown if this fails)
            assert post(before_old, PREVIOUS) == (200, "success")
            assert post(before_new, None) == (200, "success")
            clock.at = datetime.combine(until + timedelta(days=1), time(0, 0), tzinfo=UTC)
            assert PREVIOUS not in app.notify_keys and len(app.notify_keys) == 1
            assert post(after_old, PREVIOUS) == (401, "fail")
            assert post(after_new, None) == (200, "success")
    finally:
        app.close()


@pytest.mark.mysql
def test_issue15_fault9_start_up_says_once_that_the_previous_key_has_ended(
    mysql_database, monkeypatch, capsys
) -> None:
    """Issue 15 fault 9: start-up gave no sign that the previous key had ended; it now says
    so in one line naming the setting, never the key."""
    values = settings_values(
        mysql_database.config,
        PROVIDER_KEY_PREVIOUS=PREVIOUS,
        PROVIDER_KEY_PREVIOUS_UNTIL="2001-02-03",
    )
    monkeypatch.setenv("FLAMEPAY_ENV_FILE", str(ROOT / "tests/data/empty.env"))
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    app, code = commands._startup(need_bot=False)
    assert code is None
    try:
        assert PREVIOUS not in app.notify_keys and len(app.notify_keys) == 1
    finally:
        app.close()
    captured = capsys.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if line.strip()]
    assert lines == [
        "warning: PROVIDER_KEY_PREVIOUS_UNTIL 2001-02-03 has passed: notifies signed with "
        "PROVIDER_KEY_PREVIOUS are refused; remove PROVIDER_KEY_PREVIOUS"
    ]
    assert PREVIOUS not in captured.out + captured.err
    # A date still to come is said once too, as a reminder, without the key.
    monkeypatch.setenv("PROVIDER_KEY_PREVIOUS_UNTIL", "2999-12-31")
    app, code = commands._startup(need_bot=False)
    app.close()
    captured = capsys.readouterr()
    assert (captured.out + captured.err).strip() == (
        "PROVIDER_KEY_PREVIOUS is accepted on notifies until the end of 2999-12-31 (UTC)"
    )
