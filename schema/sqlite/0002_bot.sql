-- The bot's bookkeeping: which Telegram messages carry a copy of something (every admin's
-- copy of a payout request, so all of them can be edited when it is resolved), and when each
-- fault alert was last sent (at most once per ALERT_INTERVAL_MINUTES, across processes).

CREATE TABLE message_copies (
  id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
  ref BLOB NOT NULL,
  chat_id INTEGER NOT NULL,
  message_id INTEGER NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX message_copies_ref ON message_copies (ref, id);

CREATE TABLE alerts (
  akey BLOB NOT NULL PRIMARY KEY,
  last_at TEXT NOT NULL
);
