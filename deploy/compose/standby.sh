#!/bin/sh
# The standby: copied from the primary once (pg_basebackup), then streaming from it under the
# name the primary's synchronous_standby_names waits for.
set -eu
PGDATA="${PGDATA:-/var/lib/postgresql/18/docker}"
export PGDATA
if [ ! -s "$PGDATA/PG_VERSION" ]; then
	password="$(cat /run/secrets/db-replicator-password)"
	mkdir -p "$PGDATA"
	chmod 0700 "$PGDATA"
	PGPASSWORD="$password" pg_basebackup --pgdata="$PGDATA" --host=db-primary \
		--username=replicator --wal-method=stream --write-recovery-conf --checkpoint=fast
	# After what --write-recovery-conf wrote: the last setting wins.
	printf "primary_conninfo = 'host=db-primary user=replicator password=%s application_name=db_standby'\n" \
		"$password" >>"$PGDATA/postgresql.auto.conf"
fi
exec postgres -c hot_standby=on -c max_connections=300
