#!/usr/bin/env bash
# bench/broker.sh -- stratad end to end, driven by librdkafka (rdkafka-load),
# next to the storage engine's own append rate measured in the same run.
#
#   bench/broker.sh [--records N] [--size BYTES] [--repeat R] [--dir DIR]
#
# Builds the Release tree (make release), starts build/release/bin/stratad on
# a free loopback port with its data under DIR (default ./bench-data/broker,
# the disk under test), and for R runs each measures
#   produce acks=1, produce acks=all   N records of SIZE bytes to one partition
#   consume (catch-up)                 the same N records from the beginning
# then runs `strata-bench storage` for 1 MiB batches (librdkafka's default
# batch.size is 1,000,000 bytes; at full rate its batches fill) and prints
# min/median/max and the ratios produce / storage append. The broker is
# stopped by pid when the script exits, however it exits.
set -euo pipefail
cd "$(dirname "$0")/.."

records=200000 size=1024 repeat=3 dir=./bench-data/broker
while [ $# -gt 0 ]; do
    case "$1" in
    --records) records=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/broker.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

make --no-print-directory release >/dev/null
bin=build/release/bin
[ -x $bin/rdkafka-load ] || { echo "bench/broker.sh: rdkafka-load not built (librdkafka-dev missing?)" >&2; exit 1; }

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rm -rf "$dir"; mkdir -p "$dir"
log="$dir/stratad.log"
$bin/stratad --override "listeners=PLAINTEXT://127.0.0.1:$port" --override "log.dirs=$dir/data" \
    --override log.level=warn >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
    sleep 0.1
done

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
stats() { sort -g | awk '{v[NR]=$1} END {m=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2; printf "%.0f/%.0f/%.0f", v[1], m, v[NR]}'; }

declare -a p1 pall cons
for r in $(seq "$repeat"); do
    t=bench-$r
    sync # start each run without the previous run's writeback (as strata-bench storage does)
    out=$($bin/rdkafka-load produce -b 127.0.0.1:$port -t $t-a1 -n "$records" -s "$size" --acks 1)
    p1+=("$(echo "$out" | field rps)")
    sync
    out=$($bin/rdkafka-load produce -b 127.0.0.1:$port -t $t-all -n "$records" -s "$size" --acks all)
    pall+=("$(echo "$out" | field rps)")
    out=$($bin/rdkafka-load consume -b 127.0.0.1:$port -t $t-all -n "$records")
    cons+=("$(echo "$out" | field rps)")
    echo "run $r: produce acks=1 ${p1[-1]} rec/s, acks=all ${pall[-1]} rec/s, consume ${cons[-1]} rec/s" >&2
done
kill $pid; wait $pid || true; trap - EXIT

storage=$($bin/strata-bench storage --dir "$dir/storage" --sizes 1024 --repeat "$repeat")
st_sync=$(echo "$storage" | awk '$1=="1024" && $2=="fsync" {print $6}')
st_os=$(echo "$storage" | awk '$1=="1024" && $2=="os" {print $6}')
med() { echo "$1" | cut -d/ -f2; }

echo
echo "stratad end to end: $records records of $size B, one partition, librdkafka $(pkg-config --modversion rdkafka), $repeat runs (min/median/max)"
printf '%-22s %-26s %-26s %s\n' "workload" "stratad records/s" "storage append records/s" "ratio (median)"
a1=$(printf '%s\n' "${p1[@]}" | stats); aall=$(printf '%s\n' "${pall[@]}" | stats); c=$(printf '%s\n' "${cons[@]}" | stats)
printf '%-22s %-26s %-26s %.2f\n' "produce acks=1" "$a1" "$st_os (os flush)" "$(echo "$(med "$a1") $(med "$st_os")" | awk '{print $1/$2}')"
printf '%-22s %-26s %-26s %.2f\n' "produce acks=all" "$aall" "$st_sync (fsync)" "$(echo "$(med "$aall") $(med "$st_sync")" | awk '{print $1/$2}')"
printf '%-22s %-26s\n' "consume (catch-up)" "$c"
echo "goal: end-to-end produce >= 0.70 of the storage append rate"
rm -rf "$dir"
