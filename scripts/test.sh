#!/usr/bin/env bash
# Runs every callpop test on a fresh machine: installs what the tests need
# when it is missing (redis-server for the Redis broker tests, redis-sentinel
# for the Sentinel failover tests, chromium for the widget's browser tests,
# nginx for the load-balancer tests, node for the widget's unit tests,
# prometheus for promtool), then vets, runs `go test -race ./...`, the offline
# deployment checks (manifests, Helm chart, alert rules, dashboard), the
# widget's node tests and a short fuzzing pass.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || need+=(redis-sentinel) # the failover tests
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
command -v node >/dev/null 2>&1 || need+=(nodejs) # the widget's unit tests (node --test)
# promtool checks and unit-tests the alert rules; Debian ships it in the
# prometheus package (installed, not started: the package starts no service
# without an init system, and nothing here needs one).
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "test.sh: installing ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "test.sh: gofmt would change: $unformatted" >&2
  exit 1
fi
go vet ./...
go test -race -count=1 -timeout 20m ./...
# Offline checks of the deployment files (their own module: k8s.io/api,
# compose-go, Helm's renderer): the manifests, the compose file, the Helm chart
# rendered for each values file, the Grafana dashboard.
(cd deploy/k8scheck && go vet ./... && go test -count=1 ./...)
# The alert rules: valid, and each alert fires (and stays quiet) as its tests
# say.
promtool check rules deploy/prometheus/alerts.yaml
promtool test rules deploy/prometheus/alerts_test.yaml

# The widget's pure logic, in Node's own test runner.
node --test widget/

# A short fuzzing pass over the PBX parsers, the frame codec and the hub's
# WebSocket frame reader, on top of
# their kept corpus (which already ran above as ordinary tests). Bounded by a
# count of executions, not a duration: a duration can end while an input is
# running and the fuzzer then reports "context deadline exceeded" as a failure.
FUZZN=${FUZZN:-20000}
for target in FuzzParseBody FuzzWebhook FuzzURLEncodedMatchesParseQuery; do
  go test -run='^$' -fuzz="^$target\$" -fuzztime="${FUZZN}x" ./webhook/
done
for target in FuzzWithID FuzzParseID; do
  go test -run='^$' -fuzz="^$target\$" -fuzztime="${FUZZN}x" ./event/
done
# The hub's transport: any client byte stream is read, refused or closed cleanly.
go test -run='^$' -fuzz='^FuzzReadFrame$' -fuzztime="${FUZZN}x" ./hub/transport/
