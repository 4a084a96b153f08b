#!/usr/bin/env bash
# Starts the servers the tests use that are not started by the tests themselves:
# Debian's PostgreSQL 15 and MariaDB, each with a role `cachenet` (password
# `cachenet`) that may create databases; the tests make one database per test.
# Idempotent. (libvirtd, Open vSwitch and dnsmasq are started by test fixtures.)
# Listens on loopback only: these are test servers.
set -euo pipefail

start_postgres() {
  local version cluster
  version=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
  cluster=main
  if ! pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1==v && $2==c' | grep -q .; then
    pg_createcluster "$version" "$cluster" >/dev/null
  fi
  if ! pg_lsclusters -h | awk -v v="$version" '$1==v && $4=="online"' | grep -q .; then
    pg_ctlcluster "$version" "$cluster" start -o "-c listen_addresses=127.0.0.1 -c max_connections=200"
  fi
  runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cachenet') THEN
    CREATE ROLE cachenet LOGIN CREATEDB PASSWORD 'cachenet';
  END IF;
END $$;
SQL
}

start_mariadb() {
  if ! mariadb-admin ping >/dev/null 2>&1; then
    install -d -o mysql -g mysql /run/mysqld
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
    (mysqld_safe --user=mysql --bind-address=127.0.0.1 --max-connections=300 >/dev/null 2>&1 &)
    for _ in $(seq 1 60); do
      mariadb-admin ping >/dev/null 2>&1 && break
      sleep 0.5
    done
    mariadb-admin ping >/dev/null
  fi
  mariadb -e "CREATE USER IF NOT EXISTS 'cachenet'@'127.0.0.1' IDENTIFIED BY 'cachenet';
              CREATE USER IF NOT EXISTS 'cachenet'@'localhost' IDENTIFIED BY 'cachenet';
              GRANT ALL PRIVILEGES ON *.* TO 'cachenet'@'127.0.0.1';
              GRANT ALL PRIVILEGES ON *.* TO 'cachenet'@'localhost';"
}

start_postgres
start_mariadb
echo "PostgreSQL and MariaDB are up on 127.0.0.1"
