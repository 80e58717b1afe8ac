-- (sqlite) Alerts held back within ALERT_INTERVAL_MINUTES are counted, so the audit log and the
-- next alert sent for the same key say how often it repeated (a replayed report must not
-- flood the admins, and must not vanish either).

ALTER TABLE alerts ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
