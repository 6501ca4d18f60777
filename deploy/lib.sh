# shellcheck shell=bash
# deploy/lib.sh: shell functions shared by deploy/local.sh and the bench/ scripts.
#
# Source it from bash (`source deploy/lib.sh`); it defines functions only and changes no shell options.
# Every function reports problems on stderr and returns non-zero, so it works both under `set -e`
# and in `if`/`||` contexts (where bash suspends errexit inside the function).
#
#   ensure_packages                      install the missing Debian packages the platform needs (apt)
#   pg_bin [DATA_DIR]                    the bin directory of the newest PostgreSQL (or of DATA_DIR's version)
#   start_postgres DATA PORT SOCKET_DIR ROLE PASSWORD DATABASE [durable|throwaway]
#   stop_postgres DATA                   fast shutdown, immediate shutdown as a fallback
#   restart_postgres DATA SOCKET_DIR PORT    pg_ctl restart -m fast, back when it accepts connections
#   pg_psql_super SOCKET_DIR PORT [psql args...]   psql as the superuser `postgres` over the unix socket
#   pg_ensure_database SOCKET_DIR PORT DATABASE OWNER
#   pg_log_file DATA                     where the server log of DATA is
#   start_redis DIR PORT [durable|throwaway] / stop_redis DIR / restart_redis DIR
#   redis_ping PORT                      true when Redis on 127.0.0.1:PORT answers PONG
#   start_clickhouse DIR HTTP_PORT TCP_PORT [PASSWORD] / stop_clickhouse DIR
#   clickhouse_ping PORT                 true when ClickHouse's HTTP interface on 127.0.0.1:PORT answers Ok.
#   port_listening PORT                  something listens on TCP PORT
#   free_port [EXCLUDED_PORT...]         a random free loopback TCP port (checked)
#   wait_for SECONDS DESCRIPTION CMD...  poll CMD until it succeeds; fail with a message at the deadline
#   wait_for_exit PID SECONDS            poll until PID is gone
#   pid_alive PID [PATTERN]              PID exists, is not a zombie, and its command line contains PATTERN
#   http_status URL                      the HTTP status code of GET URL ("000" when nothing answers)
#   gen_secret                           48 random hex characters
#
# PostgreSQL refuses to run as root: when called as root the cluster belongs to the OS user `postgres`
# and every server command runs through `runuser -u postgres --`; otherwise it belongs to the caller.
# Either way the database superuser is named `postgres` and is reachable only over the unix socket.

PLATFORM_APT_PACKAGES=(libpq-dev libhiredis-dev libcurl4-openssl-dev libssl-dev postgresql redis-server curl)

lib_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
lib_err() { printf 'error: %s\n' "$*" >&2; }

_now() { printf '%s\n' "${EPOCHSECONDS:-$(date +%s)}"; }

_is_port() { [[ $1 =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= 65535)); }
_is_ident() { [[ $1 =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] && ((${#1} <= 63)); }

# Absolute path without requiring it to exist.
_abspath() { realpath -m -- "$1"; }

# ---------------------------------------------------------------------------------------------------------
# Packages

# Installs those of PLATFORM_APT_PACKAGES (plus any package names given) that dpkg does not list as installed.
# Runs `apt-get update` once and only when something is missing; uses sudo only when not root.
# shellcheck disable=SC2120 # the extra package names are optional
ensure_packages() {
    local missing=() pkg state
    for pkg in "${PLATFORM_APT_PACKAGES[@]}" "$@"; do
        state=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null) || state=
        [[ $state == installed ]] || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0

    local sudo=()
    if ((EUID != 0)); then
        if ! command -v sudo >/dev/null 2>&1; then
            lib_err "missing packages (${missing[*]}) and not root, and sudo is not installed"
            return 1
        fi
        sudo=(sudo)
    fi
    lib_log "installing missing packages: ${missing[*]}"
    "${sudo[@]}" apt-get update || { lib_err "apt-get update failed"; return 1; }
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}" ||
        { lib_err "apt-get install ${missing[*]} failed"; return 1; }
}

# ---------------------------------------------------------------------------------------------------------
# Waiting and processes

# wait_for SECONDS DESCRIPTION CMD [ARGS...]: runs CMD (output discarded) every 0.2 s until it succeeds.
wait_for() {
    local timeout=$1 desc=$2
    shift 2
    local deadline=$(($(_now) + timeout))
    while :; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        if (($(_now) >= deadline)); then
            lib_err "timed out after ${timeout}s waiting for ${desc}"
            return 1
        fi
        sleep 0.2
    done
}

# pid_alive PID [PATTERN]: PID runs (not a zombie) and, if PATTERN is given, its command line contains it.
# The pattern guards against signalling an unrelated process that reused a stale PID.
pid_alive() {
    local pid=$1 pattern=${2:-} state cmdline
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/stat ]] || return 1
    state=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z && $state != X ]] || return 1
    if [[ -n $pattern ]]; then
        cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
        [[ $cmdline == *"$pattern"* ]] || return 1
    fi
    return 0
}

