"""The core's exceptions. Messages are safe to show to the person who caused them."""

from __future__ import annotations


class FlamePayError(Exception):
    """Base of every error the core raises on purpose."""


class Refused(FlamePayError):
    """A request the rules do not allow; the message says why and nothing changed."""


class InvalidAmount(Refused, ValueError):
    """Text that is not an acceptable amount."""


class NotFound(Refused):
    """The thing named does not exist (or is not the caller's to see)."""


class NotEligible(Refused):
    """The user may not do this now (not activated, banned, limits)."""


class InsufficientFunds(Refused):
    """A journal would take an account that must stay non-negative below zero."""

    def __init__(self, account: str) -> None:
        super().__init__("The available balance is too low for this.")
        self.account = account


class AlreadyDone(FlamePayError):
    """An idempotency key was seen before: the work was done already, not repeated."""

    def __init__(self, key: str) -> None:
        super().__init__(f"already done: {key}")
        self.key = key


class AlreadyResolved(Refused):
    """A payout or review that was resolved before; the message says how."""


class RetryableConflict(FlamePayError):
    """A deadlock, lock wait timeout or busy database: the whole transaction may be re-run."""


class TransactionConflict(FlamePayError):
    """run_in_transaction gave up after its bounded number of attempts."""


class ProviderError(FlamePayError):
    """Base of the ProviderGateway's typed errors."""


class ProviderTimeout(ProviderError):
    """No answer in time: the outcome at the provider is unknown."""


class ProviderRejected(ProviderError):
    """The provider answered with code != 0."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"provider refused (code {code}): {message}")
        self.code = code
        self.message = message


class ProviderMerchantError(ProviderRejected):
    """The provider refused our merchant credentials (merchant number, app, key or sign).

    Not about any order: every call fails the same way until the settings are fixed, so no
    order may be failed or closed because of it.
    """


class ProviderUnknownOrder(ProviderError):
    """The provider does not know this order."""


class ProviderBadResponse(ProviderError):
    """Unparseable, unsigned or badly signed when a signature is required."""


class NotifierError(FlamePayError):
    """Base of the Notifier's typed errors."""


class RecipientBlocked(NotifierError):
    """The user blocked the bot (Telegram's 403): stop retrying, mark the user."""


class RateLimited(NotifierError):
    """Telegram's 429: wait `retry_after` seconds, then send again."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited for {retry_after} s")
        self.retry_after = retry_after


class StorageUnavailable(FlamePayError):
    """The database does not answer; the caller may try later (notify answers 503)."""
