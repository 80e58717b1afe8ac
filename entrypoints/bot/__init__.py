"""The Telegram bot: a thin translator over the use cases (parse, call, reply)."""
