"""The ProviderGateway over HTTP: one pooled httpx.Client, signed JSON, typed errors.

Query and close are safe to repeat, so transport errors and 5xx answers are retried with
exponential backoff and jitter, bounded in attempts and in total time. Create is never
retried: the gateway refuses a second create for the same number, and a timeout means the
outcome is unknown, which the core resolves with a query.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import tenacity

from adapters.provider import signing
from adapters.provider.dialects import (
    CLOSE_PATH,
    QUERY_PATH,
    Dialect,
    Merchant,
    is_merchant_refusal,
    is_unknown_order_refusal,
    report_from,
)
from flamepay.errors import (
    ProviderBadResponse,
    ProviderMerchantError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnknownOrder,
)
from flamepay.ports import CreateOrderRequest
from flamepay.report import ProviderReport

FAILURE_STREAK = 5  # provider calls failing in a row before the admins are told
MESSAGE_LIMIT = 200  # characters of a gateway's refusal kept in the error (admins read it)
REDACTED = "***"


class _Retryable(Exception):
    """A transport error or 5xx on a call that may be repeated."""

    def __init__(self, cause: str, timeout: bool) -> None:
        super().__init__(cause)
        self.timeout = timeout


def _is_loopback_http(base_url: str) -> bool:
    parts = urlsplit(base_url)
    return parts.hostname in ("127.0.0.1", "localhost", "::1")


class HttpProviderGateway:
    def __init__(
        self,
        base_url: str,
        dialect: Dialect,
        merchant: Merchant,
        timeout_seconds: float = 15,
        require_query_sign: bool = False,
        attempts: int = 3,
        max_retry_seconds: float = 20,
        transport: httpx.BaseTransport | None = None,
        clock_ms: Callable[[], int] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.dialect = dialect
        self.merchant = merchant
        self.require_query_sign = require_query_sign
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self._retry = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retryable),
            wait=tenacity.wait_random_exponential(multiplier=0.2, max=3),
            stop=tenacity.stop_after_attempt(attempts)
            | tenacity.stop_after_delay(max_retry_seconds),
            sleep=sleep,
            reraise=True,
        )
        # One pooled client for the process. Certificates are checked except on loopback.
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout_seconds),
            verify=not _is_loopback_http(base_url),
            transport=transport,
            headers={"Content-Type": "application/json; charset=UTF-8"},
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
        )
        self.calls = 0  # HTTP requests sent, for tests and metrics
        self.failures_in_a_row = 0
        # Told once when FAILURE_STREAK calls in a row fail (the fault alert hooks in here).
        self.on_failure_streak: Callable[[int], None] | None = None
        # Told of every HTTP call: (call name, seconds, failed). The metrics hook in here.
        self.on_call: Callable[[str, float, bool], None] | None = None

    def close(self) -> None:
        self._http.close()

    # --- the port ---------------------------------------------------------------------------------
    def create_order(self, request: CreateOrderRequest) -> ProviderReport:
        body = self.dialect.create_body(self.merchant, request)
        try:
            data = self._call(self.dialect.create_path, body, require_sign=False)
        except _Retryable as error:
            # Never retried: the gateway may have stored the order. The core will query.
            raise ProviderTimeout(f"create: outcome unknown ({error})") from None
        return report_from(data, request.mch_order_no)

    def query_order(
        self, mch_order_no: str, provider_order_no: str | None = None
    ) -> ProviderReport:
        """`provider_order_no`: the order's provider number when it has one; an answer naming
        another one (or another mchOrderNo) is a ProviderBadResponse."""
        data = self._repeatable(QUERY_PATH, {"mchOrderNo": mch_order_no}, self.require_query_sign)
        return report_from(data, mch_order_no, provider_order_no)

    def close_order(self, mch_order_no: str) -> None:
        self._repeatable(CLOSE_PATH, {"mchOrderNo": mch_order_no}, require_sign=False)

    # --- transport ------------------------------------------------------------------------------
    def _repeatable(self, path: str, body: dict[str, Any], require_sign: bool) -> dict[str, Any]:
        try:
            return self._retry(self._call, path, body, require_sign)
        except _Retryable as error:
            if error.timeout:
                raise ProviderTimeout(f"{path}: no answer ({error})") from None
            raise ProviderBadResponse(f"{path}: {error}") from None

    def _call(self, path: str, fields: dict[str, Any], require_sign: bool) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            data = self._exchange(path, fields, require_sign)
        except (_Retryable, ProviderBadResponse):
            self._observe(path, started, failed=True)
            self.failures_in_a_row += 1
            if self.failures_in_a_row == FAILURE_STREAK and self.on_failure_streak is not None:
                self.on_failure_streak(self.failures_in_a_row)
            raise
        except Exception:
            self._observe(path, started, failed=True)  # a refusal (code != 0), or worse
            raise
        self._observe(path, started, failed=False)
        self.failures_in_a_row = 0
        return data

    def _observe(self, path: str, started: float, failed: bool) -> None:
        if self.on_call is not None:
            name = {self.dialect.create_path: "create", QUERY_PATH: "query", CLOSE_PATH: "close"}
            self.on_call(name.get(path, path), time.perf_counter() - started, failed)

    def _exchange(self, path: str, fields: dict[str, Any], require_sign: bool) -> dict[str, Any]:
        body = {**self.dialect.common(self.merchant, self._clock_ms()), **fields}
        payload = json.dumps(signing.signed(body, self.merchant.key), ensure_ascii=False)
        self.calls += 1
        try:
            response = self._http.post(path, content=payload.encode("utf-8"))
        except httpx.TimeoutException as error:
            raise _Retryable(type(error).__name__, timeout=True) from None
        except httpx.TransportError as error:
            raise _Retryable(type(error).__name__, timeout=True) from None
        if response.status_code >= 500:
            raise _Retryable(f"HTTP {response.status_code}", timeout=False)
        if response.status_code != 200:
            raise ProviderBadResponse(f"{path}: HTTP {response.status_code}")
        return self._envelope(path, response, require_sign)

    def _redacted(self, message: str) -> str:
        """The gateway's text, safe for the admins: on one line, short, and with our key and
        merchant number replaced should the gateway echo our request back."""
        text = " ".join(message.split())
        for secret in sorted({self.merchant.key, self.merchant.mch_no}, key=len, reverse=True):
            if secret and len(secret) >= 4:
                text = text.replace(secret, REDACTED)
        return text[:MESSAGE_LIMIT]

    def _envelope(self, path: str, response: httpx.Response, require_sign: bool) -> dict[str, Any]:
        try:
            envelope = response.json()
        except (ValueError, UnicodeDecodeError):
            raise ProviderBadResponse(f"{path}: the answer is not JSON") from None
        code = envelope.get("code") if isinstance(envelope, Mapping) else None
        if isinstance(code, bool) or not isinstance(code, int):
            raise ProviderBadResponse(f"{path}: the answer has no envelope")
        if code != 0:
            raw = str(envelope.get("msg") or "")[:4000]
            message = self._redacted(raw)
            # Merchant-level first: "商户不存在" also says 不存在, and it is about no order.
            if is_merchant_refusal(raw):
                raise ProviderMerchantError(code, message)
            if path != self.dialect.create_path and is_unknown_order_refusal(code, raw):
                raise ProviderUnknownOrder(message)
            raise ProviderRejected(code, message)
        data = envelope.get("data")
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ProviderBadResponse(f"{path}: data is not an object")
        signature = envelope.get("sign")
        # When a response carries a sign, it signs the data object alone.
        if (signature is not None or require_sign) and not signing.verify(
            data, self.merchant.key, signature
        ):
            raise ProviderBadResponse(f"{path}: the answer's signature is missing or wrong")
        return dict(data)
