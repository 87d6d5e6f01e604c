#!/usr/bin/env bash
# One load run of two callpop nodes on Redis: either one redis-server
# ("single") or a Redis Cluster of three masters ("cluster"), the same
# sessions and webhook rate either way (docs/benchmarks.md "Redis Cluster:
# three shards vs one Redis"). It starts everything itself on free loopback
# ports, prints callpop-bench's JSON line (its "watch_load_cpu_pct" holds each
# redis-server's CPU under load) and one JSON line per Redis with what it
# did during the run (commands by name, CPU, memory, keys), then stops what
# it started.
#
#   scripts/bench-redis-cluster.sh single  [callpop-bench flags…]
#   scripts/bench-redis-cluster.sh cluster [callpop-bench flags…]
#
# Defaults: --sessions 10000 --users 2000 --rate 1000 --duration 30s; flags
# given are added after them (the last of a flag wins). The servers (Redis
# and both nodes) run on SERVER_CPUS (0), the load tool on TOOL_CPUS (1).
# Needs redis-server and redis-cli (Redis 7: sharded pub/sub), Go and curl.
#
# MEM_BY_KIND=1 adds, per Redis, a JSON line of MEMORY USAGE summed over its
# keys by kind (call, outbox, log, active, recent, versions, ...), then
# deletes the outbox keys and reads used_memory again: what the calls still
# hold once their outboxes expired (docs/benchmarks.md "Outbox TTL").
set -euo pipefail
cd "$(dirname "$0")/.."

shape=${1:-}
case "$shape" in
single | cluster) shift ;;
*)
	echo "usage: $0 single|cluster [callpop-bench flags…]" >&2
	exit 2
	;;
esac
SERVER_CPUS=${SERVER_CPUS:-0}
TOOL_CPUS=${TOOL_CPUS:-1}

work=$(mktemp -d /tmp/callpop-rc.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/callpop" ./cmd/callpop
go build -o "$work/callpop-bench" ./cmd/callpop-bench

# free_ports N: N loopback ports that are free, with port+10000 free too
# (a cluster node's bus port).
free_ports() {
	python3 - "$1" <<'EOF'
import socket, sys
n, out = int(sys.argv[1]), []
while len(out) < n:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
    if p + 10000 > 65535 or p in out:
        continue
    try:
        b = socket.socket(); b.bind(("127.0.0.1", p + 10000)); b.close()
    except OSError:
        continue
    out.append(p)
print(" ".join(map(str, out)))
EOF
}

# Redis: no persistence, as a cache-like broker in the other runs.
redis_ports=()
if [ "$shape" = single ]; then
	read -r -a redis_ports <<<"$(free_ports 1)"
else
	read -r -a redis_ports <<<"$(free_ports 3)"
fi
for p in "${redis_ports[@]}"; do
	mkdir -p "$work/redis-$p"
	extra=()
	if [ "$shape" = cluster ]; then
		extra=(--cluster-enabled yes --cluster-config-file "$work/redis-$p/nodes.conf" --cluster-node-timeout 5000)
	fi
	taskset -c "$SERVER_CPUS" redis-server --port "$p" --bind 127.0.0.1 --save "" --appendonly no \
		--dir "$work/redis-$p" "${extra[@]}" >"$work/redis-$p/log" 2>&1 &
	pids+=($!)
	redis_pids+=($!)
done
for p in "${redis_ports[@]}"; do
	until redis-cli -p "$p" ping >/dev/null 2>&1; do sleep 0.1; done
done
if [ "$shape" = cluster ]; then
	addrs=()
	for p in "${redis_ports[@]}"; do addrs+=("127.0.0.1:$p"); done
	redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$work/cluster-create.log"
	for p in "${redis_ports[@]}"; do
		until redis-cli -p "$p" cluster info | grep -q '^cluster_state:ok'; do sleep 0.1; done
	done
	url="redis-cluster://$(
		IFS=,
		echo "${addrs[*]}"
	)"
else
	url="redis://127.0.0.1:${redis_ports[0]}/0"
fi

# Two nodes; per-address limits off (the tool's sockets come from 50
# addresses and every webhook from one).
export CALLPOP_CRM_TOKEN=bench-crm-token-16 CALLPOP_JWT_SECRET=0123456789abcdef0123456789abcdef-bench
export CALLPOP_CONNECT_RATE=0 CALLPOP_WEBHOOK_RATE=0 CALLPOP_LOG_LEVEL=warn CALLPOP_REDIS_URL="$url"
read -r -a node_ports <<<"$(free_ports 2)"
targets=() node_pids=()
for p in "${node_ports[@]}"; do
	taskset -c "$SERVER_CPUS" "$work/callpop" serve --addr "127.0.0.1:$p" 2>"$work/node-$p.log" &
	pids+=($!)
	node_pids+=($!)
	targets+=("http://127.0.0.1:$p")
done
for p in "${node_ports[@]}"; do
	until curl -sf "http://127.0.0.1:$p/readyz" >/dev/null; do sleep 0.1; done
done

