"""Stand-ins for what FlamePay talks to, kept out of the product.

The sandbox gateway (PROVIDER_BASE_URL=sandbox), the Telegram Bot API emulator, the loopback
stack that wires them to the real bot and callback app, and the offline demo. The product
imports this package only lazily: where `flamepay run` and `flamepay sandbox` start the
sandbox, and where `flamepay demo` runs.
"""
