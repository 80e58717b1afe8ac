-- FlamePay's MySQL/MariaDB accounts, least privilege. Run as root, AFTER replacing every
-- '<change-me>' with a strong password of its own (or ALTER USER ... IDENTIFIED BY ... right
-- after). The application's grants name its tables, and MySQL refuses a grant on a table that
-- does not exist yet (error 1146), so a new installation takes three steps:
--
--     # 1. the migration and read-only accounts (everything above the application part)
--     sed '/^-- >>> application/,$d' deploy/mysql/grants.sql | mysql -uroot
--     # 2. the schema, as the migration account
--     MYSQL_USER=flamepay_migrate MYSQL_PASSWORD=... /opt/flamepay/.venv/bin/flamepay migrate
--     # 3. the whole file (the first part again changes nothing)
--     mysql -uroot < deploy/mysql/grants.sql
--
-- On a database that already has its tables (an upgrade, a restored backup) step 3 alone.
-- The database is named `flamepay` below (MYSQL_DATABASE=flamepay). For another name replace
-- every `flamepay`. (backquoted) with it, e.g. when a backup is restored into a new database:
--
--     sed 's/`flamepay`\./`flamepay_restored`./' deploy/mysql/grants.sql | mysql -uroot
--
-- Safe to run again: CREATE USER IF NOT EXISTS keeps an existing account and its password,
-- and GRANT only adds. Check the result with SHOW GRANTS FOR 'flamepay'@'localhost'.
--
-- 'localhost' matches a connection over the Unix socket, and over TCP to 127.0.0.1 only when
-- the server resolves 127.0.0.1 back to "localhost". FlamePay connects over TCP (MYSQL_HOST);
-- on a server with skip_name_resolve=ON (SELECT @@skip_name_resolve) write '127.0.0.1'
-- instead of 'localhost' everywhere below, and MYSQL_HOST=127.0.0.1 in .env.
-- MySQL 8 creates caching_sha2_password accounts: over a plain (non-TLS) TCP connection
-- PyMySQL then needs the `cryptography` package (pip install cryptography in the venv).
--
-- Three accounts:
--   flamepay          the application (flamepay run / bot / web / jobs): MYSQL_USER in .env
--   flamepay_migrate  `flamepay migrate` only, with the DDL rights:
--                       MYSQL_USER=flamepay_migrate MYSQL_PASSWORD=... flamepay migrate
--   flamepay_ro       read-only: `flamepay ledger-check` and deploy/backup/mysql-backup.sh

-- Migrations -----------------------------------------------------------------------------------
-- `flamepay migrate` creates the database if it is missing, creates and alters tables and
-- indexes with their foreign keys, and records each file in schema_migrations and the
-- installation row. Database-wide, so tables added by later migrations are covered.
-- No DROP and no DELETE: a future migration that needs them says so in its notes, and the
-- right is granted for that run and revoked afterwards.
CREATE USER IF NOT EXISTS 'flamepay_migrate'@'localhost' IDENTIFIED BY '<change-me>';
GRANT SELECT, INSERT, UPDATE, CREATE, ALTER, INDEX, REFERENCES ON `flamepay`.* TO 'flamepay_migrate'@'localhost';

-- Read-only: ledger-check and backups ---------------------------------------------------------
-- SELECT for ledger-check and mysqldump; LOCK TABLES and SHOW VIEW for mysqldump (LOCK TABLES
-- lets a dump without --single-transaction lock the tables for reading; it writes nothing).
-- mysqldump on MySQL 8 would also want the global PROCESS privilege for tablespace
-- information; mysql-backup.sh passes --no-tablespaces, so it is not granted. FlamePay has no
-- triggers; if one is ever added, also GRANT TRIGGER so that mysqldump --triggers sees it.
CREATE USER IF NOT EXISTS 'flamepay_ro'@'localhost' IDENTIFIED BY '<change-me>';
GRANT SELECT, LOCK TABLES, SHOW VIEW ON `flamepay`.* TO 'flamepay_ro'@'localhost';

-- >>> application: needs the tables, so after the first `flamepay migrate` ----------------------
-- Derived from the SQL in adapters/sql/*.py and adapters/installation.py: the application
-- never deletes a row (`grep -rn DELETE adapters/` finds nothing), never changes the schema,
-- and writes each table only as listed. The ledger (journals, ledger_entries), the audit log,
-- the callback log and the other logs are append-only for it: it cannot UPDATE or DELETE
-- them, so a bug or a stolen password cannot rewrite history through this account.
-- installation and schema_migrations are written by `flamepay migrate` only.
-- Every table the app locks with SELECT ... FOR UPDATE (users, orders, accounts, payouts,
-- reviews) also has UPDATE, which MySQL 8.0.22+ requires for a locking read.
-- A migration that adds a table must add its grant here (tests/test_deploy.py checks that
-- every table is listed).
CREATE USER IF NOT EXISTS 'flamepay'@'localhost' IDENTIFIED BY '<change-me>';
GRANT SELECT ON `flamepay`.`installation` TO 'flamepay'@'localhost';
GRANT SELECT, INSERT, UPDATE ON `flamepay`.`users` TO 'flamepay'@'localhost';
GRANT SELECT, INSERT, UPDATE ON `flamepay`.`access_codes` TO 'flamepay'@'localhost';
GRANT SELECT, INSERT ON `flamepay`.`activation_attempts` TO 'flamepay'@'localhost';
GRANT SELECT, INSERT, UPDATE ON `flamepay`.`gateways` TO 'flamepay'@'localhost';
GRANT SELECT, INSERT, UPDATE ON `flamepay`.`packages` TO 'flamepay'@'localhost';
GRANT SELECT, INSERT, UPDATE ON `flamepay`.`orders` TO 'flamepay'@'localhost';
GRANT SELECT, INSERT, UPDATE ON `flamepay`.`accounts` TO 'flamepay'@'localhost';
GRANT SELECT, INSERT ON `flamepay`.`journals` TO 'flamepay'@'localhost';
GRANT SELECT, INSERT ON `flamepay`.`ledger_entries` TO 'flamepay'@'localhost';
GRANT SELECT, INSERT, UPDATE ON `flamepay`.`payouts` TO 'flamepay'@'localhost';
GRANT SELECT, INSERT, UPDATE ON `flamepay`.`reviews` TO 'flamepay'@'localhost';
GRANT INSERT ON `flamepay`.`audit_log` TO 'flamepay'@'localhost';
GRANT SELECT, INSERT ON `flamepay`.`callback_events` TO 'flamepay'@'localhost';
GRANT SELECT, INSERT, UPDATE ON `flamepay`.`outbox` TO 'flamepay'@'localhost';
GRANT SELECT, INSERT ON `flamepay`.`message_copies` TO 'flamepay'@'localhost';
GRANT SELECT, INSERT, UPDATE ON `flamepay`.`alerts` TO 'flamepay'@'localhost';

-- `flamepay run` applies pending migrations at start-up. With nothing pending it only reads
-- schema_migrations and installation, which these rights allow; a pending migration stops it
-- with one line asking for `flamepay migrate` as flamepay_migrate (run that before a restart).
GRANT SELECT ON `flamepay`.`schema_migrations` TO 'flamepay'@'localhost';
