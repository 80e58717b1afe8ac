#!/usr/bin/env bash
# Daily backup of the FlamePay SQLite database (when MYSQL_HOST is empty): one copy per run in
# BACKUP_DIR through SQLite's online backup API, and copies older than KEEP_DAYS days deleted
# afterwards.
#
# Usage: sqlite-backup.sh [KEEP_DAYS]
#
#   KEEP_DAYS     days to keep (argument, else BACKUP_KEEP_DAYS, else 14)
#   SQLITE_PATH   the database file (default var/flamepay.sqlite3, relative to the current
#                 folder, like FlamePay's own default: run it from /opt/flamepay, or give the
#                 absolute path)
#   BACKUP_DIR    where the copies go (default /var/backups/flamepay)
#   SQLITE3       the sqlite3 command-line shell (default sqlite3); when it is not installed
#                 the same backup is made through Python's sqlite3.Connection.backup
#   PYTHON        the Python for that fallback (default python3)
#
# Safe while FlamePay runs: the backup API copies a consistent snapshot of the database,
# the pages still in the WAL file included. Never copy the .sqlite3 file with cp while
# FlamePay runs: without its -wal file the copy can be stale or corrupt. Each copy is checked
# with PRAGMA integrity_check before it gets its final name. Old copies are deleted only after
# a successful backup. Exit status: 0 ok, non-zero on any failure.
set -euo pipefail

die() {
  echo "sqlite-backup: $*" >&2
  exit 1
}

keep_days=${1:-${BACKUP_KEEP_DAYS:-14}}
source_db=${SQLITE_PATH:-var/flamepay.sqlite3}
backup_dir=${BACKUP_DIR:-/var/backups/flamepay}
sqlite3_cli=${SQLITE3:-sqlite3}
python=${PYTHON:-python3}

[[ $keep_days =~ ^[0-9]+$ ]] && ((10#$keep_days >= 1)) \
  || die "KEEP_DAYS must be a whole number of days, at least 1 (got '$keep_days')"
keep_days=$((10#$keep_days))
# Both sqlite3 and Python would create an empty database where none exists: refuse instead.
[[ -f $source_db ]] || die "no database file at $source_db (set SQLITE_PATH)"
[[ -r $source_db ]] || die "cannot read $source_db"

umask 077 # the copy holds every user's data
mkdir -p -- "$backup_dir"

stamp=$(date -u +%Y%m%d-%H%M%S)
final="$backup_dir/flamepay-$stamp.sqlite3"
partial="$backup_dir/.flamepay-$stamp.sqlite3.partial"
# The path goes inside '...' in the sqlite3 shell's .backup command.
[[ $partial != *"'"* ]] || die "BACKUP_DIR must not contain a single quote"
trap 'rm -f -- "$partial"' EXIT

if command -v "$sqlite3_cli" >/dev/null 2>&1; then
  # .timeout: wait for a writer's checkpoint instead of failing with "database is locked".
  "$sqlite3_cli" -bail -cmd ".timeout 30000" "$source_db" ".backup '$partial'" \
    || die "sqlite3 .backup of $source_db failed"
  check=$("$sqlite3_cli" "$partial" "PRAGMA integrity_check;") \
    || die "cannot open the copy $partial"
else
  command -v "$python" >/dev/null 2>&1 \
    || die "neither $sqlite3_cli nor $python is installed"
  "$python" -c '
import sqlite3, sys
source = sqlite3.connect(sys.argv[1], timeout=30)
target = sqlite3.connect(sys.argv[2])
try:
    with target:
        source.backup(target)
finally:
    target.close()
    source.close()
' "$source_db" "$partial" || die "the backup of $source_db failed"
  check=$("$python" -c '
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1])
try:
    print("\n".join(row[0] for row in connection.execute("PRAGMA integrity_check")))
finally:
    connection.close()
' "$partial") || die "cannot open the copy $partial"
fi
[[ $check == ok ]] || die "the copy fails PRAGMA integrity_check: $check"

mv -- "$partial" "$final"
trap - EXIT
echo "sqlite-backup: wrote $final ($(wc -c <"$final") bytes)"

# Keep KEEP_DAYS days: delete the copies (and stale partial files) older than that.
find "$backup_dir" -maxdepth 1 -type f \
  \( -name 'flamepay-*.sqlite3' -o -name '.flamepay-*.sqlite3.partial' \) \
  -mmin +$((keep_days * 1440)) -print -delete \
  | sed 's/^/sqlite-backup: deleted /'
