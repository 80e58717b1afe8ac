"""The settings as values: what `load_settings` (entrypoints/settings.py) makes of `.env`
and the environment once every value has been parsed and checked. Secrets are repr=False."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import attrs

from adapters.mysql import MySqlConfig
from flamepay.policy import PaymentPolicy


@attrs.frozen
class StorageSettings:
    mysql: MySqlConfig | None
    sqlite_path: Path | None
    sqlite_path_explicit: bool


def installation_kind(provider_base_url: str) -> str:
    return "sandbox" if provider_base_url == "sandbox" else "live"


@attrs.frozen
class ProviderSettings:
    base_url: str  # 'sandbox' or the gateway's URL
    dialect: str
    mch_no: str
    key: str = attrs.field(repr=False)
    key_previous: str = attrs.field(repr=False)
    app_id: str
    client_ip: str
    timeout_seconds: int
    require_response_sign: bool
    verify_notify_by_query: bool
    key_previous_until: date | None = None  # the last day (UTC) key_previous is accepted

    @property
    def is_sandbox(self) -> bool:
        return self.base_url == "sandbox"

    def previous_key_in_force(self, now: datetime) -> bool:
        """Whether PROVIDER_KEY_PREVIOUS still verifies notifies at `now`. Asked at each
        notify, not at start-up, so a process running past the date stops accepting it."""
        if not self.key_previous:
            return False
        until = self.key_previous_until
        return until is None or now.astimezone(UTC).date() <= until


@attrs.frozen
class Settings:
    app_env: str
    bot_token: str = attrs.field(repr=False)
    admin_ids: frozenset[int]
    telegram_api_url: str
    storage: StorageSettings
    provider: ProviderSettings
    policy: PaymentPolicy
    notify_url: str
    return_url: str
    webhook_host: str
    webhook_port: int
    notify_allowed_ips: tuple[str, ...]
    trusted_proxies: tuple[str, ...]
    log_level: str
    reconcile_interval_seconds: int
    alert_interval_minutes: int
    sandbox_host: str
    sandbox_port: int
    sandbox_time_scale: int
    sandbox_late_success: bool = False
    sandbox_notify_failures: bool = False
    sandbox_duplicates: int = 1

    @property
    def production(self) -> bool:
        return self.app_env == "production"

    @property
    def installation_kind(self) -> str:
        return installation_kind(self.provider.base_url)

    def secrets(self) -> tuple[str, ...]:
        """Every secret value, for the log redaction filter."""
        token_secret = self.bot_token.split(":", 1)[1] if ":" in self.bot_token else ""
        values = [self.bot_token, token_secret, self.provider.key, self.provider.key_previous]
        if self.storage.mysql is not None:
            values.append(self.storage.mysql.password)
        return tuple(v for v in values if v)
