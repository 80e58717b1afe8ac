-- (mysql) "Credited in total" kept on each user's available account, in the same transaction
-- as the entries (like the balance), so /balance reads two rows however long the history.
-- ledger-check proves it against the pay-in and refund entries.

ALTER TABLE accounts ADD COLUMN credited BIGINT NOT NULL DEFAULT 0;
UPDATE accounts SET credited = (
  SELECT COALESCE(SUM(e.amount), 0) FROM ledger_entries e
  JOIN journals j ON j.id = e.journal_id
  WHERE e.account_id = accounts.id AND j.kind IN ('payin', 'refund')
) WHERE aclass = 'user:available';