_pid_gone() { ! pid_alive "$1"; }

# wait_for_exit PID SECONDS
wait_for_exit() { wait_for "$2" "process $1 to exit" _pid_gone "$1"; }

# stop_pid PID SECONDS [PATTERN]: SIGTERM, wait up to SECONDS, then SIGKILL. True when it is gone.
stop_pid() {
    local pid=$1 timeout=$2 pattern=${3:-}
    pid_alive "$pid" "$pattern" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    wait_for_exit "$pid" "$timeout" 2>/dev/null && return 0
    lib_log "process $pid did not exit after ${timeout}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_for_exit "$pid" 10
}

# http_status URL: prints the status code, or 000 when the connection fails.
http_status() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$1" 2>/dev/null) || true
    printf '%s\n' "${code:-000}"
}

_http_ok() { [[ $(http_status "$1") == 200 ]]; }

gen_secret() { od -An -tx1 -N24 /dev/urandom | tr -d ' \n'; }

# ---------------------------------------------------------------------------------------------------------
# Ports

# _port_in_use PORT: some TCP socket (listening or connected) uses local port PORT.
_port_in_use() {
    if command -v ss >/dev/null 2>&1; then
        [[ -n $(ss -Htan "( sport = :$1 )" 2>/dev/null) ]]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

# port_listening PORT: something listens on TCP port PORT (TIME_WAIT leftovers do not count).
port_listening() {
    if command -v ss >/dev/null 2>&1; then
        [[ -n $(ss -Hltn "( sport = :$1 )" 2>/dev/null) ]]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

# free_port [EXCLUDED...]: a random port in 20000-32767 (below Linux's default ephemeral range) that no
# TCP socket uses and that is not among the excluded ones.
# shellcheck disable=SC2120 # the excluded ports are optional
free_port() {
    local port attempt excluded
    for ((attempt = 0; attempt < 200; attempt++)); do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 12768))
        for excluded in "$@"; do
            [[ $port == "$excluded" ]] && continue 2
        done
        if ! _port_in_use "$port"; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    lib_err "could not find a free TCP port"
    return 1
}

# ---------------------------------------------------------------------------------------------------------
# PostgreSQL

# The OS user that owns and runs the cluster.
_pg_os_user() { if ((EUID == 0)); then printf 'postgres\n'; else id -un; fi; }

