# Sourced by scripts/soak.sh and scripts/scale.sh: a private PostgreSQL or Redis on
# loopback for one round, its own data directory and port, so stopping and freezing it
# disturbs nobody else's tests. Expects $work, $pg_port, $redis_port and a `die`
# function; installs the servers' packages through scripts/services.sh when missing.

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! command -v redis-server >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  printf 'installing PostgreSQL and Redis through scripts/services.sh\n' >&2
  bash scripts/services.sh >/dev/null
fi
pg_bin="/usr/lib/postgresql/$(ls /usr/lib/postgresql | sort -n | tail -1)/bin"

# Writes $work/store.sh: `start | stop | pause | resume` for this round's private store,
# and prints the store's URL.
write_store() {
  local backend="$1"
  case "$backend" in
    postgres)
      port_free "$pg_port" || die "port $pg_port is taken (set another)"
      local data="$work/pg" run_as=""
      mkdir -p "$data" "$work/pg-run"
      if [ "$(id -u)" = 0 ]; then
        chown postgres: "$data" "$work/pg-run"
        run_as="runuser -u postgres --"
      fi
      $run_as "$pg_bin/initdb" -D "$data" -A trust -U postgres -E UTF8 --no-sync >"$work/initdb.log" 2>&1 \
        || { cat "$work/initdb.log"; die "initdb failed"; }
      cat >"$work/store.sh" <<EOF
#!/usr/bin/env bash
# This round's private PostgreSQL (loopback, port $pg_port, trust authentication).
set -euo pipefail
pids() { local pid; pid="\$(head -1 "$data/postmaster.pid")"; echo "\$pid" \$(pgrep -P "\$pid" || true); }
case "\$1" in
  start) $run_as "$pg_bin/pg_ctl" -D "$data" -l "$work/pg-run/postgres.log" -w -t 30 \\
           -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $work/pg-run" start >/dev/null ;;
  stop) $run_as "$pg_bin/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null ;;
  pause) kill -STOP \$(pids) ;;
  resume) kill -CONT \$(pids) ;;
esac
EOF
      echo "postgres://postgres@127.0.0.1:$pg_port/postgres"
      ;;
    redis)
      port_free "$redis_port" || die "port $redis_port is taken (set another)"
      mkdir -p "$work/redis"
      cat >"$work/store.sh" <<EOF
#!/usr/bin/env bash
# This round's private Redis (loopback, port $redis_port, append-only file: restarts keep
# every acknowledged write, which the Redis store insists on).
set -euo pipefail
cli() { timeout 10 redis-cli -h 127.0.0.1 -p $redis_port "\$@"; }
case "\$1" in
  start)
    redis-server --bind 127.0.0.1 --port $redis_port --save '' --appendonly yes \\
      --dir "$work/redis" --pidfile "$work/redis.pid" --logfile "$work/redis.log" --daemonize yes
    for _ in \$(seq 100); do cli ping >/dev/null 2>&1 && exit 0; sleep 0.05; done
    exit 1 ;;
  stop)
    pid="\$(cat "$work/redis.pid")"
    cli shutdown >/dev/null 2>&1 || true
    for _ in \$(seq 200); do kill -0 "\$pid" 2>/dev/null || exit 0; sleep 0.05; done
    exit 1 ;;
  pause) kill -STOP "\$(cat "$work/redis.pid")" ;;
  resume) kill -CONT "\$(cat "$work/redis.pid")" ;;
esac
EOF
      echo "redis://127.0.0.1:$redis_port"
      ;;
    *) die "unknown backend $backend (postgres or redis)";;
  esac
}
