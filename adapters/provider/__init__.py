"""The Jeepay-family gateway: signer, dialects, the httpx client and notify parsing."""
