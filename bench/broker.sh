#!/usr/bin/env bash
# bench/broker.sh -- stratad end to end, driven by librdkafka
# (`strata-bench produce|consume --client rdkafka`),
# next to the storage engine's own append rate measured in the same run.
#
#   bench/broker.sh [--records N] [--size BYTES] [--repeat R] [--dir DIR]
#
# Builds the Release tree (make release) and, R times each, measures on a
# free loopback port with data under DIR (default ./bench-data/broker):
#   produce acks=all   stratad with its durable default (every commit
#                      fdatasync'ed; the ack waits for it), vs storage with fsync
#   produce acks=1     the same broker (the ack comes when the batch is in the
#                      page cache; the sync still runs), vs storage with fsync
#   produce acks=1     stratad with log.flush.interval.messages=MAX (flushing
#    (os flush)        left to the OS), vs storage with flushing left to the OS
#   consume            catch-up read of the acks=all records from the start
# N records of SIZE bytes to one partition. The storage rates come from
# `strata-bench storage` with 1 MiB batches (librdkafka's batch.size is
# 1,000,000 bytes and its batches fill at full rate). Prints min/median/max
# and produce/storage ratios. Brokers are stopped by pid however the script
# exits.
set -euo pipefail
cd "$(dirname "$0")/.."

records=200000 size=1024 repeat=3 dir=./bench-data/broker
while [ $# -gt 0 ]; do
    case "$1" in
    --records) records=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/broker.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

make --no-print-directory release >/dev/null
bin=build/release/bin
$bin/strata-bench produce --help | grep -q rdkafka || { echo "bench/broker.sh: strata-bench lacks librdkafka" >&2; exit 1; }
# The same settings rdkafka-load (which these workloads replaced) used:
# librdkafka defaults but linger.ms 5, batch.size 1000000, idempotence off.
load() { # $1 = produce|consume, rest = options; prints records/s
    local op=$1; shift
    $bin/strata-bench "$op" --client rdkafka -q --json --idempotence off "$@" |
        sed -n 's/.*"records_per_s":\([0-9.]*\).*/\1/p'
}
rm -rf "$dir"; mkdir -p "$dir"
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null || true' EXIT

start_broker() { # $1 = name, rest = extra overrides
    local name=$1; shift
    port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    $bin/stratad --override "listeners=PLAINTEXT://127.0.0.1:$port" --override "log.dirs=$dir/$name" \
        --override log.level=warn "$@" >"$dir/$name.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && return 0
        sleep 0.1
    done
    echo "bench/broker.sh: stratad did not start; see $dir/$name.log" >&2
    exit 1
}
stop_broker() { kill $pid; wait $pid || true; pid=; }

stats() { sort -g | awk '{v[NR]=$1} END {m=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2; printf "%.0f/%.0f/%.0f", v[1], m, v[NR]}'; }
med() { echo "$1" | cut -d/ -f2; }

declare -a pall p1d p1 cons
for r in $(seq "$repeat"); do
    start_broker durable
    sync # each run starts without the previous run's writeback, as strata-bench storage does
    pall+=("$(load produce -b 127.0.0.1:$port -t all-$r -n "$records" -s "$size" --acks all)")
    cons+=("$(load consume -b 127.0.0.1:$port -t all-$r -n "$records")")
    sync
    p1d+=("$(load produce -b 127.0.0.1:$port -t one-d-$r -n "$records" -s "$size" --acks 1)")
    stop_broker
    start_broker osflush --override log.flush.interval.messages=9223372036854775807
    sync
    p1+=("$(load produce -b 127.0.0.1:$port -t one-$r -n "$records" -s "$size" --acks 1)")
    stop_broker
    rm -rf "$dir/durable" "$dir/osflush"
    echo "run $r: produce acks=all ${pall[-1]} rec/s, acks=1 ${p1d[-1]} rec/s, consume ${cons[-1]} rec/s, acks=1 (os flush) ${p1[-1]} rec/s" >&2
done

storage=$($bin/strata-bench storage --dir "$dir/storage" --sizes 1024 --repeat "$repeat")
st_sync=$(echo "$storage" | awk '$1=="1024" && $2=="fsync" {print $6}')
st_os=$(echo "$storage" | awk '$1=="1024" && $2=="os" {print $6}')

a1d=$(printf '%s\n' "${p1d[@]}" | stats); a1=$(printf '%s\n' "${p1[@]}" | stats); aall=$(printf '%s\n' "${pall[@]}" | stats); c=$(printf '%s\n' "${cons[@]}" | stats)
echo
echo "stratad end to end: $records records of $size B, one partition, librdkafka $(pkg-config --modversion rdkafka), $repeat runs (min/median/max)"
printf '%-30s %-26s %-30s %s\n' "workload" "stratad records/s" "storage append records/s" "ratio (median)"
printf '%-30s %-26s %-30s %.2f\n' "produce acks=all (durable)" "$aall" "$st_sync (fsync)" "$(echo "$(med "$aall") $(med "$st_sync")" | awk '{print $1/$2}')"
printf '%-30s %-26s %-30s %.2f\n' "produce acks=1 (durable)" "$a1d" "$st_sync (fsync)" "$(echo "$(med "$a1d") $(med "$st_sync")" | awk '{print $1/$2}')"
printf '%-30s %-26s %-30s %.2f\n' "produce acks=1 (os flush)" "$a1" "$st_os (os flush)" "$(echo "$(med "$a1") $(med "$st_os")" | awk '{print $1/$2}')"
printf '%-30s %-26s\n' "consume (catch-up)" "$c"
echo "goal: end-to-end produce >= 0.70 of the storage append rate"
rm -rf "$dir"
