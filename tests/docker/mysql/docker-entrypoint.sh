#!/bin/bash
# The official mysql image's entrypoint contract, on MariaDB (test stand-in).
# First start (no /var/lib/mysql/mysql): create the system tables, start a server on
# the socket only, set root's password (root@localhost and root@'%'; a random one,
# printed once, with MYSQL_RANDOM_ROOT_PASSWORD), create
# MYSQL_DATABASE, run /docker-entrypoint-initdb.d/* in name order (*.sql through the
# client into MYSQL_DATABASE; *.sh run if executable, else sourced), stop it. Then
# exec the server with the options given as the command.
set -eo pipefail  # as the official entrypoint: a failing init script stops the start

if [ "${1:0:1}" = "-" ]; then
    set -- mariadbd "$@"
fi
DATADIR=/var/lib/mysql
SOCKET=/run/mysqld/mysqld.sock
mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld "$DATADIR"

sql_string() {  # a SQL string literal: backslashes and single quotes doubled
    local s=${1//\\/\\\\}
    printf "'%s'" "${s//\'/\'\'}"
}

docker_process_sql() {
    MYSQL_PWD="${MYSQL_ROOT_PASSWORD}" mysql --protocol=socket --socket="$SOCKET" -uroot \
        ${MYSQL_DATABASE:+--database="$MYSQL_DATABASE"} "$@"
}

if [ ! -d "$DATADIR/mysql" ]; then
    if [ -n "${MYSQL_RANDOM_ROOT_PASSWORD:-}" ]; then
        # As the official image: a random root password, printed once.
        MYSQL_ROOT_PASSWORD=$(python -c 'import secrets; print(secrets.token_urlsafe(24))')
        export MYSQL_ROOT_PASSWORD
        echo "stand-in: GENERATED ROOT PASSWORD: $MYSQL_ROOT_PASSWORD"
    fi
    if [ -z "${MYSQL_ROOT_PASSWORD:-}" ]; then
        echo "stand-in: MYSQL_ROOT_PASSWORD or MYSQL_RANDOM_ROOT_PASSWORD is required (the official image" \
             "also takes MYSQL_ALLOW_EMPTY_PASSWORD; this stand-in does not)" >&2
        exit 1
    fi
    echo "stand-in: initialising $DATADIR"
    mariadb-install-db --user=mysql --datadir="$DATADIR" --skip-test-db \
        --auth-root-authentication-method=normal >/dev/null
    "$@" --user=mysql --skip-networking --socket="$SOCKET" &
    pid=$!
    for _ in $(seq 1 120); do
        mysqladmin --socket="$SOCKET" -uroot ping >/dev/null 2>&1 && break
        kill -0 "$pid" 2>/dev/null || { echo "stand-in: temporary server died" >&2; exit 1; }
        sleep 0.5
    done
    # mariadb-install-db also makes passwordless root@127.0.0.1, ::1 and <hostname>,
    # which would win over root@'%'; the official image has root@localhost and root@'%'.
    mysql --protocol=socket --socket="$SOCKET" -uroot -N -e \
        "SELECT CONCAT('DROP USER ', QUOTE(user), '@', QUOTE(host), ';') FROM mysql.user
         WHERE user = 'root' AND host <> 'localhost'" | mysql --protocol=socket --socket="$SOCKET" -uroot
    password=$(sql_string "$MYSQL_ROOT_PASSWORD")
    mysql --protocol=socket --socket="$SOCKET" -uroot <<SQL
ALTER USER 'root'@'localhost' IDENTIFIED BY $password;
CREATE USER 'root'@'%' IDENTIFIED BY $password;
GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;
${MYSQL_DATABASE:+CREATE DATABASE IF NOT EXISTS \`$MYSQL_DATABASE\`;}
FLUSH PRIVILEGES;
SQL
    for f in $(find /docker-entrypoint-initdb.d -mindepth 1 -maxdepth 1 | sort); do
        case "$f" in
            *.sh)
                if [ -x "$f" ]; then
                    echo "stand-in: running $f"; "$f"
                else
                    echo "stand-in: sourcing $f"; . "$f"
                fi ;;
            *.sql) echo "stand-in: running $f"; docker_process_sql < "$f" ;;
            *.sql.gz) echo "stand-in: running $f"; gunzip -c "$f" | docker_process_sql ;;
            *) echo "stand-in: ignoring $f" ;;
        esac
    done
    MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mysqladmin --socket="$SOCKET" -uroot shutdown
    wait "$pid" || true
    echo "stand-in: initialisation done; starting the server"
fi

exec "$@" --user=mysql
