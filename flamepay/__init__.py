"""FlamePay: the payment core (stdlib + attrs only)."""

__version__ = "0.1.0"