# pg_run CMD [ARGS...]: runs CMD as the cluster's OS user, from / (the caller's directory may be closed to it).
pg_run() {
    if ((EUID == 0)); then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

# pg_bin [DATA_DIR]: the bin directory of the PostgreSQL matching DATA_DIR's PG_VERSION when there is one,
# else of the newest installed /usr/lib/postgresql/*/bin. PG_BIN overrides.
pg_bin() {
    local data=${1:-} dir version
    if [[ -n ${PG_BIN:-} ]]; then
        [[ -x $PG_BIN/pg_ctl ]] || { lib_err "PG_BIN=$PG_BIN has no pg_ctl"; return 1; }
        printf '%s\n' "$PG_BIN"
        return 0
    fi
    if [[ -n $data && -f $data/PG_VERSION ]]; then
        version=$(<"$data/PG_VERSION")
        dir=/usr/lib/postgresql/$version/bin
        if [[ -x $dir/pg_ctl ]]; then
            printf '%s\n' "$dir"
            return 0
        fi
        lib_err "$data was initialised by PostgreSQL $version, whose binaries ($dir) are not installed"
        return 1
    fi
    dir=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    if [[ ! -x $dir/pg_ctl ]]; then
        lib_err "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)"
        return 1
    fi
    printf '%s\n' "$dir"
}

pg_log_file() { printf '%s/server.log\n' "$(_abspath "$1")"; }

# _pg_check_reachable DIR: the cluster's OS user can enter DIR; otherwise names the first blocking ancestor.
_pg_check_reachable() {
    local dir=$1 user p
    user=$(_pg_os_user)
    pg_run test -x "$dir" 2>/dev/null && return 0
    # Walk down from / to name the first directory it cannot enter.
    local -a chain=()
    p=$dir
    while [[ $p != / && -n $p ]]; do
        chain=("$p" "${chain[@]}")
        p=$(dirname -- "$p")
    done
    for p in "${chain[@]}"; do
        if ! pg_run test -x "$p" 2>/dev/null; then
            lib_err "the '$user' user cannot enter $p ($(stat -c '%A %U:%G' -- "$p" 2>/dev/null)), so PostgreSQL" \
                "cannot use $dir; put the data under a directory it can traverse, or run: chmod o+x $p"
            return 1
        fi
    done
    lib_err "the '$user' user cannot enter $dir"
    return 1
}

# _pg_prepare_dir DIR: creates DIR owned by the cluster's OS user, mode 700, and checks that it can use it.
_pg_prepare_dir() {
    local dir=$1 user
    user=$(_pg_os_user)
    mkdir -p -- "$dir" || { lib_err "cannot create $dir"; return 1; }
    if ((EUID == 0)); then
        chown -- "$user:" "$dir" || { lib_err "cannot chown $dir to $user"; return 1; }
    fi
    chmod 700 -- "$dir" || return 1
    _pg_check_reachable "$dir" || return 1
    pg_run test -w "$dir" || { lib_err "the '$user' user cannot write to $dir"; return 1; }
}

# pg_psql_super SOCKET_DIR PORT [PSQL ARGS...]: psql as the superuser over the unix socket, stopping at the
# first error.
pg_psql_super() {
    local sock=$1 port=$2 bin
    shift 2
    bin=$(pg_bin) || return 1
    pg_run "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U postgres -d postgres "$@"
}

# _pg_status DATA: pg_ctl status exit code (0 running, 3 not running, 4 no data directory).
_pg_status() {
    local data=$1 bin rc=0
    bin=$(pg_bin "$data") || return 4
    pg_run "$bin/pg_ctl" status -D "$data" >/dev/null 2>&1 || rc=$?
    return "$rc"
}

pg_running() { _pg_status "$(_abspath "$1")"; }

# _pg_pid_line DATA N: line N of postmaster.pid (1 PID, 4 port, 5 socket directory).
_pg_pid_line() { sed -n "${2}p" "$1/postmaster.pid" 2>/dev/null; }

_pg_ready() { "$1/pg_isready" -q -h "$2" -p "$3" -t 2; }

# pg_ensure_role SOCKET_DIR PORT ROLE PASSWORD: creates ROLE (LOGIN) if missing and sets its password.
# The password reaches psql through a file readable only by the cluster's OS user, read into the psql
# variable pw; it is never on a command line and never echoed.
pg_ensure_role() {
    local sock=$1 port=$2 role=$3 password=$4 pwfile rc=0 user
    user=$(_pg_os_user)
    [[ -n $password ]] || { lib_err "empty password for role $role"; return 1; }
    pwfile=$sock/.role-password.$$.$RANDOM
    (umask 077 && printf '%s' "$password" >"$pwfile") || { lib_err "cannot write $pwfile"; return 1; }
    if ((EUID == 0)); then chown -- "$user:" "$pwfile" || { rm -f -- "$pwfile"; return 1; }; fi
    pg_psql_super "$sock" "$port" -v role="$role" -v pwfile="$pwfile" <<'SQL' || rc=$?
\set pw `cat :'pwfile'`
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN PASSWORD :'pw';
\unset pw
SQL
    rm -f -- "$pwfile"
    ((rc == 0)) || lib_err "could not create or update role $role"
    return "$rc"
}

# pg_ensure_database SOCKET_DIR PORT DATABASE OWNER: creates DATABASE owned by OWNER if missing and makes
# OWNER its owner (services create their schemas, so the role needs CREATE on the database).
pg_ensure_database() {
    local sock=$1 port=$2 db=$3 owner=$4
    _is_ident "$db" || { lib_err "invalid database name: $db"; return 1; }
    _is_ident "$owner" || { lib_err "invalid role name: $owner"; return 1; }
    pg_psql_super "$sock" "$port" -v db="$db" -v owner="$owner" <<'SQL' ||
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
ALTER DATABASE :"db" OWNER TO :"owner";
SQL
        { lib_err "could not create database $db"; return 1; }
}

# start_postgres DATA PORT SOCKET_DIR ROLE PASSWORD DATABASE [durable|throwaway]
# Initialises DATA if needed (superuser `postgres`: trust over the unix socket only; every other connection
# over TCP with scram-sha-256), starts it on 127.0.0.1:PORT with its socket in SOCKET_DIR (mode 700), and
# ensures ROLE (LOGIN, PASSWORD) and DATABASE owned by ROLE. Idempotent: an initialised DATA is reused and a
# running server is left running (it must be on PORT and SOCKET_DIR). Throwaway mode trades durability for
# speed (fsync, synchronous_commit and full_page_writes off): for test and benchmark servers only.
start_postgres() {
    if (($# < 6 || $# > 7)); then
        lib_err "usage: start_postgres DATA_DIR PORT SOCKET_DIR ROLE PASSWORD DATABASE [durable|throwaway]"
        return 1
    fi
    local data port=$2 sock role=$4 password=$5 db=$6 mode=${7:-durable}
    data=$(_abspath "$1")
    sock=$(_abspath "$3")
    _is_port "$port" || { lib_err "invalid port: $port"; return 1; }
    _is_ident "$role" || { lib_err "invalid role name: $role"; return 1; }
    _is_ident "$db" || { lib_err "invalid database name: $db"; return 1; }
    [[ $role != postgres ]] || { lib_err "the platform role must not be the superuser 'postgres'"; return 1; }
    [[ $mode == durable || $mode == throwaway ]] || { lib_err "mode must be durable or throwaway: $mode"; return 1; }
    [[ -n $password ]] || { lib_err "empty password for role $role"; return 1; }
    # sun_path holds 107 bytes; the socket file is SOCKET_DIR/.s.PGSQL.PORT
    if ((${#sock} + 18 > 107)); then
        lib_err "socket directory path too long for a unix socket: $sock"
        return 1
    fi

    local user bin log rc=0
    user=$(_pg_os_user)
    _pg_prepare_dir "$data" || return 1
    _pg_prepare_dir "$sock" || return 1

    if [[ ! -f $data/PG_VERSION ]]; then
        if [[ -n $(ls -A -- "$data") ]]; then
            lib_err "$data is neither empty nor a PostgreSQL data directory"
            return 1
        fi
        bin=$(pg_bin) || return 1
        local locale=C locales
        locales=$(locale -a 2>/dev/null) || locales=''
        if grep -qixE 'c\.utf-?8' <<<"$locales"; then locale=C.UTF-8; fi
        lib_log "initialising PostgreSQL cluster in $data"
        local -a initdb_opts=()
        [[ $mode == throwaway ]] && initdb_opts+=(--no-sync)
        pg_run "$bin/initdb" -D "$data" -U postgres --encoding=UTF8 --locale="$locale" \
            --auth-local=trust --auth-host=scram-sha-256 "${initdb_opts[@]}" >/dev/null ||
            { lib_err "initdb failed for $data"; return 1; }
        # Superuser: unix socket only. Everyone else: TCP from loopback with a password.
        pg_run tee "$data/pg_hba.conf" >/dev/null <<'HBA' || return 1
# Written by deploy/lib.sh (start_postgres).
# TYPE  DATABASE  USER      ADDRESS        METHOD
local   all       all                      trust
host    all       postgres  0.0.0.0/0      reject
host    all       postgres  ::/0           reject
host    all       all       127.0.0.1/32   scram-sha-256
host    all       all       ::1/128        scram-sha-256
HBA
        printf "\n# Settings managed by deploy/lib.sh (rewritten before every start)\ninclude_if_exists = 'platform.conf'\n" |
            pg_run tee -a "$data/postgresql.conf" >/dev/null || return 1
    fi
    bin=$(pg_bin "$data") || return 1
    log=$(pg_log_file "$data")

    _pg_status "$data" || rc=$?
    if ((rc == 0)); then
        local running_port running_sock
        running_port=$(_pg_pid_line "$data" 4)
        running_sock=$(_pg_pid_line "$data" 5)
        if [[ $running_port != "$port" || $running_sock != "$sock" ]]; then
            lib_err "PostgreSQL in $data already runs on port $running_port (socket $running_sock)," \
                "not $port ($sock); stop it first"
            return 1
        fi
        lib_log "PostgreSQL in $data already running on 127.0.0.1:$port"
    elif ((rc == 3)); then
        {
            printf '# Written by deploy/lib.sh (start_postgres, %s mode) before every start.\n' "$mode"
            printf "listen_addresses = '127.0.0.1'\n"
            printf 'port = %s\n' "$port"
            printf "unix_socket_directories = '%s'\n" "${sock//\'/\'\'}"
            printf 'unix_socket_permissions = 0700\n'
            printf "password_encryption = 'scram-sha-256'\n"
            printf 'max_connections = %s\n' "${PLATFORM_PG_MAX_CONNECTIONS:-200}"
            # Statement statistics for log_analysis jobs (and anyone tuning the platform's own queries).
            printf "shared_preload_libraries = 'pg_stat_statements'\n"
            if [[ $mode == throwaway ]]; then
                printf 'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n'
            fi
        } | pg_run tee "$data/platform.conf" >/dev/null || { lib_err "cannot write $data/platform.conf"; return 1; }
        lib_log "starting PostgreSQL ($mode) on 127.0.0.1:$port, data $data"
        if ! pg_run "$bin/pg_ctl" start -D "$data" -l "$log" -w -t 60 >/dev/null; then
            lib_err "PostgreSQL did not start; last lines of $log:"
            tail -n 20 -- "$log" >&2 2>/dev/null || true
            return 1
        fi
    else
        lib_err "cannot determine the state of PostgreSQL in $data (pg_ctl status exit $rc)"
        return 1
    fi

    wait_for 30 "PostgreSQL on $sock port $port" _pg_ready "$bin" "$sock" "$port" || return 1
    wait_for 30 "PostgreSQL on 127.0.0.1:$port" _pg_ready "$bin" 127.0.0.1 "$port" || return 1
    pg_ensure_role "$sock" "$port" "$role" "$password" || return 1
    pg_ensure_database "$sock" "$port" "$db" "$role" || return 1
}

# stop_postgres DATA: fast shutdown (waits up to 60 s), immediate shutdown if that fails. Fine if not running.
stop_postgres() {
    local data bin rc=0
    data=$(_abspath "$1")
    [[ -f $data/PG_VERSION ]] || return 0
    bin=$(pg_bin "$data") || return 1
    _pg_status "$data" || rc=$?
    ((rc == 0)) || return 0
    lib_log "stopping PostgreSQL in $data"
    pg_run "$bin/pg_ctl" stop -D "$data" -m fast -w -t 60 >/dev/null && return 0
    lib_log "fast shutdown failed; trying immediate shutdown"
    pg_run "$bin/pg_ctl" stop -D "$data" -m immediate -w -t 30 >/dev/null ||
        { lib_err "could not stop PostgreSQL in $data"; return 1; }
}

# restart_postgres DATA SOCKET_DIR PORT: restarts in place and returns once it accepts connections on both
# the unix socket and 127.0.0.1:PORT.
restart_postgres() {
    local data sock port=$3 bin log
    data=$(_abspath "$1")
    sock=$(_abspath "$2")
    bin=$(pg_bin "$data") || return 1
    log=$(pg_log_file "$data")
    pg_run "$bin/pg_ctl" restart -D "$data" -l "$log" -m fast -w -t 60 >/dev/null ||
        { lib_err "pg_ctl restart failed for $data"; return 1; }
    wait_for 30 "PostgreSQL on $sock port $port" _pg_ready "$bin" "$sock" "$port" || return 1
    wait_for 30 "PostgreSQL on 127.0.0.1:$port" _pg_ready "$bin" 127.0.0.1 "$port"
}

# ---------------------------------------------------------------------------------------------------------
# Redis

redis_ping() { [[ $(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) == PONG ]]; }

# redis_pid DIR: the PID in DIR/redis.pid when that process is a running redis-server.
redis_pid() {
    local dir pid
    dir=$(_abspath "$1")
    [[ -s $dir/redis.pid ]] || return 1
    pid=$(<"$dir/redis.pid")
    pid_alive "$pid" redis-server || return 1
    printf '%s\n' "$pid"
}

# _redis_args_port DIR: the --port recorded in DIR/redis.args.
_redis_args_port() {
    local -a args
    local i
    mapfile -d '' -t args <"$1/redis.args" 2>/dev/null || return 1
    for ((i = 0; i + 1 < ${#args[@]}; i++)); do
        if [[ ${args[i]} == --port ]]; then
            printf '%s\n' "${args[i + 1]}"
            return 0
        fi
    done
    return 1
}

# _redis_launch DIR ARGS...: starts redis-server with ARGS (daemonized) and waits for PONG.
_redis_launch() {
    local dir=$1 port
    shift
    port=$(_redis_args_port "$dir") || { lib_err "no port in $dir/redis.args"; return 1; }
    if ! redis-server "$@" >/dev/null; then
        lib_err "redis-server failed to start; last lines of $dir/redis.log:"
        tail -n 20 -- "$dir/redis.log" >&2 2>/dev/null || true
        return 1
    fi
    wait_for 30 "the Redis pid file $dir/redis.pid" redis_pid "$dir" || return 1
    wait_for 30 "Redis on 127.0.0.1:$port" redis_ping "$port"
}

# start_redis DIR PORT [durable|throwaway]: Redis on 127.0.0.1:PORT with its data, pid file and log in DIR.
# Durable: append-only file. Throwaway: no persistence. The arguments are recorded in DIR/redis.args so
# restart_redis can start it again identically. Idempotent when it already runs on PORT.
start_redis() {
    if (($# < 2 || $# > 3)); then
        lib_err "usage: start_redis DIR PORT [durable|throwaway]"
        return 1
    fi
    local dir port=$2 mode=${3:-durable} pid running_port
    dir=$(_abspath "$1")
    _is_port "$port" || { lib_err "invalid port: $port"; return 1; }
    [[ $mode == durable || $mode == throwaway ]] || { lib_err "mode must be durable or throwaway: $mode"; return 1; }
    command -v redis-server >/dev/null 2>&1 || { lib_err "redis-server not installed"; return 1; }
    mkdir -p -- "$dir" || { lib_err "cannot create $dir"; return 1; }
    chmod 700 -- "$dir" || return 1

    if pid=$(redis_pid "$dir"); then
        running_port=$(_redis_args_port "$dir") || running_port='?'
        if [[ $running_port != "$port" ]]; then
            lib_err "Redis in $dir already runs (PID $pid) on port $running_port, not $port; stop it first"
            return 1
        fi
        lib_log "Redis in $dir already running on 127.0.0.1:$port (PID $pid)"
        wait_for 30 "Redis on 127.0.0.1:$port" redis_ping "$port"
        return
    fi
    rm -f -- "$dir/redis.pid"

    local -a args=(--port "$port" --bind 127.0.0.1 --protected-mode yes --daemonize yes
        --pidfile "$dir/redis.pid" --dir "$dir" --logfile "$dir/redis.log")
    if [[ $mode == durable ]]; then
        args+=(--appendonly yes --appendfsync everysec)
    else
        args+=(--save '' --appendonly no)
    fi
    printf '%s\0' "${args[@]}" >"$dir/redis.args" || { lib_err "cannot write $dir/redis.args"; return 1; }
    lib_log "starting Redis ($mode) on 127.0.0.1:$port, data $dir"
    _redis_launch "$dir" "${args[@]}"
}

# stop_redis DIR: SIGTERM to the PID in DIR/redis.pid, SIGKILL after 30 s. Fine if not running.
stop_redis() {
    local dir pid
    dir=$(_abspath "$1")
    if ! pid=$(redis_pid "$dir"); then
        rm -f -- "$dir/redis.pid"
        return 0
    fi
    lib_log "stopping Redis in $dir (PID $pid)"
    stop_pid "$pid" 30 redis-server || { lib_err "could not stop Redis PID $pid"; return 1; }
    rm -f -- "$dir/redis.pid"
}

# restart_redis DIR: stops Redis by its PID, waits until it is gone, starts it with the recorded arguments
# and returns once it answers PONG.
restart_redis() {
    local dir
    dir=$(_abspath "$1")
    local -a args
    mapfile -d '' -t args <"$dir/redis.args" 2>/dev/null || { lib_err "no $dir/redis.args"; return 1; }
    ((${#args[@]} > 0)) || { lib_err "empty $dir/redis.args"; return 1; }
    stop_redis "$dir" || return 1
    _redis_launch "$dir" "${args[@]}"
}

# ---------------------------------------------------------------------------------------------------------
# ClickHouse

clickhouse_ping() { [[ $(curl -s --max-time 3 "http://127.0.0.1:$1/ping" 2>/dev/null) == Ok. ]]; }

# clickhouse_pid DIR: the PID in DIR/clickhouse.pid when that process is the clickhouse-server of DIR.
clickhouse_pid() {
    local dir pid
    dir=$(_abspath "$1")
    [[ -s $dir/clickhouse.pid ]] || return 1
    pid=$(<"$dir/clickhouse.pid")
    pid_alive "$pid" "--config-file=$dir/config.xml" || return 1
    printf '%s\n' "$pid"
}

# _clickhouse_conf_port DIR TAG: the value of <TAG> (http_port, tcp_port) in DIR/config.xml.
_clickhouse_conf_port() { sed -n "s:^ *<$2>\([0-9]*\)</$2>.*:\1:p" "$1/config.xml" 2>/dev/null | head -n 1; }

# _clickhouse_settled PID PORT: the server answers on PORT, or PID has exited (so waiting is pointless).
_clickhouse_settled() { clickhouse_ping "$2" || ! pid_alive "$1"; }

_clickhouse_log_tail() {
    lib_err "last lines of $1/log/clickhouse-server.log:"
    tail -n 20 -- "$1/log/clickhouse-server.log" >&2 2>/dev/null || true
    if [[ -s $1/log/stderr.log ]]; then
        lib_err "last lines of $1/log/stderr.log:"
        tail -n 10 -- "$1/log/stderr.log" >&2 2>/dev/null || true
    fi
}

# start_clickhouse DIR HTTP_PORT TCP_PORT: clickhouse-server on 127.0.0.1 only (HTTP on HTTP_PORT, native
# protocol on TCP_PORT, no interserver port), with config.xml, users.xml (both rewritten before every start),
# clickhouse.pid, data/ and log/ in DIR. Sized for a small shared machine: 64 MiB mark and uncompressed
# caches, 2 threads and 2 GB per query, 4 background merge threads. Server time zone UTC. One user, `default`,
# accepted from loopback only, with PASSWORD (stored as its SHA-256) or without one. Runs as the caller (clickhouse-server accepts root) in a
# session of its own. Idempotent when it already runs on the same ports; returns once /ping answers Ok.
start_clickhouse() {
    if (($# != 3 && $# != 4)); then
        lib_err "usage: start_clickhouse DIR HTTP_PORT TCP_PORT [PASSWORD]"
        return 1
    fi
    local dir http_port=$2 tcp_port=$3 password_line='<password></password>' pid running_http running_tcp port
    if [[ -n ${4:-} ]]; then
        password_line="<password_sha256_hex>$(printf '%s' "$4" | sha256sum | cut -d' ' -f1)</password_sha256_hex>"
    fi
    dir=$(_abspath "$1")
    _is_port "$http_port" || { lib_err "invalid port: $http_port"; return 1; }
    _is_port "$tcp_port" || { lib_err "invalid port: $tcp_port"; return 1; }
    [[ $http_port != "$tcp_port" ]] || { lib_err "the HTTP and TCP ports must differ: $http_port"; return 1; }
    # The path goes into XML unescaped.
    [[ $dir != *[\<\>\&]* ]] || { lib_err "the ClickHouse directory must not contain <, > or &: $dir"; return 1; }
    command -v clickhouse-server >/dev/null 2>&1 ||
        { lib_err "clickhouse-server not installed (apt-get install clickhouse-server)"; return 1; }
    command -v curl >/dev/null 2>&1 || { lib_err "curl not installed"; return 1; }
    mkdir -p -- "$dir/data" "$dir/log" || { lib_err "cannot create $dir"; return 1; }
    chmod 700 -- "$dir" || return 1

    if pid=$(clickhouse_pid "$dir"); then
        running_http=$(_clickhouse_conf_port "$dir" http_port)
        running_tcp=$(_clickhouse_conf_port "$dir" tcp_port)
        if [[ $running_http != "$http_port" || $running_tcp != "$tcp_port" ]]; then
            lib_err "ClickHouse in $dir already runs (PID $pid) on ports $running_http/$running_tcp," \
                "not $http_port/$tcp_port; stop it first"
            return 1
        fi
        lib_log "ClickHouse in $dir already running on 127.0.0.1:$http_port (PID $pid)"
        wait_for 60 "ClickHouse on 127.0.0.1:$http_port" clickhouse_ping "$http_port"
        return
    fi
    rm -f -- "$dir/clickhouse.pid"
    for port in "$http_port" "$tcp_port"; do
        if port_listening "$port"; then
            lib_err "cannot start ClickHouse in $dir: something already listens on port $port"
            return 1
        fi
    done

    cat >"$dir/config.xml" <<XML || { lib_err "cannot write $dir/config.xml"; return 1; }
<?xml version="1.0"?>
<!-- Written by deploy/lib.sh (start_clickhouse) before every start. -->
<yandex>
    <logger>
        <level>information</level>
        <log>$dir/log/clickhouse-server.log</log>
        <errorlog>$dir/log/clickhouse-server.err.log</errorlog>
        <size>50M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>$http_port</http_port>
    <tcp_port>$tcp_port</tcp_port>
    <path>$dir/data/</path>
    <tmp_path>$dir/data/tmp/</tmp_path>
    <user_files_path>$dir/data/user_files/</user_files_path>
    <format_schema_path>$dir/data/format_schemas/</format_schema_path>
    <users_config>$dir/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>67108864</mark_cache_size>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <max_concurrent_queries>50</max_concurrent_queries>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>10</keep_alive_timeout>
    <max_table_size_to_drop>0</max_table_size_to_drop>
    <max_partition_size_to_drop>0</max_partition_size_to_drop>
</yandex>
XML
    cat >"$dir/users.xml" <<XML || { lib_err "cannot write $dir/users.xml"; return 1; }
<?xml version="1.0"?>
<!-- Written by deploy/lib.sh (start_clickhouse) before every start. -->
<yandex>
    <profiles>
        <default>
            <max_threads>2</max_threads>
            <max_memory_usage>2000000000</max_memory_usage>
            <background_pool_size>4</background_pool_size>
            <use_uncompressed_cache>0</use_uncompressed_cache>
        </default>
    </profiles>
    <users>
        <default>
            $password_line
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default></default>
    </quotas>
</yandex>
XML

    chmod 600 -- "$dir/users.xml" || return 1
    lib_log "starting ClickHouse on 127.0.0.1:$http_port (native protocol $tcp_port), data $dir"
    # Not --daemon: it would write its pid file only after forking, and a server that dies early would leave
    # nothing to wait on. setsid -f detaches it from our session; the shell records its own PID and then
    # execs the server, so the recorded PID is the server's.
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
    if ! (cd / && setsid -f sh -c 'echo "$$" >"$1" && shift && exec "$@"' sh "$dir/clickhouse.pid" \
        clickhouse-server --config-file="$dir/config.xml" </dev/null >"$dir/log/stderr.log" 2>&1); then
        lib_err "could not launch clickhouse-server"
        return 1
    fi
    wait_for 10 "the ClickHouse pid file $dir/clickhouse.pid" test -s "$dir/clickhouse.pid" || return 1
    pid=$(<"$dir/clickhouse.pid")
    if ! wait_for 60 "ClickHouse on 127.0.0.1:$http_port" _clickhouse_settled "$pid" "$http_port"; then
        _clickhouse_log_tail "$dir"
        stop_pid "$pid" 30 "--config-file=$dir/config.xml" || true
        rm -f -- "$dir/clickhouse.pid"
        return 1
    fi
    if ! clickhouse_ping "$http_port"; then
        lib_err "clickhouse-server (PID $pid) exited during startup"
        _clickhouse_log_tail "$dir"
        rm -f -- "$dir/clickhouse.pid"
        return 1
    fi
}

# stop_clickhouse DIR: SIGTERM to the PID in DIR/clickhouse.pid, SIGKILL after 60 s. Fine if not running.
stop_clickhouse() {
    local dir pid
    dir=$(_abspath "$1")
    if ! pid=$(clickhouse_pid "$dir"); then
        rm -f -- "$dir/clickhouse.pid"
        return 0
    fi
    lib_log "stopping ClickHouse in $dir (PID $pid)"
    stop_pid "$pid" 60 "--config-file=$dir/config.xml" || { lib_err "could not stop ClickHouse PID $pid"; return 1; }
    rm -f -- "$dir/clickhouse.pid"
}