# Each Redis's counters before and after: commands, sharded and classic
# publishes, memory and keys.
redis_stats() { # port
	local info
	info=$(redis-cli -p "$1" info all | tr -d '\r')
	python3 - "$1" "$info" <<'EOF'
import json, re, sys
port, info = sys.argv[1], sys.argv[2]
kv = dict(l.split(":", 1) for l in info.splitlines() if ":" in l and not l.startswith("#"))
def calls(cmd):
    m = re.search(r"calls=(\d+)", kv.get("cmdstat_" + cmd, ""))
    return int(m.group(1)) if m else 0
keys = sum(int(re.search(r"keys=(\d+)", v).group(1)) for k, v in kv.items() if re.fullmatch(r"db\d+", k))
print(json.dumps({"port": int(port), "commands": int(kv["total_commands_processed"]),
    "spublish": calls("spublish"), "publish": calls("publish"), "evalsha": calls("evalsha"),
    "used_memory": int(kv["used_memory"]), "keys": keys,
    "cpu_s": float(kv["used_cpu_sys"]) + float(kv["used_cpu_user"]),
    "calls": {k[len("cmdstat_"):]: int(re.search(r"calls=(\d+)", v).group(1)) for k, v in kv.items() if k.startswith("cmdstat_")}}))
EOF
}
for p in "${redis_ports[@]}"; do redis_stats "$p" >"$work/before-$p.json"; done

watch=()
for i in "${!redis_ports[@]}"; do watch+=("redis$((i + 1))=${redis_pids[$i]}"); done
rc=0
taskset -c "$TOOL_CPUS" "$work/callpop-bench" --json \
	--target "$(
		IFS=,
		echo "${targets[*]}"
	)" \
	--server-pid "$(
		IFS=,
		echo "${node_pids[*]}"
	)" \
	--watch-pid "$(
		IFS=,
		echo "${watch[*]}"
	)" \
	--sessions 10000 --users 2000 --rate 1000 --duration 30s "$@" || rc=$?

# Per Redis: what the whole run (connecting, load, drain) cost it.
for i in "${!redis_ports[@]}"; do
	p=${redis_ports[$i]}
	redis_stats "$p" >"$work/after-$p.json"
	python3 - "redis$((i + 1))" "$work/before-$p.json" "$work/after-$p.json" <<'EOF'
import json, sys
name, a, b = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
print(json.dumps({"redis": name, "run_commands": b["commands"] - a["commands"],
    "run_spublish": b["spublish"] - a["spublish"], "run_publish": b["publish"] - a["publish"],
    "run_evalsha": b["evalsha"] - a["evalsha"], "run_cpu_s": round(b["cpu_s"] - a["cpu_s"], 2),
    "used_memory_mib": round(b["used_memory"] / 2**20, 1), "keys": b["keys"],
    "run_calls": dict(sorted(((c, n - a["calls"].get(c, 0)) for c, n in b["calls"].items() if n > a["calls"].get(c, 0)), key=lambda x: -x[1]))}))
EOF
done

# mem_by_kind PORT: MEMORY USAGE summed by key kind, over a raw RESP socket
# (keys hold braces and colons); then the outbox keys deleted and
# used_memory read again.
mem_by_kind() {
	python3 - "$1" <<'EOF'
import json, socket, sys
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port)); f = s.makefile("rb")
def enc(*a):
    out = b"*%d\r\n" % len(a)
    for x in a:
        x = x if isinstance(x, bytes) else str(x).encode()
        out += b"$%d\r\n%s\r\n" % (len(x), x)
    return out
def read():
    l = f.readline()[:-2]; t, r = l[:1], l[1:]
    if t == b"+": return r.decode()
    if t == b"-": raise RuntimeError(r.decode())
    if t == b":": return int(r)
    if t == b"$":
        n = int(r)
        return None if n < 0 else f.read(n + 2)[:-2]
    if t == b"*":
        n = int(r)
        return None if n < 0 else [read() for _ in range(n)]
def cmd(*a):
    s.sendall(enc(*a)); return read()
def used():
    info = cmd("INFO", "memory").decode().splitlines()
    return int([l for l in info if l.startswith("used_memory:")][0].split(":")[1])
keys, cur = [], b"0"
while True:
    cur, batch = cmd("SCAN", cur, "COUNT", 1000); keys += batch
    if cur == b"0": break
kind = lambda k: k.split(b":")[1].decode() if k.count(b":") >= 2 else k.decode()
s.sendall(b"".join(enc("MEMORY", "USAGE", k, "SAMPLES", "0") for k in keys))
by = {}
for k in keys:
    e = by.setdefault(kind(k), [0, 0]); e[0] += 1; e[1] += read() or 0
before = used()
outbox = [k for k in keys if kind(k) == "outbox"]
s.sendall(b"".join(enc("DEL", k) for k in outbox))  # one slot per command
for k in outbox: read()
print(json.dumps({"port": port, "used_memory": before, "used_memory_outbox_deleted": used(),
    "by_kind": {k: {"keys": n, "bytes": b} for k, (n, b) in sorted(by.items())}}))
EOF
}
if [ "${MEM_BY_KIND:-}" = 1 ]; then
	for p in "${redis_ports[@]}"; do mem_by_kind "$p"; done
fi
exit "$rc"
