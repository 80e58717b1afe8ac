"""Logging: one line per event with key=value fields, and secrets redacted on every handler.

The HTTP client logs request URLs, and Telegram's API URLs contain the bot token; exceptions
can carry them too. The filter rewrites every record (message, arguments and traceback) with
each secret, and its URL-encoded form, replaced by ***.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from urllib.parse import quote

REDACTED = "***"
FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        forms = set()
        for secret in secrets:
            if secret and len(secret) >= 4:
                forms.update({secret, quote(secret, safe=""), quote(secret)})
        # Longest first, so a secret containing another is replaced whole.
        self.forms = sorted(forms, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for form in self.forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format: keep it readable
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = self.redact(message), ()
        if record.exc_info:
            formatter = logging.Formatter()
            record.exc_text = self.redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def configure_logging(level: str, secrets: Iterable[str], stream=None) -> RedactSecrets:
    """Root logging to stderr at `level`, every handler (present and the root's own)
    filtered. Returns the filter, for handlers added later (tests)."""
    redact = RedactSecrets(secrets)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(redact)
    root.addHandler(handler)
    root.setLevel(level)
    # Hypercorn and the HTTP clients are chatty at DEBUG; they are filtered like the rest.
    for name in ("httpx", "httpcore", "telegram", "hypercorn.error", "hypercorn.access"):
        logging.getLogger(name).propagate = True
    return redact


def configure_app_logging(app, stream=None) -> RedactSecrets:
    """`configure_logging` for a built FlamePay (every long-running process, each web worker):
    LOG_LEVEL, and every secret it holds, the sandbox's generated merchant key included."""
    settings = app.settings
    secrets = (*settings.secrets(), app.merchant.key, *app.notify_keys)
    return configure_logging(settings.log_level, secrets, stream)
