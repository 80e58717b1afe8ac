#!/usr/bin/env bash
# Daily backup of the FlamePay MySQL/MariaDB database: one consistent, gzipped mysqldump per
# run in BACKUP_DIR, and dumps older than KEEP_DAYS days deleted afterwards.
#
# Usage: mysql-backup.sh [KEEP_DAYS]
#
#   KEEP_DAYS            days to keep (argument, else BACKUP_KEEP_DAYS, else 14)
#   BACKUP_DIR           where the dumps go (default /var/backups/flamepay)
#   MYSQL_DEFAULTS_FILE  MySQL option file with the credentials (default
#                        /etc/flamepay/mysql-backup.cnf, mode 0600), for example:
#                            [client]
#                            user=flamepay_ro
#                            password=...
#                            host=127.0.0.1
#                            port=3306
#                        The password is never put on a command line (where `ps` shows it).
#   MYSQL_DATABASE       the database to dump (default flamepay)
#   MYSQLDUMP            the dump program (default mysqldump, else mariadb-dump)
#
# The dump holds no CREATE DATABASE / USE line, so it can be restored into a database of any
# name (see RESTORE.md). --single-transaction gives one consistent InnoDB snapshot without
# locking the application out; --no-tablespaces spares the account the global PROCESS
# privilege (FlamePay uses no tablespaces). Old dumps are deleted only after a successful
# dump, so a failing backup never eats the ones that worked. Exit status: 0 ok, non-zero on
# any failure (nothing half-written is left under the final name).
set -euo pipefail

die() {
  echo "mysql-backup: $*" >&2
  exit 1
}

keep_days=${1:-${BACKUP_KEEP_DAYS:-14}}
backup_dir=${BACKUP_DIR:-/var/backups/flamepay}
defaults_file=${MYSQL_DEFAULTS_FILE:-/etc/flamepay/mysql-backup.cnf}
database=${MYSQL_DATABASE:-flamepay}

[[ $keep_days =~ ^[0-9]+$ ]] && ((10#$keep_days >= 1)) \
  || die "KEEP_DAYS must be a whole number of days, at least 1 (got '$keep_days')"
keep_days=$((10#$keep_days))
[[ $database =~ ^[A-Za-z0-9_]+$ ]] || die "MYSQL_DATABASE must be letters, digits and '_'"
[[ -r $defaults_file ]] || die "cannot read the option file $defaults_file"

if [[ -n ${MYSQLDUMP:-} ]]; then
  dump=$MYSQLDUMP
elif command -v mysqldump >/dev/null 2>&1; then
  dump=mysqldump
elif command -v mariadb-dump >/dev/null 2>&1; then
  dump=mariadb-dump
else
  die "neither mysqldump nor mariadb-dump is installed"
fi
command -v "$dump" >/dev/null 2>&1 || die "$dump is not installed"
command -v gzip >/dev/null 2>&1 || die "gzip is not installed"

umask 077 # the dump holds every user's data
mkdir -p -- "$backup_dir"

stamp=$(date -u +%Y%m%d-%H%M%S)
final="$backup_dir/flamepay-$database-$stamp.sql.gz"
partial="$backup_dir/.flamepay-$database-$stamp.sql.gz.partial"
trap 'rm -f -- "$partial"' EXIT

# --defaults-extra-file must come first. pipefail makes a failing mysqldump fail the pipe.
"$dump" --defaults-extra-file="$defaults_file" \
  --single-transaction --routines --triggers --no-tablespaces \
  --hex-blob --default-character-set=utf8mb4 \
  -- "$database" | gzip -6 >"$partial" \
  || die "the dump of $database failed"

# A dump cut short (server gone, disk full) lacks mysqldump's closing line.
gzip -t -- "$partial" || die "the gzip file is damaged"
gzip -dc -- "$partial" | tail -n 1 | grep -q '^-- Dump completed' \
  || die "the dump of $database is incomplete"
mv -- "$partial" "$final"
trap - EXIT
echo "mysql-backup: wrote $final ($(wc -c <"$final") bytes)"

# Keep KEEP_DAYS days: delete this database's dumps (and stale partial files) older than that.
find "$backup_dir" -maxdepth 1 -type f \
  \( -name "flamepay-$database-*.sql.gz" -o -name ".flamepay-$database-*.sql.gz.partial" \) \
  -mmin +$((keep_days * 1440)) -print -delete \
  | sed 's/^/mysql-backup: deleted /'
