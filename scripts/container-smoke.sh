#!/usr/bin/env bash
# Build the Docker image with podman and check it end to end on this machine:
#   1. ../shared/tools/container-check.sh builds the image (from a locally made Debian base) and
#      waits for the container's /readyz to report the bundled corpus loaded;
#   2. the image is started again: the HEALTHCHECK passes, POST /v1/ask gets an answerable, cited
#      answer whose quotes are exact slices of their passages, POST /v1/search ranks passages;
#   3. a documents folder and a named index volume are mounted as the README says: `rag ingest
#      /data/docs` adds a file, and a server on that volume (RAG_PORT overridden) finds it.
# The containers, the volume and the image are removed at the end (the Debian base image stays
# cached in podman's storage). Prints `container-smoke: 1 passed, 0 failed` (exit 0) or
# `container-smoke: 0 passed, 1 failed` (exit 1); where podman is missing and cannot be
# installed, or cannot run here, prints `container-smoke: skipped (reason)` and exits 0.
#
# env: CONTAINER_CHECK (path of container-check.sh), SMOKE_CONTEXT (build context, default the
#      repository), IMAGE (tag), SMOKE_PORT / CHECK_PORT (host ports, 18001 / 18000),
#      BUILD_ARGS (extra `podman build` arguments; -v /opt/wheels:/wheels:ro is added when
#      /opt/wheels exists, so the CPU torch wheel there is used instead of downloading it).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONTAINER_CHECK=${CONTAINER_CHECK:-$(dirname "$0")/../../shared/tools/container-check.sh}
CONTEXT=${SMOKE_CONTEXT:-$ROOT}
IMAGE=${IMAGE:-localhost/rag-zh:smoke}
CHECK_PORT=${CHECK_PORT:-18000}
PORT=${SMOKE_PORT:-18001}
QUESTION='碳谷2023年的税收是多少？'
T0=$(date +%s)
step() { echo "container-smoke [$(($(date +%s) - T0))s] $*"; }
skip() { echo "container-smoke: skipped ($*)"; exit 0; }

# --- can podman run here? ---------------------------------------------------------------------
[ "$(uname -s)" = Linux ] || skip "not Linux"
[ -f "$CONTAINER_CHECK" ] || skip "no container-check.sh at $CONTAINER_CHECK"
command -v python3 >/dev/null || skip "python3 is needed to read the JSON replies"
if ! command -v podman >/dev/null || ! command -v runc >/dev/null \
    || ! command -v debootstrap >/dev/null || ! command -v curl >/dev/null; then
  [ "$(id -u)" = 0 ] || skip "podman is not installed and installing it needs root"
  command -v apt-get >/dev/null || skip "podman is not installed and there is no apt-get"
  step "apt-get install podman runc debootstrap curl"
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
         && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap curl; } \
         > /tmp/container-smoke-apt.log 2>&1; then
    tail -5 /tmp/container-smoke-apt.log
    skip "podman could not be installed: apt-get failed"
  fi
fi
# container-check.sh runs rootful podman and debootstrap
[ "$(id -u)" = 0 ] || skip "the container check needs root: rootful podman, debootstrap"

WORK=$(mktemp -d /tmp/container-smoke.XXXXXX)
# The podman settings container-check.sh uses on this kind of machine: runc (crun fails on
# hybrid cgroups) and rlimits capped to the host's (no CAP_SYS_RESOURCE).
NOFILE=$(ulimit -Hn); [ "$NOFILE" = unlimited ] && NOFILE=1048576
PIDMAX=$(cat /proc/sys/kernel/pid_max)
NPROC=$(ulimit -Hu); { [ "$NPROC" = unlimited ] || [ "$NPROC" -gt "$PIDMAX" ]; } && NPROC=$PIDMAX
cat > "$WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$NOFILE:$NOFILE", "nproc=$NPROC:$NPROC"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF="$WORK/containers.conf"
if ! podman info > "$WORK/podman-info.log" 2>&1; then
  tail -5 "$WORK/podman-info.log"
  rm -rf "$WORK"
  skip "podman cannot run here: podman info failed"
