-- (SQLite) The reconciliation sweeps read a window of recent changes per state; this index makes each
-- sweep a range scan of that window, whatever the number of old orders.

CREATE INDEX orders_sweep ON orders (state, review, updated_at);
