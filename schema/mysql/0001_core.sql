-- FlamePay core schema (MySQL 8 / MariaDB 10.6+). Money is BIGINT cents.
-- Idempotency keys and order numbers are VARBINARY, so 'ab', 'AB' and 'ab ' are three keys
-- (MariaDB's plain _bin collations pad trailing spaces; VARBINARY does not).

CREATE TABLE installation (
  id TINYINT NOT NULL PRIMARY KEY,
  kind VARCHAR(16) NOT NULL,
  merchant_no VARCHAR(64) NULL,
  merchant_key VARBINARY(128) NULL,
  created_at DATETIME(6) NOT NULL,
  CONSTRAINT installation_single CHECK (id = 1),
  CONSTRAINT installation_kind CHECK (kind IN ('sandbox', 'live'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE users (
  id BIGINT NOT NULL PRIMARY KEY,
  username VARCHAR(64) NOT NULL DEFAULT '',
  name VARCHAR(128) NOT NULL DEFAULT '',
  first_seen DATETIME(6) NULL,
  activated_at DATETIME(6) NULL,
  activated_with VARCHAR(32) NULL,
  banned_at DATETIME(6) NULL,
  banned_by BIGINT NULL,
  blocked_bot_at DATETIME(6) NULL,
  CONSTRAINT users_positive CHECK (id > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE access_codes (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  code VARBINARY(64) NOT NULL,
  max_uses INT NOT NULL,
  uses INT NOT NULL DEFAULT 0,
  created_by BIGINT NOT NULL,
  created_at DATETIME(6) NOT NULL,
  expires_at DATETIME(6) NULL,
  last_used_at DATETIME(6) NULL,
  UNIQUE KEY access_codes_code (code),
  CONSTRAINT access_codes_uses CHECK (max_uses > 0 AND uses >= 0 AND uses <= max_uses)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE activation_attempts (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id BIGINT NOT NULL,
  at DATETIME(6) NOT NULL,
  KEY activation_attempts_user_at (user_id, at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE gateways (
  way_code VARBINARY(32) NOT NULL PRIMARY KEY,
  title VARCHAR(64) NOT NULL,
  enabled TINYINT(1) NOT NULL DEFAULT 1
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE packages (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  way_code VARBINARY(32) NOT NULL,
  label VARCHAR(64) NOT NULL,
  amount BIGINT NOT NULL,
  sort_order INT NOT NULL DEFAULT 0,
  enabled TINYINT(1) NOT NULL DEFAULT 1,
  KEY packages_way (way_code, sort_order, id),
  CONSTRAINT packages_gateway FOREIGN KEY (way_code) REFERENCES gateways (way_code),
  CONSTRAINT packages_amount CHECK (amount > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE orders (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  mch_order_no VARBINARY(64) NOT NULL,
  provider_order_no VARBINARY(64) NULL,
  user_id BIGINT NOT NULL,
  package_id BIGINT NOT NULL,
  way_code VARBINARY(32) NOT NULL,
  amount BIGINT NOT NULL,
  currency VARCHAR(8) NOT NULL,
  fee_bp INT NOT NULL,
  state TINYINT NOT NULL DEFAULT 0,
  review VARCHAR(16) NOT NULL DEFAULT 'none',
  cashier_url VARCHAR(1024) NULL,
  created_at DATETIME(6) NOT NULL,
  expires_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NULL,
  UNIQUE KEY orders_mch_order_no (mch_order_no),
  UNIQUE KEY orders_provider_order_no (provider_order_no),
  KEY orders_user (user_id, id),
  KEY orders_user_state (user_id, state),
  KEY orders_open_expiry (state, review, expires_at),
  KEY orders_state_updated (state, updated_at),
  CONSTRAINT orders_amount CHECK (amount > 0),
  CONSTRAINT orders_state CHECK (state BETWEEN 0 AND 7),
  CONSTRAINT orders_fee CHECK (fee_bp BETWEEN 0 AND 10000)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE accounts (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARBINARY(64) NOT NULL,
  user_id BIGINT NULL,
  aclass VARCHAR(32) NOT NULL,
  balance BIGINT NOT NULL DEFAULT 0,
  UNIQUE KEY accounts_name (name),
  KEY accounts_user (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE journals (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  jkey VARBINARY(96) NOT NULL,
  kind VARCHAR(16) NOT NULL,
  user_id BIGINT NULL,
  order_id BIGINT NULL,
  payout_id BIGINT NULL,
  memo VARCHAR(255) NOT NULL DEFAULT '',
  created_at DATETIME(6) NOT NULL,
  UNIQUE KEY journals_key (jkey),
  KEY journals_kind (kind, id),
  KEY journals_order (order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE ledger_entries (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  journal_id BIGINT NOT NULL,
  account_id BIGINT NOT NULL,
  amount BIGINT NOT NULL,
  created_at DATETIME(6) NOT NULL,
  KEY ledger_entries_account (account_id, id),
  KEY ledger_entries_journal (journal_id),
  CONSTRAINT ledger_entries_journal FOREIGN KEY (journal_id) REFERENCES journals (id),
  CONSTRAINT ledger_entries_account FOREIGN KEY (account_id) REFERENCES accounts (id),
  CONSTRAINT ledger_entries_nonzero CHECK (amount <> 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE payouts (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id BIGINT NOT NULL,
  amount BIGINT NOT NULL,
  network VARCHAR(8) NOT NULL,
  address VARCHAR(128) NOT NULL,
  network_fee BIGINT NOT NULL DEFAULT 0,
  status VARCHAR(16) NOT NULL DEFAULT 'pending',
  created_at DATETIME(6) NOT NULL,
  resolved_by BIGINT NULL,
  resolved_at DATETIME(6) NULL,
  txid VARBINARY(128) NULL,
  note VARCHAR(255) NOT NULL DEFAULT '',
  UNIQUE KEY payouts_txid (txid),
  KEY payouts_user (user_id, id),
  KEY payouts_status (status, id),
  CONSTRAINT payouts_amount CHECK (amount > 0),
  CONSTRAINT payouts_fee CHECK (network_fee >= 0 AND network_fee < amount)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE reviews (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  rkey VARBINARY(96) NOT NULL,
  order_id BIGINT NOT NULL,
  kind VARCHAR(16) NOT NULL,
  reason VARCHAR(512) NOT NULL,
  status VARCHAR(16) NOT NULL DEFAULT 'open',
  created_at DATETIME(6) NOT NULL,
  resolved_by BIGINT NULL,
  resolved_at DATETIME(6) NULL,
  note VARCHAR(255) NOT NULL DEFAULT '',
  report TEXT NOT NULL,
  UNIQUE KEY reviews_key (rkey),
  KEY reviews_status (status, id),
  KEY reviews_order (order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE audit_log (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  actor VARCHAR(64) NOT NULL,
  action VARCHAR(64) NOT NULL,
  target VARCHAR(128) NOT NULL,
  details TEXT NOT NULL,
  at DATETIME(6) NOT NULL,
  KEY audit_target (target, id),
  KEY audit_at (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE callback_events (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  mch_order_no VARBINARY(64) NULL,
  outcome VARCHAR(32) NOT NULL,
  remote VARCHAR(64) NOT NULL,
  fields TEXT NOT NULL,
  at DATETIME(6) NOT NULL,
  KEY callback_events_order (mch_order_no, id),
  KEY callback_events_at (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE outbox (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  audience VARCHAR(8) NOT NULL,
  kind VARCHAR(48) NOT NULL,
  text TEXT NOT NULL,
  user_id BIGINT NULL,
  ref VARCHAR(96) NOT NULL DEFAULT '',
  created_at DATETIME(6) NOT NULL,
  sent_at DATETIME(6) NULL,
  attempts INT NOT NULL DEFAULT 0,
  KEY outbox_pending (sent_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