fi
# the build stage and the image take about 3.5 GB in podman's storage at the peak
STORE=$(podman info --format '{{.Store.GraphRoot}}' 2>/dev/null || echo /var/lib/containers)
while [ ! -d "$STORE" ]; do STORE=$(dirname "$STORE"); done
FREE_MB=$(df -Pm "$STORE" | awk 'NR == 2 {print $4}')
if [ "${FREE_MB:-0}" -lt "${SMOKE_MIN_FREE_MB:-6000}" ]; then
  rm -rf "$WORK"
  skip "only ${FREE_MB} MB free under $STORE; the build needs about 6000"
fi

# --- cleanup and verdict ----------------------------------------------------------------------
VOLUME=rag-zh-smoke-$$
CIDS=()
# the image declares VOLUME /data/index, so each container gets an anonymous volume: the ones
# container-check.sh's container leaves behind are found as new dangling volumes at the end
VOLUMES_BEFORE=" $(podman volume ls -q | tr '\n' ' ') "
cleanup() {
  rc=$?
  trap - EXIT
  for cid in "${CIDS[@]}"; do
    if [ "$rc" != 0 ]; then echo "--- logs of ${cid:0:12}"; podman logs "$cid" 2>&1 | tail -30; fi
    podman rm -f -v -t 2 "$cid" >/dev/null 2>&1 || true
  done
  podman volume rm -f "$VOLUME" >/dev/null 2>&1 || true
  for v in $(podman volume ls -q --filter dangling=true 2>/dev/null); do
    case "$VOLUMES_BEFORE" in *" $v "*) ;; *) podman volume rm -f "$v" >/dev/null 2>&1 || true ;; esac
  done
  podman rmi -f "$IMAGE" >/dev/null 2>&1 || true
  rm -rf "$WORK"
  if [ "$rc" = 0 ]; then
    step "done"
    echo "container-smoke: 1 passed, 0 failed"
  else
    echo "container-smoke: 0 passed, 1 failed"
  fi
  exit "$rc"
}
trap cleanup EXIT
fail() { echo "FAILED: $*"; exit 1; }

# --- 1. build + readiness (the shared check) --------------------------------------------------
ARGS="${BUILD_ARGS:-} --format docker"   # docker format keeps the HEALTHCHECK
[ -d /opt/wheels ] && ARGS="$ARGS -v /opt/wheels:/wheels:ro"
step "container-check.sh $CONTEXT /readyz (BUILD_ARGS=$ARGS)"
IMAGE=$IMAGE KEEP_IMAGE=1 HPORT=$CHECK_PORT BUILD_ARGS=$ARGS \
  bash "$CONTAINER_CHECK" "$CONTEXT" /readyz '"status":"ready"' || fail "container-check.sh"
step "image size: $(podman image inspect "$IMAGE" --format '{{.Size}}') bytes"

# --- helpers ----------------------------------------------------------------------------------
start() {  # start [podman run options...] -> container id in $CID
  CID=$(podman run -d --health-interval=disable "$@" "$IMAGE" 2>"$WORK/run.err") \
    || { cat "$WORK/run.err"; fail "podman run"; }
  CIDS+=("$CID")
}
wait_ready() {  # wait_ready PORT -> /readyz body in $READY
  READY=""
  for _ in $(seq 1 120); do
    READY=$(curl -fsS --max-time 2 "http://127.0.0.1:$1/readyz" 2>/dev/null) && return 0
    [ "$(podman inspect -f '{{.State.Running}}' "$CID")" = true ] || fail "container exited"
    sleep 0.5
  done
  fail "not ready after 60 s"
}
post() {  # post PORT PATH JSON -> response body on stdout
  curl -fsS --max-time 30 "http://127.0.0.1:$1$2" -H 'content-type: application/json' -d "$3"
}
check() {  # check NAME PYTHON_EXPRESSIONS < JSON: each line must hold for `r` (the reply)
  python3 -c '
import json, sys
name, checks = sys.argv[1], sys.argv[2]
r = json.load(sys.stdin)
for line in filter(None, (l.strip() for l in checks.splitlines())):
    if not eval(line, {"r": r}):
        sys.exit(f"{name}: check failed: {line}\n" + json.dumps(r, ensure_ascii=False, indent=1)[:3000])
print(f"{name}: ok")' "$@"
}
# every citation points at its passage (marker), with a quote that is the exact slice of it
CITED='
r["answerable"] is True
len(r["citations"]) >= 1
all(1 <= c["marker"] <= len(r["passages"]) for c in r["citations"])
all(r["passages"][c["marker"] - 1]["chunk_id"] == c["chunk_id"] for c in r["citations"])
all(c["quote"] and r["passages"][c["marker"] - 1]["text"][c["start"] - r["passages"][c["marker"] - 1]["start"]:c["end"] - r["passages"][c["marker"] - 1]["start"]] == c["quote"] for c in r["citations"])
all("[%d]" % c["marker"] in r["answer"] for c in r["citations"])
'

