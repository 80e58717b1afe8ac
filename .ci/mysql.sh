#!/usr/bin/env bash
# Make sure MariaDB answers at FLAMEPAY_TEST_MYSQL_URL before the tests run (CI may be a fresh
# machine): install it with apt when absent, start it, wait, and after a fresh install create
# the URL's user with mysql_native_password over the socket (Debian's root logs in over the
# socket only).
set -euo pipefail
url=${FLAMEPAY_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306}
py=${PYTHON:-python3}

read -r user password host port < <("$py" - "$url" <<'PY'
import sys
from urllib.parse import urlparse, unquote
u = urlparse(sys.argv[1])
print(unquote(u.username or "root"), unquote(u.password or "") or "-", u.hostname or "127.0.0.1", u.port or 3306)
PY
)
[ "$password" = "-" ] && password=""

answers() {
  "$py" - "$user" "$password" "$host" "$port" <<'PY'
import sys, pymysql
user, password, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
try:
    pymysql.connect(host=host, port=port, user=user, password=password, connect_timeout=3).close()
except Exception as error:
    print(f"mysql: not answering yet: {error}", file=sys.stderr)
    sys.exit(1)
PY
}

if answers; then
  echo "mysql: answering at $host:$port"
  exit 0
fi

fresh=0
if ! command -v mariadbd >/dev/null 2>&1 && ! command -v mysqld >/dev/null 2>&1; then
  echo "mysql: installing mariadb-server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq mariadb-server mariadb-client >/dev/null
  fresh=1
fi

echo "mysql: starting"
service mariadb start || service mysql start || true
wait_socket() {
  for _ in $(seq 1 "$1"); do
    if mysql -uroot -e 'SELECT 1' >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  return 1
}
if ! wait_socket 30; then
  # The init script can report failure on a machine without systemd; start the daemon as the
  # machine image does.
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  wait_socket 60 || true
fi

if ! answers; then
  # Fresh install (or a server whose TCP user is missing): create the URL's user over the socket.
  echo "mysql: creating ${user}@${host} (fresh install: $fresh)"
  mysql -uroot <<SQL
CREATE USER IF NOT EXISTS '${user}'@'${host}' IDENTIFIED VIA mysql_native_password USING PASSWORD('${password}');
GRANT ALL PRIVILEGES ON *.* TO '${user}'@'${host}' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS '${user}'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('${password}');
GRANT ALL PRIVILEGES ON *.* TO '${user}'@'localhost' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL
fi

for _ in $(seq 1 30); do
  if answers; then echo "mysql: answering at $host:$port"; exit 0; fi
  sleep 1
done
echo "mysql: MariaDB does not answer at $host:$port" >&2
exit 1
