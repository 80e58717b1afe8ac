-- When each order was last reconciled (asked about at the provider by a job). A job claims an
-- order with one conditional UPDATE of this column, so several job runners never ask about the
-- same order in the same interval, and an order is asked about at most once per interval.

ALTER TABLE orders ADD COLUMN reconciled_at DATETIME(6) NULL;
CREATE INDEX orders_reconcile ON orders (state, review, reconciled_at);