# --- 2. the image as built: healthcheck, a cited answer, search -------------------------------
step "podman run -p 127.0.0.1:$PORT:8000 $IMAGE"
start -p "127.0.0.1:$PORT:8000"
wait_ready "$PORT"
echo "readyz: $READY"
echo "$READY" | check readyz 'r["status"] == "ready" and r["documents"] >= 5 and r["chunks"] > 0'
podman healthcheck run "$CID" > "$WORK/health.out" 2>&1 || { cat "$WORK/health.out"; fail "HEALTHCHECK"; }
echo "healthcheck: ok"
ANSWER=$(post "$PORT" /v1/ask "{\"question\": \"$QUESTION\"}") || fail "POST /v1/ask"
echo "$ANSWER" | python3 -c 'import json, sys; r = json.load(sys.stdin); print("ask:", r["question"], "->", r["answer"]); [print("  [%d] %s %d-%d %s" % (c["marker"], c["source"], c["start"], c["end"], c["quote"])) for c in r["citations"]]'
echo "$ANSWER" | check ask "$CITED"
echo "$ANSWER" | check ask-content '"43.58亿元" in r["answer"]'
SEARCH=$(post "$PORT" /v1/search '{"query": "G60科创走廊", "top_k": 3}') || fail "POST /v1/search"
echo "$SEARCH" | check search '
len(r["results"]) == 3
all(p["text"] and p["source"] for p in r["results"])
[p["score"] for p in r["results"]] == sorted((p["score"] for p in r["results"]), reverse=True)
'
[ "$(podman exec "$CID" id -u)" != 0 ] || fail "the container runs as root"
echo "non-root: uid $(podman exec "$CID" id -u)"
podman rm -f -v -t 2 "$CID" >/dev/null 2>&1   # frees the host port

# --- 3. a documents folder + a named index volume (README), a setting from the environment ----
mkdir -p "$WORK/docs"
printf '# 青石湖数据中心\n\n青石湖数据中心于2025年3月投入运行，共有机柜4800个，由澄江数字科技公司运营。\n' \
  > "$WORK/docs/qingshihu.md"
chmod 755 "$WORK/docs"; chmod 644 "$WORK/docs/qingshihu.md"
podman volume create "$VOLUME" >/dev/null
step "rag ingest /data/docs into volume $VOLUME"
podman run --rm --health-interval=disable -v "$WORK/docs:/data/docs:ro" -v "$VOLUME:/data/index" \
  "$IMAGE" rag ingest /data/docs --json > "$WORK/ingest.json" 2>"$WORK/ingest.err" \
  || { cat "$WORK/ingest.err" "$WORK/ingest.json"; fail "rag ingest /data/docs"; }
check ingest 'r["summary"] == {"added": 1}' < "$WORK/ingest.json"
step "podman run -v $VOLUME:/data/index -e RAG_PORT=9000 -p 127.0.0.1:$PORT:9000"
start -v "$VOLUME:/data/index" -e RAG_PORT=9000 -p "127.0.0.1:$PORT:9000"
wait_ready "$PORT"
echo "readyz: $READY"
echo "$READY" | check volume-readyz 'r["documents"] == 6'
podman healthcheck run "$CID" > "$WORK/health.out" 2>&1 || { cat "$WORK/health.out"; fail "HEALTHCHECK on RAG_PORT=9000"; }
post "$PORT" /v1/search '{"query": "青石湖数据中心有多少个机柜", "top_k": 3}' \
  | check volume-search 'r["results"][0]["source"] == "qingshihu.md" and "4800" in r["results"][0]["text"]'
post "$PORT" /v1/ask "{\"question\": \"$QUESTION\"}" | check volume-ask "$CITED"
