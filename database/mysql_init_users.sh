#!/bin/bash
# Second init script of the mysql container (mounted as
# /docker-entrypoint-initdb.d/02-mysql_init_users.sh, after 01-mysql_schema.sql),
# run once, on the first start with an empty data volume.
#
# mysql_schema.sql creates stock_app and grafana_reader with development
# passwords so that the schema also loads outside compose (tests). Here they get
# the passwords of the environment instead:
#   STOCK_APP_USER      = MYSQL_USER      (default stock_app; another name drops stock_app)
#   STOCK_APP_PASSWORD  = MYSQL_PASSWORD
#   GRAFANA_DB_PASSWORD = GRAFANA_DB_PASSWORD
# (compose passes them under these names: with MYSQL_USER/MYSQL_PASSWORD the image
# would create the user itself, with ALL privileges.)
#
# The image sources *.sh init scripts (or runs them, if executable): no `exit`,
# no `set -e`, nothing left defined but the function below.

stock_init_users() {
    local app_user="${STOCK_APP_USER:-stock_app}"
    local app_password="${STOCK_APP_PASSWORD:-stock_app_dev_password}"
    local grafana_password="${GRAFANA_DB_PASSWORD:-grafana_dev_password}"

    # SQL string literal: double every backslash and single quote.
    sql_quote() {
        local s=${1//\\/\\\\}
        printf "'%s'" "${s//\'/\'\'}"
    }

    if [ "$app_user" = "root" ]; then
        echo "mysql_init_users: MYSQL_USER=root is not allowed for the services; keeping stock_app" >&2
        app_user=stock_app
    fi

    # mysql_schema.sql made stock_app with its development password: with another
    # MYSQL_USER it would stay behind with that password and its grants, so it goes.
    local drop_default=""
    if [ "$app_user" != "stock_app" ]; then
        drop_default="DROP USER IF EXISTS 'stock_app'@'%';"
    fi

    local sql
    sql="$drop_default
CREATE USER IF NOT EXISTS $(sql_quote "$app_user")@'%' IDENTIFIED BY $(sql_quote "$app_password");
ALTER USER $(sql_quote "$app_user")@'%' IDENTIFIED BY $(sql_quote "$app_password");
GRANT SELECT, INSERT, UPDATE, DELETE ON stock_analytics.* TO $(sql_quote "$app_user")@'%';
ALTER USER 'grafana_reader'@'%' IDENTIFIED BY $(sql_quote "$grafana_password");
FLUSH PRIVILEGES;"

    # During initialisation the server listens on its socket only; root's password is set.
    if printf '%s\n' "$sql" | MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mysql --protocol=socket -uroot; then
        echo "mysql_init_users: passwords of $app_user and grafana_reader set from the environment${drop_default:+; stock_app dropped}"
    else
        echo "mysql_init_users: FAILED to set the service passwords" >&2
        return 1
    fi
}

stock_init_users
