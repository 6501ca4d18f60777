#!/usr/bin/env bash
# deploy/local.sh: run the whole platform on this machine, or run the test suite against throwaway servers.
#
# Usage: deploy/local.sh up | down | status | logs [SERVICE] | test
#
#   up      install missing system packages (apt), `swift build -c release`, start PostgreSQL and Redis
#           under .data/ on loopback ports, start the six services each under a restarting supervisor,
#           wait until every /health/ready answers 200, print the gateway URL. Safe to run twice: what
#           already runs is left alone.
#   down    stop the six services, then Redis and PostgreSQL (by the PIDs recorded under .data/).
#   status  each service (supervisor and process PIDs, /health/ready status), PostgreSQL and Redis.
#   logs    `logs SERVICE` follows .data/logs/SERVICE.log (also `logs postgres`, `logs redis`);
#           `logs` alone lists the log files.
#   test    throwaway PostgreSQL and Redis on random free ports, then `swift test` against them (see cmd_test
#           below for the exported variables), the proxy fault suite (Tests/ProxyFaults, pytest) against the built
#           auth-gateway, and the contract test (Tests/Contract: schemathesis against a platform started with `up`);
#           always torn down; fails when any of the three fails.
#
# Environment (defaults in brackets):
#   PLATFORM_PG_PORT [55432]              PostgreSQL port (127.0.0.1) for `up`
#   PLATFORM_REDIS_PORT [56379]           Redis port (127.0.0.1) for `up`
#   PLATFORM_AUTH_GATEWAY_PORT [8000]     HTTP ports of the services (all on 127.0.0.1)
#   PLATFORM_CONNECTIONS_VAULT_PORT [8001]
#   PLATFORM_SCHEDULER_PORT [8002]
#   PLATFORM_PIPELINE_RUNNER_PORT [8003]
#   PLATFORM_FILE_STORAGE_PORT [8004]
#   PLATFORM_OBSERVABILITY_PORT [8005]
#   ADMIN_USERNAME [admin]                first administrator, seeded by auth-gateway
#   ADMIN_PASSWORD [generated once into .data/secrets/admin.password]
#   ADMIN_EMAIL [admin@platform.local]
#   VAULT_MASTER_KEYS [generated once into .data/secrets/vault-master-keys]  id:base64 master keys of the
#                                         built-in vault (connections-vault only); VAULT_ACTIVE_KEY picks one
#   AUTH_JWT_PRIVATE_KEY_FILE [generated once into .data/secrets/jwt-ed25519.key]  the gateway's signing key
#                                         (base64 of a 32-byte Ed25519 seed, or PEM); the other services fetch
#                                         the public key from the gateway's /.well-known/jwks.json
#   SERVICE_TOKEN_KEY_FILE [generated once into .data/secrets/service-token.key]  the key the five services
#                                         behind the gateway sign and check their calls to each other with
#   VAULT_ADDR, VAULT_TOKEN [unset]       both set: connections-vault keeps credentials in HashiCorp Vault (KV v2)
#                                         instead of its built-in vault
#   LOG_LEVEL [info]  LOG_FORMAT [json]   passed to every service
#   SWIFT_BACKTRACE [PLATFORM_SWIFT_BACKTRACE_DEFAULT below]  how the services report a crash; set it (even empty,
#                                         for the Swift runtime's default) to override
#   POSTGRES_POOL_SIZE [service default 8]  passed through when set
#   PLATFORM_READY_TIMEOUT [120]          seconds `up` waits for every /health/ready
#   PLATFORM_DATA_DIR [<repo>/.data]      servers' data, secrets, PID files and logs
#   PLATFORM_BIN_DIR [<repo>/.build/release]  where the service binaries are
#   PLATFORM_SKIP_BUILD [0]               1: `up` does not run `swift build`
#   PLATFORM_SWIFT_TEST_ARGS []           extra arguments for `swift test` in `test` (split on spaces)
#   PLATFORM_TEST_KEEP [0]                1: `test` keeps its temporary directory (servers are still stopped)
#   PLATFORM_PG_MAX_CONNECTIONS [200]     max_connections of the PostgreSQL servers started here
#
# The PostgreSQL role `platform` owns the database `platform`; its password is generated once into
# .data/secrets/postgres.password (mode 600). The superuser `postgres` is reachable only over the unix
# socket in .data/pg-socket.
set -euo pipefail

