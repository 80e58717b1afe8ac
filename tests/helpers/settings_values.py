"""Settings as the environment gives them: the smallest sandbox set and a live one."""

GOOD_TOKEN = "123456789:AAE_valid-token-with-enough-chars"
BASE = {"BOT_TOKEN": GOOD_TOKEN, "ADMIN_IDS": "123456789", "PROVIDER_BASE_URL": "sandbox"}
LIVE = {
    **BASE,
    "PROVIDER_BASE_URL": "https://pay.example.com",
    "PROVIDER_KEY": "k" * 24,
    "PROVIDER_MCH_NO": "M100",
    "NOTIFY_URL": "https://bot.example.com/notify",
}
