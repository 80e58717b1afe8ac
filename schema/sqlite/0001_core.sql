-- FlamePay core schema for SQLite (the embedded default). The same tables, keys and checks
-- as schema/mysql/0001_core.sql. Keys are stored as BLOBs: 'ab', 'AB' and 'ab ' differ.

CREATE TABLE installation (
  id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
  kind TEXT NOT NULL CHECK (kind IN ('sandbox', 'live')),
  merchant_no TEXT NULL,
  merchant_key BLOB NULL,
  created_at TEXT NOT NULL
);

CREATE TABLE users (
  id INTEGER NOT NULL PRIMARY KEY CHECK (id > 0),
  username TEXT NOT NULL DEFAULT '',
  name TEXT NOT NULL DEFAULT '',
  first_seen TEXT NULL,
  activated_at TEXT NULL,
  activated_with TEXT NULL,
  banned_at TEXT NULL,
  banned_by INTEGER NULL,
  blocked_bot_at TEXT NULL
);

CREATE TABLE access_codes (
  id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
  code BLOB NOT NULL UNIQUE,
  max_uses INTEGER NOT NULL,
  uses INTEGER NOT NULL DEFAULT 0,
  created_by INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  expires_at TEXT NULL,
  last_used_at TEXT NULL,
  CHECK (max_uses > 0 AND uses >= 0 AND uses <= max_uses)
);

CREATE TABLE activation_attempts (
  id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL,
  at TEXT NOT NULL
);
CREATE INDEX activation_attempts_user_at ON activation_attempts (user_id, at);

CREATE TABLE gateways (
  way_code BLOB NOT NULL PRIMARY KEY,
  title TEXT NOT NULL,
  enabled INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE packages (
  id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
  way_code BLOB NOT NULL REFERENCES gateways (way_code),
  label TEXT NOT NULL,
  amount INTEGER NOT NULL CHECK (amount > 0),
  sort_order INTEGER NOT NULL DEFAULT 0,
  enabled INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX packages_way ON packages (way_code, sort_order, id);

CREATE TABLE orders (
  id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
  mch_order_no BLOB NOT NULL UNIQUE,
  provider_order_no BLOB NULL UNIQUE,
  user_id INTEGER NOT NULL,
  package_id INTEGER NOT NULL,
  way_code BLOB NOT NULL,
  amount INTEGER NOT NULL CHECK (amount > 0),
  currency TEXT NOT NULL,
  fee_bp INTEGER NOT NULL CHECK (fee_bp BETWEEN 0 AND 10000),
  state INTEGER NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 7),
  review TEXT NOT NULL DEFAULT 'none',
  cashier_url TEXT NULL,
  created_at TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  updated_at TEXT NULL
);
CREATE INDEX orders_user ON orders (user_id, id);
CREATE INDEX orders_user_state ON orders (user_id, state);
CREATE INDEX orders_open_expiry ON orders (state, review, expires_at);
CREATE INDEX orders_state_updated ON orders (state, updated_at);

CREATE TABLE accounts (
  id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
  name BLOB NOT NULL UNIQUE,
  user_id INTEGER NULL,
  aclass TEXT NOT NULL,
  balance INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX accounts_user ON accounts (user_id);

CREATE TABLE journals (
  id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
  jkey BLOB NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  user_id INTEGER NULL,
  order_id INTEGER NULL,
  payout_id INTEGER NULL,
  memo TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL
);
CREATE INDEX journals_kind ON journals (kind, id);
CREATE INDEX journals_order ON journals (order_id);

CREATE TABLE ledger_entries (
  id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
  journal_id INTEGER NOT NULL REFERENCES journals (id),
  account_id INTEGER NOT NULL REFERENCES accounts (id),
  amount INTEGER NOT NULL CHECK (amount <> 0),
  created_at TEXT NOT NULL
);
CREATE INDEX ledger_entries_account ON ledger_entries (account_id, id);
CREATE INDEX ledger_entries_journal ON ledger_entries (journal_id);

CREATE TABLE payouts (
  id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL,
  amount INTEGER NOT NULL CHECK (amount > 0),
  network TEXT NOT NULL,
  address TEXT NOT NULL,
  network_fee INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL DEFAULT 'pending',
  created_at TEXT NOT NULL,
  resolved_by INTEGER NULL,
  resolved_at TEXT NULL,
  txid BLOB NULL UNIQUE,
  note TEXT NOT NULL DEFAULT '',
  CHECK (network_fee >= 0 AND network_fee < amount)
);
CREATE INDEX payouts_user ON payouts (user_id, id);
CREATE INDEX payouts_status ON payouts (status, id);

CREATE TABLE reviews (
  id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
  rkey BLOB NOT NULL UNIQUE,
  order_id INTEGER NOT NULL,
  kind TEXT NOT NULL,
  reason TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'open',
  created_at TEXT NOT NULL,
  resolved_by INTEGER NULL,
  resolved_at TEXT NULL,
  note TEXT NOT NULL DEFAULT '',
  report TEXT NOT NULL
);
CREATE INDEX reviews_status ON reviews (status, id);
CREATE INDEX reviews_order ON reviews (order_id);

CREATE TABLE audit_log (
  id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  details TEXT NOT NULL,
  at TEXT NOT NULL
);
CREATE INDEX audit_target ON audit_log (target, id);
CREATE INDEX audit_at ON audit_log (at);

CREATE TABLE callback_events (
  id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
  mch_order_no BLOB NULL,
  outcome TEXT NOT NULL,
  remote TEXT NOT NULL,
  fields TEXT NOT NULL,
  at TEXT NOT NULL
);
CREATE INDEX callback_events_order ON callback_events (mch_order_no, id);
CREATE INDEX callback_events_at ON callback_events (at);

CREATE TABLE outbox (
  id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
  audience TEXT NOT NULL,
  kind TEXT NOT NULL,
  text TEXT NOT NULL,
  user_id INTEGER NULL,
  ref TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL,
  sent_at TEXT NULL,
  attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_pending ON outbox (sent_at, id);
