"""The one composition root: settings in, a wired application out.

Every entry point (the callback app, the bot, the jobs, the command) and the end-to-end
tests build FlamePay through `build`, so what is tested is what runs. Nothing connects at
import; `build` reads the installation row, which is the first connection.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs

from adapters.installation import read_installation
from adapters.mysql import MySqlDatabase
from adapters.provider.client import HttpProviderGateway
from adapters.provider.dialects import DIALECTS, Merchant
from adapters.sql.migrate import Installation
from adapters.sql.uow import Database, SqlUnitOfWorkFactory
from adapters.sqlite import SqliteDatabase
from adapters.system import SecretIds, SystemClock
from entrypoints import metrics
from entrypoints.settings import Settings
from flamepay.alerts import DEFAULT_INTERVAL_MINUTES, raise_alert
from flamepay.context import Core
from flamepay.eligibility import AccountRules
from flamepay.errors import FlamePayError
from flamepay.policy import PaymentPolicy
from flamepay.ports import Clock, Eligibility, IdGenerator, ProviderGateway, UnitOfWorkFactory

# Threads for use cases that call the gateway (open an order, Check status, cancel, reconcile,
# expiry, verify-by-query). They wait on the network, not the CPU or the database, so a hung
# gateway fills this executor and only this one: notify and the bot's database work keep
# theirs. Calls beyond this many wait in this executor's own queue.
GATEWAY_WORKERS = 8


class StartupError(Exception):
    """FlamePay cannot start with these settings and this database; the message says why."""


@attrs.define
class FlamePay:
    settings: Settings
    database: Database
    installation: Installation
    core: Core
    provider: HttpProviderGateway
    merchant: Merchant
    provider_base_url: str
    # Two executors, never mixed: `executor` runs pure database work (notify, the bot's reads
    # and writes, the outbox) and is sized to MYSQL_POOL_SIZE; `gateway_executor` runs every
    # use case that calls the gateway (BotBase.gateway, NotifyHandler._gateway, the jobs), so
    # a slow gateway can never take a thread notify needs. The pool holds both (see build).
    executor: ThreadPoolExecutor
    gateway_executor: ThreadPoolExecutor

    @property
    def sandbox(self) -> bool:
        return self.installation.kind == "sandbox"

    @property
    def notify_keys(self) -> tuple[str, ...]:
        """PROVIDER_KEY (or the sandbox key), then PROVIDER_KEY_PREVIOUS during a rotation,
        until the end of PROVIDER_KEY_PREVIOUS_UNTIL: the clock decides at each notify."""
        provider = self.settings.provider
        previous = provider.key_previous if provider.previous_key_in_force(self.core.now()) else ""
        return tuple(k for k in (self.merchant.key, previous) if k)

    def close(self) -> None:
        self.provider.close()
        self.gateway_executor.shutdown(wait=True, cancel_futures=True)
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.database.close()


def build_core(
    uow: UnitOfWorkFactory,
    provider: ProviderGateway,
    policy: PaymentPolicy,
    *,
    clock: Clock | None = None,
    ids: IdGenerator | None = None,
    eligibility: Eligibility | None = None,
    admin_ids: frozenset[int] = frozenset(),
    alert_interval_minutes: int = DEFAULT_INTERVAL_MINUTES,
) -> Core:
    """The core over the adapters it is given: production passes the SQL unit of work and
    the HTTP gateway (through `build`), the simulators and the tests their own. The system
    clock, secret ids and the account rules unless told otherwise."""
    clock = clock or SystemClock()
    core = Core(
        uow=uow,
        provider=provider,
        clock=clock,
        ids=ids or SecretIds(),
        policy=policy,
        # The rules read the policy in force (an admin may change limits at run time).
        eligibility=eligibility or AccountRules(clock, lambda: core.policy),
        admin_ids=admin_ids,
        alert_interval_minutes=alert_interval_minutes,
    )
    return core


def open_database(settings: Settings) -> Database:
    if settings.storage.mysql is not None:
        return MySqlDatabase(settings.storage.mysql)
    return SqliteDatabase(Path(settings.storage.sqlite_path))


def pool_size(settings: Settings) -> int:
    return settings.storage.mysql.pool_size if settings.storage.mysql else 4


def build(settings: Settings, database: Database | None = None) -> FlamePay:
    database = database or open_database(settings)
    # Every executor thread may hold one connection at a time (gateway threads only for their
    # short transactions, never across a provider call), so the pool holds one per thread of
    # both: a notify's database thread never waits on a connection a gateway thread took.
    reserve = getattr(database, "reserve", None)
    if reserve is not None:
        reserve(pool_size(settings) + GATEWAY_WORKERS)
    installation = read_installation(database)
    if installation.kind != settings.installation_kind:
        raise StartupError(
            f"this database is a {installation.kind} installation but PROVIDER_BASE_URL makes "
            f"this a {settings.installation_kind} one; use another database or fix the setting"
        )
    provider_settings = settings.provider
    if provider_settings.is_sandbox:
        # The sandbox runs in-process on its own loopback port; its merchant number and key
        # are the installation's unless PROVIDER_MCH_NO / PROVIDER_KEY say otherwise.
        base_url = f"http://{settings.sandbox_host}:{settings.sandbox_port}"
        mch_no = provider_settings.mch_no or installation.merchant_no or ""
        key = provider_settings.key or installation.merchant_key or ""
    else:
        base_url = provider_settings.base_url
        mch_no, key = provider_settings.mch_no, provider_settings.key
    notify_url = (
        settings.notify_url or f"http://{settings.webhook_host}:{settings.webhook_port}/notify"
    )
    merchant = Merchant(
        mch_no=mch_no,
        key=key,
        app_id=provider_settings.app_id,
        client_ip=provider_settings.client_ip,
        notify_url=notify_url,
        return_url=settings.return_url,
    )
    provider = HttpProviderGateway(
        base_url,
        DIALECTS[provider_settings.dialect],
        merchant,
        timeout_seconds=provider_settings.timeout_seconds,
        require_query_sign=provider_settings.require_response_sign,
    )
    core = build_core(
        SqlUnitOfWorkFactory(database),
        provider,
        attrs.evolve(settings.policy, merchant_no=mch_no),
        admin_ids=settings.admin_ids,
        alert_interval_minutes=settings.alert_interval_minutes,
    )

    def provider_failing(count: int) -> None:
        with contextlib.suppress(FlamePayError):
            raise_alert(
                core,
                "provider_failing",
                f"{count} calls to the gateway failed in a "
                f"row ({base_url}); orders cannot be opened or checked.",
            )

    provider.on_failure_streak = provider_failing
    provider.on_call = metrics.observe_provider_call
    executor = ThreadPoolExecutor(max_workers=pool_size(settings), thread_name_prefix="flamepay-db")
    gateway_executor = ThreadPoolExecutor(
        max_workers=GATEWAY_WORKERS, thread_name_prefix="flamepay-gateway"
    )
    return FlamePay(
        settings,
        database,
        installation,
        core,
        provider,
        merchant,
        base_url,
        executor,
        gateway_executor,
    )
