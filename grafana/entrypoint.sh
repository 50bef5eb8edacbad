#!/bin/sh
# Entrypoint of the grafana container (mounted by docker-compose.yml), then the image's /run.sh.
#
# The admin password: GRAFANA_ADMIN_PASSWORD when .env gives one; otherwise a random one
# generated on the first start, kept in the grafana-data volume (/var/lib/grafana/admin-password)
# and printed once in the log ("GENERATED GRAFANA ADMIN PASSWORD", `docker compose logs grafana`).
# Grafana sets the admin password when it creates its database (first start) only.
set -eu
if [ -z "${GF_SECURITY_ADMIN_PASSWORD:-}" ]; then
    unset GF_SECURITY_ADMIN_PASSWORD
    file=/var/lib/grafana/admin-password
    if [ ! -s "$file" ]; then
        (umask 077 && tr -dc 'A-Za-z0-9' </dev/urandom | head -c 24 >"$file")
        echo "GENERATED GRAFANA ADMIN PASSWORD: $(cat "$file") (user ${GF_SECURITY_ADMIN_USER:-admin}; also in $file)"
    fi
    GF_SECURITY_ADMIN_PASSWORD__FILE="$file"
    export GF_SECURITY_ADMIN_PASSWORD__FILE
fi
exec /run.sh "$@"