SELF=$(realpath -- "${BASH_SOURCE[0]}")
ROOT=$(cd -- "$(dirname -- "$SELF")/.." && pwd -P)
# shellcheck source=SCRIPTDIR/lib.sh
source "$ROOT/deploy/lib.sh"

SERVICES=(auth-gateway connections-vault scheduler pipeline-runner file-storage observability)
declare -A DEFAULT_PORT=(
    [auth-gateway]=8000 [connections-vault]=8001 [scheduler]=8002
    [pipeline-runner]=8003 [file-storage]=8004 [observability]=8005
)

DATA_DIR=$(_abspath "${PLATFORM_DATA_DIR:-$ROOT/.data}")
BIN_DIR=$(_abspath "${PLATFORM_BIN_DIR:-$ROOT/.build/release}")
PG_PORT=${PLATFORM_PG_PORT:-55432}
REDIS_PORT=${PLATFORM_REDIS_PORT:-56379}
READY_TIMEOUT=${PLATFORM_READY_TIMEOUT:-120}

PG_DATA=$DATA_DIR/postgres
PG_SOCKET=$DATA_DIR/pg-socket
REDIS_DIR=$DATA_DIR/redis
SECRETS_DIR=$DATA_DIR/secrets
JWT_KEY_FILE=${AUTH_JWT_PRIVATE_KEY_FILE:-$SECRETS_DIR/jwt-ed25519.key}
VAULT_KEYS_FILE=$SECRETS_DIR/vault-master-keys
SERVICE_KEY_FILE=${SERVICE_TOKEN_KEY_FILE:-$SECRETS_DIR/service-token.key}
RUN_DIR=$DATA_DIR/run
LOG_DIR=$DATA_DIR/logs
PG_ROLE=platform
PG_DATABASE=platform
# How the services report a crash: the crashed thread's raw frame addresses and the images they fall in, never
# waiting for a debugger. That takes the dying process milliseconds; naming the frames takes seconds, so the
# supervisor does it with deploy/symbolicate-crash once the service is back. The runtime's full report held the
# gateway for 8 to 13 s (bench/README.md, crash-restart).
PLATFORM_SWIFT_BACKTRACE_DEFAULT=enable=yes,interactive=no,threads=crashed,registers=none,images=mentioned,symbolicate=off

usage() {
    cat >&2 <<EOF
usage: $(basename -- "$0") up | down | status | logs [SERVICE] | test

  up            build, start PostgreSQL, Redis and the six services, wait until they are ready
  down          stop the services, Redis and PostgreSQL
  status        show what runs and whether each service is ready
  logs SERVICE  follow a service's log (also: postgres, redis); without SERVICE, list the logs
  test          run swift test against throwaway PostgreSQL and Redis

Services: ${SERVICES[*]}
Settings are environment variables; see the comment block at the top of $SELF.
EOF
}

die() {
    lib_err "$*"
    exit 1
}

