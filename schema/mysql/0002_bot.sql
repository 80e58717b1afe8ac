-- The bot's bookkeeping: which Telegram messages carry a copy of something (every admin's
-- copy of a payout request, so all of them can be edited when it is resolved), and when each
-- fault alert was last sent (at most once per ALERT_INTERVAL_MINUTES, across processes).

CREATE TABLE message_copies (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  ref VARBINARY(96) NOT NULL,
  chat_id BIGINT NOT NULL,
  message_id BIGINT NOT NULL,
  created_at DATETIME(6) NOT NULL,
  KEY message_copies_ref (ref, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE alerts (
  akey VARBINARY(64) NOT NULL PRIMARY KEY,
  last_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
