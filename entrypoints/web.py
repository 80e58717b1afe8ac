"""The callback service: Starlette on Hypercorn. It translates; the core decides.

POST /notify answers in the provider's own protocol (text/plain `success` or `fail`):
200 when verified and applied, already applied, or recorded for review; 401 for a missing or
wrong signature or another merchant; 400 for malformed input; 404 for an unknown order; 413
for a body over 64 KiB; 503 when the database does not answer (the provider retries). Never
a 500 page or a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from adapters.provider.notify import NotifyMalformed, NotifySignatureInvalid, parse_notify
from entrypoints import metrics
from entrypoints.bootstrap import FlamePay
from flamepay.apply_report import Outcome, ReportResult
from flamepay.check_health import check_health
from flamepay.confirm_by_query import confirm_by_query
from flamepay.errors import (
    FlamePayError,
    ProviderError,
    StorageUnavailable,
    TransactionConflict,
)
from flamepay.receive_notify import receive_notify
from flamepay.record_refused_notify import (
    BAD_SIGNATURE,
    MALFORMED,
    OTHER_MERCHANT,
    alarm_on_refused_signatures,
    record_refused_notify,
)
from flamepay.report import ProviderReport, ReportSource

log = logging.getLogger("flamepay.notify")

MAX_BODY = 64 * 1024
FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "cf-connecting-ip")


def _text(body: str, status: int) -> PlainTextResponse:
    return PlainTextResponse(body, status_code=status)


class NotifyHandler:
    def __init__(self, app: FlamePay, before_commit: Callable[[], None] | None = None) -> None:
        self.app = app
        settings = app.settings
        self.allowed = [ipaddress.ip_network(n) for n in settings.notify_allowed_ips]
        self.proxies = [ipaddress.ip_network(n) for n in settings.trusted_proxies]
        # Runs inside each notify's transaction before it commits: injected only by drills
        # (tests/helpers/slow_commits.py); the product leaves it None.
        self.before_commit = before_commit

    def client_ip(self, request: Request) -> str:
        peer = request.client.host if request.client else ""
        if self.proxies and _in(peer, self.proxies):
            # Only a trusted proxy may tell us who is behind it: the last hop it appended.
            forwarded = request.headers.get("x-forwarded-for", "")
            hops = [h.strip() for h in forwarded.split(",") if h.strip()]
            if hops:
                return hops[-1]
        return peer

    async def __call__(self, request: Request) -> Response:
        started = time.perf_counter()
        result, number = await self._handle(request)
        status, body = RESULTS[result]
        metrics.NOTIFY_OUTCOMES.labels(result).inc()
        metrics.NOTIFY_SECONDS.observe(time.perf_counter() - started)
        log.info("notify result=%s order=%s status=%s", result, number or "-", status)
        return _text(body, status)

    async def _handle(self, request: Request) -> tuple[str, str | None]:
        remote = self.client_ip(request)
        if self.allowed and not _in(remote, self.allowed):
            return "forbidden_ip", None
        declared = request.headers.get("content-length")
        # ASCII digits only: '²'.isdigit() is true and int() would then raise.
        if declared and not (
            declared.isascii() and declared.isdigit() and int(declared) <= MAX_BODY
        ):
            return "too_large", None
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return "too_large", None
        try:
            notify = parse_notify(
                body,
                request.headers.get("content-type", ""),
                request.scope.get("query_string", b""),
                self.app.notify_keys,
            )
        except NotifySignatureInvalid:
            await self._record(None, BAD_SIGNATURE, remote, {})
            await self._run(self._signature_alarm)
            return BAD_SIGNATURE, None
        except NotifyMalformed:
            await self._record(None, MALFORMED, remote, {})
            return MALFORMED, None
        report = notify.report
        fields = {k: str(v)[:200] for k, v in notify.fields.items()}
        if report.merchant != self.app.merchant.mch_no:
            # Another merchant's notify, signed with a key we hold (a shared key): refused
            # before the core, and nothing is flagged.
            await self._record(report.mch_order_no, OTHER_MERCHANT, remote, fields)
            return OTHER_MERCHANT, report.mch_order_no
        source = ReportSource.NOTIFY
        if self.app.settings.provider.verify_notify_by_query:
            try:
                report = await self._gateway(
                    self.app.core.provider.query_order, report.mch_order_no
                )
            except ProviderError:
                return "query_failed", report.mch_order_no
            source = ReportSource.QUERY
        try:
            result = await self._run(self._apply, report, source, remote, fields)
        except (StorageUnavailable, TransactionConflict):
            return "unavailable", report.mch_order_no
        except FlamePayError:
            log.exception("notify order=%s failed in the core", report.mch_order_no)
            return "unavailable", report.mch_order_no
        if result.outcome is Outcome.UNKNOWN_ORDER:
            return "unknown_order", report.mch_order_no
        if result.outcome is Outcome.NEEDS_QUERY:
            # The notify would lift a block on the user's money (release a dispute), and it
            # may be a replay: only the gateway's own answer, asked now, may do that. With no
            # answer, 503: the gateway sends the notify again and the reconciler asks too.
            try:
                result = await self._gateway(confirm_by_query, self.app.core, report.mch_order_no)
            except ProviderError:
                return "query_failed", report.mch_order_no
            except (StorageUnavailable, TransactionConflict):
                return "unavailable", report.mch_order_no
        if result.decision is not None and result.decision.move.credits:
            metrics.CREDITS.inc()
        return RESULT_OF_OUTCOME[result.outcome], report.mch_order_no

    def _apply(
        self, report: ProviderReport, source: ReportSource, remote: str, fields: dict[str, str]
    ) -> ReportResult:
        return receive_notify(self.app.core, report, source, remote, fields, self.before_commit)

    def _signature_alarm(self) -> None:
        # Best effort, like the log line it counts.
        with contextlib.suppress(FlamePayError):
            alarm_on_refused_signatures(self.app.core)

    async def _record(self, number: str | None, outcome: str, remote: str, fields: dict) -> None:
        # Best effort: a refused delivery must not fail because the log cannot be written.
        with contextlib.suppress(FlamePayError):
            await self._run(record_refused_notify, self.app.core, number, outcome, remote, fields)

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Database work only; a gateway call here would let a slow gateway starve notify."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.app.executor, lambda: fn(*args))

    async def _gateway(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Every call to the gateway (verify-by-query, and any later query): its own executor,
        so a hung gateway never holds a thread that notify's database work needs."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.app.gateway_executor, lambda: fn(*args))


RESULTS = {
    "applied": (200, "success"),
    "already_applied": (200, "success"),
    "review": (200, "success"),
    "bad_signature": (401, "fail"),
    "other_merchant": (401, "fail"),
    "malformed": (400, "fail"),
    "unknown_order": (404, "fail"),
    "too_large": (413, "fail"),
    "forbidden_ip": (403, "fail"),
    "unavailable": (503, "fail"),
    "query_failed": (503, "fail"),
}
RESULT_OF_OUTCOME = {
    Outcome.APPLIED: "applied",
    Outcome.UNCHANGED: "already_applied",
    Outcome.REVIEW: "review",
    Outcome.UNDER_REVIEW: "review",
    # Asked about by confirm_by_query, which never answers NEEDS_QUERY itself (its report
    # answers a query); listed for totality.
    Outcome.NEEDS_QUERY: "already_applied",
}


def _in(address: str, networks: list) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def build_web_app(
    app: FlamePay,
    on_shutdown: Callable[[], None] | None = None,
    before_commit: Callable[[], None] | None = None,
) -> Starlette:
    """`before_commit` is handed to the notify handler (drills only; see NotifyHandler)."""
    notify = NotifyHandler(app, before_commit)

    async def health(request: Request) -> Response:
        try:
            await asyncio.wait_for(notify._run(check_health, app.core), timeout=5)
        except Exception:
            return JSONResponse(
                {
                    "status": "error",
                    "database": "unreachable",
                    "installation": app.installation.kind,
                },
                status_code=503,
            )
        return JSONResponse(
            {"status": "ok", "database": "ok", "installation": app.installation.kind}
        )

    async def metrics_endpoint(request: Request) -> Response:
        peer = request.client.host if request.client else ""
        forwarded = any(h in request.headers for h in FORWARDING_HEADERS)
        if forwarded or not _loopback(peer):
            # A tunnel or proxy in front of /notify must not expose the numbers.
            return _text("not found", 404)
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @contextlib.asynccontextmanager
    async def lifespan(starlette: Starlette):
        try:
            yield
        finally:
            if on_shutdown is not None:
                on_shutdown()

    async def notify_endpoint(request: Request) -> Response:
        try:
            return await notify(request)
        except Exception:
            log.exception("notify failed unexpectedly")
            return _text("fail", 503)

    routes = [
        Route("/notify", notify_endpoint, methods=["POST"]),
        Route("/healthz", health, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def create_app() -> Starlette:
    """For Hypercorn workers (`flamepay web --workers N`): settings from .env and the
    environment, the app built through the composition root."""
    from entrypoints.bootstrap import build
    from entrypoints.logs import configure_app_logging, configure_logging
    from entrypoints.settings import gather, load_settings

    settings = load_settings(gather(), need_bot=False)
    # A worker is a process of its own (spawned by Hypercorn): it sets up the logging of
    # `flamepay run` itself, or its notify lines are lost and nothing in it is redacted.
    configure_logging(settings.log_level, settings.secrets())
    flamepay = build(settings)
    configure_app_logging(flamepay)
    return build_web_app(flamepay, on_shutdown=flamepay.close)
