"""What the core does with the gateway's own words and with a refusal of our credentials.

A gateway's refusal text is for the admins only (users get our own sentences): on one line,
cut short, with the merchant number replaced (the adapter has already replaced the key).
A merchant-level refusal (wrong merchant number, app, key or sign) is about no order: the
callers change nothing and the admins get one fault alert, rate-limited like every alert.
"""

from __future__ import annotations

from flamepay.alerts import raise_alert
from flamepay.context import Core
from flamepay.errors import ProviderRejected

TEXT_LIMIT = 200
MERCHANT_ALERT_KEY = "provider_merchant"


def gateway_text(message: str, merchant_no: str = "") -> str:
    text = " ".join(message.split())
    if merchant_no and len(merchant_no) >= 4:
        text = text.replace(merchant_no, "***")
    return text[:TEXT_LIMIT]


def describe_refusal(core: Core, error: ProviderRejected) -> str:
    """'code 9999: <the gateway's message>', safe for the admins' chat."""
    return f"code {error.code}: {gateway_text(error.message, core.policy.merchant_no)}"


def merchant_fault(core: Core, error: ProviderRejected, during: str) -> bool:
    """Raise the fault alert for a refusal of our merchant credentials (True when sent)."""
    return raise_alert(
        core,
        MERCHANT_ALERT_KEY,
        f"the gateway refused our merchant credentials during {during} "
        f"({describe_refusal(core, error)}). Check PROVIDER_MCH_NO, PROVIDER_KEY and, for "
        "jeepay, PROVIDER_APP_ID. No order was changed; the sweeps stop until it is fixed.",
    )
