#!/usr/bin/env bash
# Runs a local Strata cluster on loopback: one standalone ZooKeeper (Debian's
# `zookeeper` package) and N stratad brokers with metadata.store=zookeeper,
# each with its own ports, data directory and log under one folder.
#
#   scripts/cluster.sh up N     start ZooKeeper + brokers 1..N (N >= 1, default 3)
#   scripts/cluster.sh status   pid, state and address of each process
#   scripts/cluster.sh down     SIGTERM each recorded pid (SIGKILL after 20 s)
#
# Environment:
#   STRATA_CLUSTER_DIR  folder for data, logs, pids (default ./cluster)
#   STRATAD             broker binary (default build/bin/stratad)
#   ZK_PORT             ZooKeeper port (default 2181)
#   BASE_PORT           broker i listens on BASE_PORT+i (default 9090: 9091, 9092, ...),
#                       its admin HTTP on ADMIN_BASE+i (default 9640)
#   RACKS               comma list of racks given to brokers in turn (e.g. r1,r2,r3); unset: none
# Each broker's server.properties is written to <dir>/b<i>/server.properties
# (edit and restart to change settings); see docs/operations.md.
set -euo pipefail

DIR=${STRATA_CLUSTER_DIR:-./cluster}
STRATAD=${STRATAD:-build/bin/stratad}
ZK_PORT=${ZK_PORT:-2181}
BASE_PORT=${BASE_PORT:-9090}
ADMIN_BASE=${ADMIN_BASE:-9640}
ZK_JAR=/usr/share/java/zookeeper.jar

usage() {
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_port() { # host port seconds
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

up() {
    local n=${1:-3}
    [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] || usage
    [ -x "$STRATAD" ] || { echo "cluster: $STRATAD is not executable (build first, or set STRATAD)" >&2; exit 1; }
    command -v java > /dev/null && [ -f "$ZK_JAR" ] ||
        { echo "cluster: needs java and $ZK_JAR (bash scripts/deps.sh)" >&2; exit 1; }
    mkdir -p "$DIR/zk"
    DIR=$(cd "$DIR" && pwd)
    if alive "$DIR/zk.pid"; then
        echo "cluster: ZooKeeper already running (pid $(cat "$DIR/zk.pid"))"
    else
        java -Xmx256m -Dzookeeper.admin.enableServer=false \
            -cp "$ZK_JAR:/usr/share/java/*" org.apache.zookeeper.server.ZooKeeperServerMain \
            "$ZK_PORT" "$DIR/zk" > "$DIR/zk.log" 2>&1 &
        echo $! > "$DIR/zk.pid"
        wait_port 127.0.0.1 "$ZK_PORT" 30 || { echo "cluster: ZooKeeper did not start (see $DIR/zk.log)" >&2; exit 1; }
        echo "cluster: ZooKeeper on 127.0.0.1:$ZK_PORT (pid $(cat "$DIR/zk.pid"))"
    fi
    IFS=, read -r -a racks <<< "${RACKS:-}"
    local i
    for ((i = 1; i <= n; i++)); do
        local b="$DIR/b$i" port=$((BASE_PORT + i))
        mkdir -p "$b/data"
        if alive "$b/pid"; then
            echo "cluster: broker $i already running (pid $(cat "$b/pid"))"
            continue
        fi
        if [ ! -f "$b/server.properties" ]; then
            {
                echo "# broker $i of the local cluster (scripts/cluster.sh)"
                echo "broker.id=$i"
                echo "listeners=PLAINTEXT://127.0.0.1:$port"
                echo "log.dirs=$b/data"
                echo "admin.listener=127.0.0.1:$((ADMIN_BASE + i))"
                echo "metadata.store=zookeeper"
                echo "zookeeper.connect=127.0.0.1:$ZK_PORT/strata"
                if [ ${#racks[@]} -gt 0 ]; then
                    echo "broker.rack=${racks[$(((i - 1) % ${#racks[@]}))]}"
                fi
            } > "$b/server.properties"
        fi
        "$STRATAD" -c "$b/server.properties" >> "$b/stratad.log" 2>&1 &
        echo $! > "$b/pid"
        # one at a time: the first broker creates __consumer_offsets
        if ! wait_port 127.0.0.1 "$port" 30; then
            echo "cluster: broker $i did not start (see $b/stratad.log)" >&2
            exit 1
        fi
        echo "cluster: broker $i on 127.0.0.1:$port (pid $(cat "$b/pid"))"
    done
    echo "cluster: bootstrap servers $(for ((i = 1; i <= n; i++)); do printf '127.0.0.1:%d' $((BASE_PORT + i)); [ $i -lt $n ] && printf ','; done)"
}

stop_pid() { # pidfile name
    alive "$1" || { rm -f "$1"; return 0; }
    local pid
    pid=$(cat "$1")
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 200; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "cluster: $2 (pid $pid) ignored SIGTERM for 20 s; SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$1"
    echo "cluster: stopped $2 (pid $pid)"
}

down() {
    [ -d "$DIR" ] || { echo "cluster: nothing in $DIR"; return 0; }
    local f
    for f in "$DIR"/b*/pid; do
        [ -e "$f" ] || continue
        stop_pid "$f" "broker $(basename "$(dirname "$f")" | tr -d b)"
    done
    stop_pid "$DIR/zk.pid" ZooKeeper
}

status() {
    [ -d "$DIR" ] || { echo "cluster: nothing in $DIR"; return 0; }
    if alive "$DIR/zk.pid"; then
        echo "zookeeper  pid $(cat "$DIR/zk.pid")  running"
    else
        echo "zookeeper  stopped"
    fi
    local b
    for b in "$DIR"/b*; do
        [ -d "$b" ] || continue
        local l
        l=$(grep -m1 '^listeners=' "$b/server.properties" 2>/dev/null | cut -d= -f2-)
        if alive "$b/pid"; then
            echo "$(basename "$b")  pid $(cat "$b/pid")  running  $l"
        else
            echo "$(basename "$b")  stopped  $l"
        fi
    done
}

case "${1:-}" in
up) up "${2:-3}" ;;
down) down ;;
status) status ;;
*) usage ;;
esac