service_port() {
    local var=PLATFORM_${1//-/_}_PORT
    var=${var^^}
    printf '%s\n' "${!var:-${DEFAULT_PORT[$1]}}"
}

is_service() {
    local s
    for s in "${SERVICES[@]}"; do [[ $s == "$1" ]] && return 0; done
    return 1
}

supervisor_pidfile() { printf '%s/%s.supervisor.pid\n' "$RUN_DIR" "$1"; }
child_pidfile() { printf '%s/%s.pid\n' "$RUN_DIR" "$1"; }
read_pid() { if [[ -s $1 ]]; then cat -- "$1" 2>/dev/null || true; fi; }

# The supervisor of SERVICE when it runs (checked against its command line, not just the PID).
supervisor_pid() {
    local pid
    pid=$(read_pid "$(supervisor_pidfile "$1")")
    [[ -n $pid ]] && pid_alive "$pid" "__supervise $1 " && printf '%s\n' "$pid"
}

child_pid() {
    local pid
    pid=$(read_pid "$(child_pidfile "$1")")
    [[ -n $pid ]] && pid_alive "$pid" "$1" && printf '%s\n' "$pid"
}

# Reads a secret file, or generates one (mode 600) when it does not exist yet.
secret_file() {
    local file=$1
    if [[ ! -s $file ]]; then
        (umask 077 && gen_secret >"$file.tmp" && mv -f -- "$file.tmp" "$file") || die "cannot write $file"
    fi
    chmod 600 -- "$file"
    local value
    value=$(<"$file")
    [[ -n $value ]] || die "$file is empty"
    printf '%s' "$value"
}

# ---------------------------------------------------------------------------------------------------------
# The supervisor: `local.sh __supervise SERVICE BINARY` runs BINARY, restarts it when it exits (at once after a
# run of 10 s or more; after 1, 2, 4 ... 30 s while it keeps dying sooner), names the frames of a crash report
# beside the new process (deploy/symbolicate-crash), and stops (passing SIGTERM on) when it receives
# SIGTERM/SIGINT/SIGHUP. It runs in its own session with its
# output appended to the service's log and the services' environment already exported by `up`.
supervise() {
    local name=$1 bin=$2
    local sup_file child_file child='' stopping=0 rc started delay=0 crashed=0
    sup_file=$(supervisor_pidfile "$name")
    child_file=$(child_pidfile "$name")
    trap 'stopping=1; if [[ -n $child ]]; then kill -TERM "$child" 2>/dev/null || true; fi' TERM INT HUP
    printf '%s\n' "$$" >"$sup_file"
    sup_log() { printf '%s supervisor[%s]: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$name" "$*"; }
    sup_log "started (PID $$)"
    while ((stopping == 0)); do
        started=$(_now)
        "$bin" </dev/null &
        child=$!
        printf '%s\n' "$child" >"$child_file"
        sup_log "started $bin (PID $child)"
        if ((crashed)); then
            "$ROOT/deploy/symbolicate-crash" "$LOG_DIR/$name.log" </dev/null 2>&1 &
            crashed=0
        fi
        # A stop request that arrived before $child was known.
        if ((stopping)); then kill -TERM "$child" 2>/dev/null || true; fi
        rc=0
        wait "$child" || rc=$?
        # `wait` returns early when a trapped signal arrives: wait until the child has really exited.
        while kill -0 "$child" 2>/dev/null; do
            rc=0
            wait "$child" || rc=$?
        done
        child=''
        rm -f -- "$child_file"
        if ((stopping)); then
            sup_log "$name exited with status $rc while stopping"
            break
        fi
        ((rc > 128)) && crashed=1
        if (($(_now) - started >= 10)); then
            delay=0
        else
            delay=$((delay == 0 ? 1 : (delay * 2 > 30 ? 30 : delay * 2)))
        fi
        sup_log "$name exited with status $rc; restarting in $delay s"
        if ((delay > 0)); then
            sleep "$delay" &
            wait $! || true
        fi
    done
    rm -f -- "$sup_file"
    sup_log "stopped"
}

start_service() {
    local name=$1 port log sup
    port=$(service_port "$name")
    log=$LOG_DIR/$name.log
    if sup=$(supervisor_pid "$name"); then
        lib_log "$name already running (supervisor PID $sup)"
        return 0
    fi
    local orphan
    if orphan=$(child_pid "$name"); then
        lib_log "$name (PID $orphan) runs without its supervisor; restarting it under one"
        stop_pid "$orphan" 15 "$name" || die "could not stop $name (PID $orphan)"
    fi
    rm -f -- "$(supervisor_pidfile "$name")" "$(child_pidfile "$name")"
    if port_listening "$port"; then
        die "port $port for $name is already in use by another process (set PLATFORM_${name//-/_}_PORT)"
    fi
    lib_log "starting $name on 127.0.0.1:$port (log $log)"
    (
        export HTTP_HOST=127.0.0.1 HTTP_PORT=$port
        export SWIFT_BACKTRACE=${SWIFT_BACKTRACE-$PLATFORM_SWIFT_BACKTRACE_DEFAULT}
        # Every service knows where the others are (the gateway proxies to them, the scheduler asks
        # connections-vault).
        local s var
        for s in "${SERVICES[@]}"; do
            [[ $s == auth-gateway ]] && continue
            var=SERVICE_URL_${s//-/_}
            export "${var^^}=http://127.0.0.1:$(service_port "$s")"
        done
        if [[ $name == auth-gateway ]]; then
            export ADMIN_USERNAME ADMIN_PASSWORD ADMIN_EMAIL
            export AUTH_JWT_PRIVATE_KEY_FILE=$JWT_KEY_FILE
            unset SERVICE_TOKEN_KEY SERVICE_TOKEN_KEY_FILE
        else
            unset ADMIN_USERNAME ADMIN_PASSWORD ADMIN_EMAIL AUTH_JWT_PRIVATE_KEY_FILE AUTH_JWT_PRIVATE_KEY SERVICE_TOKEN_KEY
            export AUTH_JWKS_URL=http://127.0.0.1:$(service_port auth-gateway)/.well-known/jwks.json
            export SERVICE_TOKEN_KEY_FILE=$SERVICE_KEY_FILE
        fi
        if [[ $name == connections-vault ]]; then
            VAULT_MASTER_KEYS=${VAULT_MASTER_KEYS:-$(<"$VAULT_KEYS_FILE")}
            export VAULT_MASTER_KEYS
        else
            unset VAULT_MASTER_KEYS VAULT_ADDR VAULT_TOKEN VAULT_TOKEN_FILE
        fi
        cd -- "$ROOT"
        exec setsid "$SELF" __supervise "$name" "$BIN_DIR/$name" </dev/null >>"$log" 2>&1
    ) &
    wait_for 10 "the supervisor of $name to start" supervisor_pid "$name" ||
        die "the supervisor of $name did not start; see $log"
}

# Writes the base64 of 32 random bytes to FILE (mode 600) unless it already holds something.
random_key_file() {
    local file=$1
    if [[ ! -s $file ]]; then
        (umask 077 && head -c 32 /dev/urandom | base64 >"$file.tmp" && mv -f -- "$file.tmp" "$file") || die "cannot write $file"
    fi
    chmod 600 -- "$file"
}

# ---------------------------------------------------------------------------------------------------------
# Commands

cmd_up() {
    ensure_packages
    if [[ ${PLATFORM_SKIP_BUILD:-0} != 1 ]]; then
        lib_log "building (swift build -c release)"
        (cd -- "$ROOT" && swift build -c release) || die "swift build failed"
    fi
    local name
    for name in "${SERVICES[@]}"; do
        [[ -x $BIN_DIR/$name ]] || die "$BIN_DIR/$name does not exist or is not executable"
    done

    mkdir -p -- "$DATA_DIR" "$RUN_DIR" "$LOG_DIR"
    chmod 755 -- "$DATA_DIR" # PostgreSQL (user postgres) must traverse it
    (umask 077 && mkdir -p -- "$SECRETS_DIR")
    chmod 700 -- "$SECRETS_DIR"

    local pg_password
    pg_password=$(secret_file "$SECRETS_DIR/postgres.password")
    ADMIN_USERNAME=${ADMIN_USERNAME:-admin}
    ADMIN_EMAIL=${ADMIN_EMAIL:-admin@platform.local}
    local admin_password_source
    if [[ -n ${ADMIN_PASSWORD:-} ]]; then
        admin_password_source="the ADMIN_PASSWORD you set"
    else
        ADMIN_PASSWORD=$(secret_file "$SECRETS_DIR/admin.password")
        admin_password_source=$SECRETS_DIR/admin.password
    fi
    random_key_file "$JWT_KEY_FILE"
    random_key_file "$SERVICE_KEY_FILE"
    if [[ -z ${VAULT_MASTER_KEYS:-} && ! -s $VAULT_KEYS_FILE ]]; then
        (umask 077 && printf 'local-1:%s\n' "$(head -c 32 /dev/urandom | base64)" >"$VAULT_KEYS_FILE.tmp" &&
            mv -f -- "$VAULT_KEYS_FILE.tmp" "$VAULT_KEYS_FILE") || die "cannot write $VAULT_KEYS_FILE"
    fi
    if [[ -s $VAULT_KEYS_FILE ]]; then chmod 600 -- "$VAULT_KEYS_FILE"; fi

    start_postgres "$PG_DATA" "$PG_PORT" "$PG_SOCKET" "$PG_ROLE" "$pg_password" "$PG_DATABASE" durable ||
        die "PostgreSQL did not start"
    start_redis "$REDIS_DIR" "$REDIS_PORT" durable || die "Redis did not start"

    export POSTGRES_HOST=127.0.0.1 POSTGRES_PORT=$PG_PORT POSTGRES_USER=$PG_ROLE
    export POSTGRES_PASSWORD=$pg_password POSTGRES_DATABASE=$PG_DATABASE
    export REDIS_HOST=127.0.0.1 REDIS_PORT=$REDIS_PORT
    export LOG_LEVEL=${LOG_LEVEL:-info} LOG_FORMAT=${LOG_FORMAT:-json}
    for name in "${SERVICES[@]}"; do
        start_service "$name"
    done

    lib_log "waiting up to ${READY_TIMEOUT}s for every /health/ready"
    local deadline=$(($(_now) + READY_TIMEOUT)) pending
    while :; do
        pending=()
        for name in "${SERVICES[@]}"; do
            _http_ok "http://127.0.0.1:$(service_port "$name")/health/ready" || pending+=("$name")
        done
        ((${#pending[@]} == 0)) && break
        if (($(_now) >= deadline)); then
            for name in "${pending[@]}"; do
                lib_err "$name is not ready after ${READY_TIMEOUT}s; last lines of $LOG_DIR/$name.log:"
                tail -n 15 -- "$LOG_DIR/$name.log" >&2 2>/dev/null || true
            done
            die "not ready: ${pending[*]} (the services keep running; see '$0 status', stop with '$0 down')"
        fi
        sleep 0.5
    done

    cat <<EOF

The platform is up.
  Gateway:         http://127.0.0.1:$(service_port auth-gateway)
  Admin user:      $ADMIN_USERNAME
  Admin password:  $admin_password_source
  PostgreSQL:      127.0.0.1:$PG_PORT, database $PG_DATABASE, role $PG_ROLE (password in $SECRETS_DIR/postgres.password)
  Redis:           127.0.0.1:$REDIS_PORT
  Logs:            $LOG_DIR/   ($0 logs SERVICE)
  Stop:            $0 down
EOF
}

cmd_down() {
    local name pid deadline
    local -a sups=()
    # Supervisors first, so nothing restarts what we stop; each passes SIGTERM on to its service.
    for name in "${SERVICES[@]}"; do
        if pid=$(supervisor_pid "$name"); then
            lib_log "stopping $name (supervisor PID $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            sups+=("$name:$pid")
        fi
    done
    deadline=$(($(_now) + 20))
    local entry
    for entry in "${sups[@]}"; do
        name=${entry%%:*}
        pid=${entry#*:}
        local left=$((deadline - $(_now)))
        ((left > 0)) || left=1
        if ! wait_for_exit "$pid" "$left" 2>/dev/null; then
            lib_log "supervisor of $name (PID $pid) still running; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            wait_for_exit "$pid" 5 || true
        fi
        rm -f -- "$(supervisor_pidfile "$name")"
    done
    # Then any service process that outlived its supervisor.
    for name in "${SERVICES[@]}"; do
        if pid=$(child_pid "$name"); then
            lib_log "stopping $name (PID $pid)"
            stop_pid "$pid" 15 "$name" || lib_err "could not stop $name (PID $pid)"
        fi
        rm -f -- "$(child_pidfile "$name")"
    done
    stop_redis "$REDIS_DIR" || lib_err "could not stop Redis"
    stop_postgres "$PG_DATA" || lib_err "could not stop PostgreSQL"
    lib_log "stopped"
}

cmd_status() {
    local name sup child ready all_ok=0 state
    printf '%-18s %-9s %-15s %-9s %s\n' SERVICE STATE SUPERVISOR PID READY
    for name in "${SERVICES[@]}"; do
        sup=$(supervisor_pid "$name") || sup=''
        child=$(child_pid "$name") || child=''
        state=stopped
        [[ -n $sup || -n $child ]] && state=running
        ready=$(http_status "http://127.0.0.1:$(service_port "$name")/health/ready")
        [[ $state == running && $ready == 200 ]] || all_ok=3
        printf '%-18s %-9s %-15s %-9s %s\n' "$name" "$state" "${sup:--}" "${child:--}" "$ready"
    done
    echo
    local rc=0 pid
    _pg_status "$PG_DATA" || rc=$?
    if ((rc == 0)); then
        pid=$(_pg_pid_line "$PG_DATA" 1)
        if _pg_ready "$(pg_bin "$PG_DATA")" 127.0.0.1 "$PG_PORT" 2>/dev/null; then ready=accepting; else ready='not accepting'; fi
        printf 'postgres: running, PID %s, 127.0.0.1:%s, %s connections (data %s)\n' "$pid" "$(_pg_pid_line "$PG_DATA" 4)" "$ready" "$PG_DATA"
    else
        printf 'postgres: stopped (data %s)\n' "$PG_DATA"
        all_ok=3
    fi
    if pid=$(redis_pid "$REDIS_DIR"); then
        if redis_ping "$REDIS_PORT"; then ready=PONG; else ready='no PONG'; fi
        printf 'redis:    running, PID %s, 127.0.0.1:%s, %s (data %s)\n' "$pid" "$REDIS_PORT" "$ready" "$REDIS_DIR"
    else
        printf 'redis:    stopped (data %s)\n' "$REDIS_DIR"
        all_ok=3
    fi
    return "$all_ok"
}

cmd_logs() {
    if (($# == 0)); then
        local f found=0
        for f in "$LOG_DIR"/*.log "$(pg_log_file "$PG_DATA")" "$REDIS_DIR/redis.log"; do
            [[ -f $f ]] || continue
            found=1
            printf '%s\n' "$f"
        done
        ((found)) || echo "no logs yet under $DATA_DIR" >&2
        return 0
    fi
    local file
    case $1 in
    postgres | postgresql) file=$(pg_log_file "$PG_DATA") ;;
    redis) file=$REDIS_DIR/redis.log ;;
    *)
        is_service "$1" || { usage; die "unknown service: $1"; }
        file=$LOG_DIR/$1.log
        ;;
    esac
    [[ -f $file ]] || die "no log yet: $file"
    exec tail -n 100 -F -- "$file"
}

# `test`: throwaway servers for `swift test`. Exports, for the test process:
#   POSTGRES_HOST=127.0.0.1 POSTGRES_PORT POSTGRES_USER=platform POSTGRES_PASSWORD (random)
#   POSTGRES_DATABASE=platform (owned by the role; the role also has CREATEDB)
#   REDIS_HOST=127.0.0.1 REDIS_PORT
#   PLATFORM_INTEGRATION=1
#   PLATFORM_TEST_PG_RESTART, PLATFORM_TEST_REDIS_RESTART: executables that restart that server in place and
#     exit 0 only once it serves again
#   PLATFORM_TEST_PG_SUPERUSER_SOCKET (unix socket directory), PLATFORM_TEST_PG_SUPERUSER=postgres
#   PLATFORM_TEST_PG_DATA, PLATFORM_TEST_PG_LOG: the test server's data directory and log file (for tests that
#     check no secret reaches the disk)
#   PLATFORM_TEST_CLICKHOUSE_PORT, PLATFORM_TEST_CLICKHOUSE_PASSWORD: a ClickHouse server (HTTP on 127.0.0.1, user
#     `default` with that password) for the engine's ClickHouse targets
TEST_TMP=''
TEST_PG_DATA=''
TEST_REDIS_DIR=''
TEST_CLICKHOUSE_DIR=''

# shellcheck disable=SC2317 # invoked by the EXIT trap
test_cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    set +e
    stop_test_stack
    if [[ -n $TEST_CLICKHOUSE_DIR ]]; then stop_clickhouse "$TEST_CLICKHOUSE_DIR" || lib_err "could not stop the test ClickHouse"; fi
    if [[ -n $TEST_REDIS_DIR ]]; then stop_redis "$TEST_REDIS_DIR" || lib_err "could not stop the test Redis"; fi
    if [[ -n $TEST_PG_DATA ]]; then stop_postgres "$TEST_PG_DATA" || lib_err "could not stop the test PostgreSQL"; fi
    if [[ -n $TEST_TMP && -d $TEST_TMP ]]; then
        if [[ ${PLATFORM_TEST_KEEP:-0} == 1 ]]; then
            lib_log "kept $TEST_TMP"
        else
            rm -rf -- "$TEST_TMP"
        fi
    fi
    exit "$rc"
}

cmd_test() {
    ensure_packages
    trap test_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP

    TEST_TMP=$(mktemp -d /tmp/platform-test.XXXXXXXX)
    chmod 755 -- "$TEST_TMP" # PostgreSQL (user postgres) must traverse it
    TEST_PG_DATA=$TEST_TMP/postgres
    TEST_REDIS_DIR=$TEST_TMP/redis
    local sock=$TEST_TMP/pg-socket pg_port redis_port password
    pg_port=$(free_port)
    redis_port=$(free_port "$pg_port")
    password=$(gen_secret)

    start_postgres "$TEST_PG_DATA" "$pg_port" "$sock" "$PG_ROLE" "$password" "$PG_DATABASE" throwaway
    pg_psql_super "$sock" "$pg_port" -c "ALTER ROLE $PG_ROLE CREATEDB"
    start_redis "$TEST_REDIS_DIR" "$redis_port" throwaway
    # A ClickHouse server for the engine's ClickHouse targets (a customer's warehouse, not part of the platform).
    ensure_packages clickhouse-server clickhouse-client
    TEST_CLICKHOUSE_DIR=$TEST_TMP/clickhouse
    local clickhouse_http clickhouse_tcp clickhouse_password
    clickhouse_http=$(free_port "$pg_port" "$redis_port")
    clickhouse_tcp=$(free_port "$pg_port" "$redis_port" "$clickhouse_http")
    clickhouse_password=$(gen_secret)
    start_clickhouse "$TEST_CLICKHOUSE_DIR" "$clickhouse_http" "$clickhouse_tcp" "$clickhouse_password"

    local lib
    lib=$(printf '%q' "$ROOT/deploy/lib.sh")
    cat >"$TEST_TMP/restart-postgres" <<EOF
#!/usr/bin/env bash
# Restarts the test PostgreSQL in place (pg_ctl restart -m fast); exits 0 once it accepts connections again.
set -euo pipefail
source $lib
restart_postgres $(printf '%q %q %q' "$TEST_PG_DATA" "$sock" "$pg_port")
EOF
    cat >"$TEST_TMP/restart-redis" <<EOF
#!/usr/bin/env bash
# Restarts the test Redis in place (stop by PID, start with the same arguments); exits 0 once it answers PONG.
set -euo pipefail
source $lib
restart_redis $(printf '%q' "$TEST_REDIS_DIR")
EOF
    chmod 755 -- "$TEST_TMP/restart-postgres" "$TEST_TMP/restart-redis"

    export POSTGRES_HOST=127.0.0.1 POSTGRES_PORT=$pg_port POSTGRES_USER=$PG_ROLE
    export POSTGRES_PASSWORD=$password POSTGRES_DATABASE=$PG_DATABASE
    export REDIS_HOST=127.0.0.1 REDIS_PORT=$redis_port
    export PLATFORM_INTEGRATION=1
    # A master key for the built-in vault of connections-vault, made for this run only.
    VAULT_MASTER_KEYS="test-$(date +%s):$(head -c 32 /dev/urandom | base64)"
    export VAULT_MASTER_KEYS
    export PLATFORM_TEST_PG_RESTART=$TEST_TMP/restart-postgres
    export PLATFORM_TEST_REDIS_RESTART=$TEST_TMP/restart-redis
    export PLATFORM_TEST_PG_SUPERUSER_SOCKET=$sock PLATFORM_TEST_PG_SUPERUSER=postgres
    PLATFORM_TEST_PG_DATA=$TEST_PG_DATA PLATFORM_TEST_PG_LOG=$(pg_log_file "$TEST_PG_DATA")
    export PLATFORM_TEST_PG_DATA PLATFORM_TEST_PG_LOG
    export PLATFORM_TEST_CLICKHOUSE_PORT=$clickhouse_http PLATFORM_TEST_CLICKHOUSE_PASSWORD=$clickhouse_password

    local -a extra=()
    read -r -a extra <<<"${PLATFORM_SWIFT_TEST_ARGS:-}"
    lib_log "building (swift build --build-tests)"
    (cd -- "$ROOT" && swift build --build-tests) || die "swift build failed"
    lib_log "PostgreSQL 127.0.0.1:$pg_port, Redis 127.0.0.1:$redis_port; running swift test ${extra[*]}"
    local rc=0 status
    (cd -- "$ROOT" && swift test --skip-build "${extra[@]}") || rc=$?
    lib_log "swift test exited with status $rc"

    local python
    python=$(test_python) || die "could not set up the Python test tools"
    status=0
    lib_log "running the proxy fault suite (Tests/ProxyFaults) against the built auth-gateway"
    (cd -- "$ROOT/Tests/ProxyFaults" && PLATFORM_BIN_DIR=$ROOT/.build/debug "$python" -m pytest -q -p no:cacheprovider .) || status=$?
    lib_log "the proxy fault suite exited with status $status"
    ((rc != 0)) || rc=$status

    status=0
    contract_test "$python" || status=$?
    lib_log "the contract test exited with status $status"
    ((rc != 0)) || rc=$status
    exit "$rc"
}

# The Python of a virtualenv under .build/ holding the pinned tools of Tests/requirements.txt; made again
# only when the pins change.
test_python() {
    local venv=$ROOT/.build/test-python requirements=$ROOT/Tests/requirements.txt stamp python=python3
    stamp=$(sha256sum <"$requirements" | cut -d' ' -f1)
    if [[ ! -x $venv/bin/python || $(cat -- "$venv/.requirements" 2>/dev/null) != "$stamp" ]]; then
        if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
            ensure_packages python3 python3-venv >&2 || return 1
            python=/usr/bin/python3
        fi
        lib_log "installing the Python test tools into $venv"
        rm -rf -- "$venv"
        "$python" -m venv "$venv" >&2 || return 1
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2 || return 1
        printf '%s\n' "$stamp" >"$venv/.requirements"
    fi
    printf '%s\n' "$venv/bin/python"
}

# The contract test: the whole platform started by `up` (the debug binaries, its own PostgreSQL and Redis on
# free ports under the test directory), then schemathesis with Tests/Contract/schemathesis.toml against the
# gateway's /openapi.json as an admin; `down` afterwards, whatever happened.
TEST_STACK_DIR=''
contract_test() {
    local python=$1 port name var
    local -a taken=()
    TEST_STACK_DIR=$TEST_TMP/stack
    export PLATFORM_DATA_DIR=$TEST_STACK_DIR PLATFORM_BIN_DIR=$ROOT/.build/debug PLATFORM_SKIP_BUILD=1
    for var in PLATFORM_PG_PORT PLATFORM_REDIS_PORT; do
        port=$(free_port "${taken[@]}") || return 1
        taken+=("$port")
        export "$var=$port"
    done
    for name in "${SERVICES[@]}"; do
        port=$(free_port "${taken[@]}") || return 1
        taken+=("$port")
        var=PLATFORM_${name//-/_}_PORT
        export "${var^^}=$port"
    done
    ADMIN_USERNAME=contract-admin ADMIN_PASSWORD=$(gen_secret)
    export ADMIN_USERNAME ADMIN_PASSWORD AUTH_BCRYPT_COST=4 LOG_LEVEL=warning
    export RATELIMIT_ADMIN=1000000 RATELIMIT_USER=1000000 RATELIMIT_ANONYMOUS=1000000
    lib_log "starting the platform for the contract test (deploy/local.sh up, data in $TEST_STACK_DIR)"
    "$SELF" up >"$TEST_TMP/contract-up.log" 2>&1 || { cat -- "$TEST_TMP/contract-up.log" >&2; return 1; }
    local gateway=http://127.0.0.1:$PLATFORM_AUTH_GATEWAY_PORT token
    token=$(curl -fsS -H 'Content-Type: application/json' \
        -d "{\"username\": \"$ADMIN_USERNAME\", \"password\": \"$ADMIN_PASSWORD\"}" "$gateway/api/v1/auth/login" |
        "$python" -c 'import json, sys; print(json.load(sys.stdin)["access_token"])') || return 1
    lib_log "seeding a connection, a project, a deployed pipeline and a run (Tests/Contract/seed.py)"
    "$python" "$ROOT/Tests/Contract/seed.py" "$gateway" "$token" 127.0.0.1 "$PLATFORM_PG_PORT" "$PG_DATABASE" "$PG_ROLE" \
        "$TEST_STACK_DIR/secrets/postgres.password" || { stop_test_stack; return 1; }
    lib_log "running schemathesis against $gateway/openapi.json"
    local rc=0
    (cd -- "$ROOT/Tests/Contract" && "$(dirname -- "$python")/schemathesis" --config-file schemathesis.toml run \
        -H "Authorization: Bearer $token" "$gateway/openapi.json") || rc=$?
    stop_test_stack
    return "$rc"
}

# Stops the contract test's platform, if one was started.
stop_test_stack() {
    [[ -n $TEST_STACK_DIR && -d $TEST_STACK_DIR ]] || return 0
    PLATFORM_DATA_DIR=$TEST_STACK_DIR "$SELF" down >>"$TEST_TMP/contract-down.log" 2>&1 || lib_err "could not stop the contract test's platform"
    TEST_STACK_DIR=''
}

main() {
    (($# >= 1)) || { usage; exit 2; }
    local cmd=$1
    shift
    case $cmd in
    up) (($# == 0)) || { usage; exit 2; }; cmd_up ;;
    down) (($# == 0)) || { usage; exit 2; }; cmd_down ;;
    status) (($# == 0)) || { usage; exit 2; }; cmd_status ;;
    logs) (($# <= 1)) || { usage; exit 2; }; cmd_logs "$@" ;;
    test) (($# == 0)) || { usage; exit 2; }; cmd_test ;;
    __supervise) (($# == 2)) || exit 2; supervise "$@" ;;
    -h | --help | help) usage ;;
    *) usage; exit 2 ;;
    esac
}

# On one line, so bash never reads past it: supervisors run for days while this file may be edited.
main "$@"; exit "$?"
