#!/bin/sh
# Run once by the postgres image on an empty data directory, as mappa_owner (POSTGRES_USER,
# the image's superuser here): the roles of docs/adr/004 and docs/adr/026 and replication.
set -eu
service_password="$(cat /run/secrets/db-service-password)"
replicator_password="$(cat /run/secrets/db-replicator-password)"
psql -v ON_ERROR_STOP=1 --dbname mappa \
	-v service_password="$service_password" -v replicator_password="$replicator_password" <<'SQL'
CREATE ROLE mappa_app NOLOGIN;
GRANT mappa_app TO mappa_owner;
-- The service's login: acts as mappa_app, sees the standbys (MAPPA_REQUIRE_SYNC_STANDBY), owns nothing.
CREATE ROLE mappa_service LOGIN PASSWORD :'service_password' IN ROLE mappa_app, pg_monitor;
CREATE ROLE replicator LOGIN REPLICATION PASSWORD :'replicator_password';
SQL
echo "host replication replicator samenet scram-sha-256" >>"$PGDATA/pg_hba.conf"
