#!/usr/bin/env bash
# Build the Docker image with podman and check it end to end on this machine, from a plain clone
# (nothing outside the repository is needed):
#   1. a Debian bookworm base image is made locally with debootstrap (no container registry is
#      reached) and kept in podman's storage for the next run; the image is built from it;
#   2. the image is started: /readyz reports the bundled corpus loaded, the HEALTHCHECK passes,
#      POST /v1/ask gets an answerable, cited answer whose quotes are exact slices of their
#      passages, POST /v1/search ranks passages, the web page at / and the offline /docs assets
#      are served from the installed package, the server does not run as root;
#   3. a documents folder and a named index volume are mounted as docs/docker.md says: `rag ingest
#      /data/docs` adds a file, and a server on that volume (RAG_PORT overridden) finds it.
# Everything the run made is removed at the end: containers, volumes, the image, and the images
# the build left behind (the build stage, ~1.7 GB, and intermediate layers; SMOKE_KEEP_CACHE=1
# keeps those as a cache for the next build). The Debian base image stays. Prints
# `container-smoke: 1 passed, 0 failed` (exit 0) or `container-smoke: 0 passed, 1 failed`
# (exit 1); where podman is missing and cannot be installed, or cannot run here, prints
# `container-smoke: skipped (reason)` and exits 0.
#
# What this kind of machine needs (each was seen failing without it): no registry -> the local
# debootstrapped base, tagged debian:bookworm(-slim) / debian:12(-slim), built with --pull=never;
# crun fails on hybrid cgroups -> runc; no CAP_SYS_RESOURCE -> podman's rlimits capped to the
# host's; a TLS-intercepting egress proxy -> the host's extra CA certificates are copied into the
# base image (the Dockerfile runs update-ca-certificates, and pip trusts the system store).
#
# env: SMOKE_CONTEXT (build context, default the repository), IMAGE (tag), SMOKE_PORT (host
#      port, 18001), BUILD_ARGS (extra `podman build` arguments; -v /opt/wheels:/wheels:ro is
#      added when /opt/wheels exists, so the CPU torch wheel there is used instead of downloading
#      it), SMOKE_KEEP_CACHE=1 (keep the build's intermediate images), SMOKE_MIN_FREE_MB (6000).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONTEXT=${SMOKE_CONTEXT:-$ROOT}
IMAGE=${IMAGE:-localhost/rag-zh:smoke}
BASE=localhost/debian:bookworm
PORT=${SMOKE_PORT:-18001}
QUESTION='碳谷2023年的税收是多少？'
T0=$(date +%s)
step() { echo "container-smoke [$(($(date +%s) - T0))s] $*"; }
skip() { echo "container-smoke: skipped ($*)"; exit 0; }

# --- can podman run here? ---------------------------------------------------------------------
[ "$(uname -s)" = Linux ] || skip "not Linux"
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
# rootful podman and debootstrap
[ "$(id -u)" = 0 ] || skip "the container check needs root: rootful podman, debootstrap"

WORK=$(mktemp -d /tmp/container-smoke.XXXXXX)
# podman settings for this kind of machine (no system file is touched): runc (crun fails on
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
# left behind are found as new dangling volumes at the end
VOLUMES_BEFORE=" $(podman volume ls -q | tr '\n' ' ') "
# Images present before the build (another build's, or a cache kept with SMOKE_KEEP_CACHE) are
# never removed; of the others, those our build committed (its log's `--> <id>` lines: each
# layer and each stage's result) are, so a build someone else runs meanwhile keeps its own.
IMAGES_BEFORE=" $(podman images -a -q --no-trunc 2>/dev/null | sort -u | tr '\n' ' ') "
remove_new_images() {
  local id short built left
  podman rmi -f "$IMAGE" >/dev/null 2>&1 || true
  [ "${SMOKE_KEEP_CACHE:-0}" = 1 ] && return 0
  built=" $({ grep -oE -- '--> [0-9a-f]{11,64}' "$WORK/build.log" 2>/dev/null || true; } | cut -c5-15 | tr '\n' ' ') "
  # a layer image goes once the images built on it are gone: newest first, a few passes
  for _ in 1 2 3 4 5; do
    left=0
    for id in $(podman images -a -q --no-trunc --sort created 2>/dev/null | awk '!seen[$0]++'); do
      case "$IMAGES_BEFORE" in *" $id "*) continue ;; esac
      short=${id#sha256:}
      case "$built" in *" ${short:0:11} "*) ;; *) continue ;; esac
      podman rmi -f "$id" >/dev/null 2>&1 || left=$((left + 1))
    done
    [ "$left" = 0 ] && break
  done
}
cleanup() {
  rc=$?
  trap - EXIT
  set +e  # every step of the cleanup is tried, and the verdict always printed
  for cid in "${CIDS[@]}"; do
    if [ "$rc" != 0 ]; then echo "--- logs of ${cid:0:12}"; podman logs "$cid" 2>&1 | tail -30; fi
    podman rm -f -v -t 2 "$cid" >/dev/null 2>&1 || true
  done
  podman volume rm -f "$VOLUME" >/dev/null 2>&1 || true
  for v in $(podman volume ls -q --filter dangling=true 2>/dev/null); do
    case "$VOLUMES_BEFORE" in *" $v "*) ;; *) podman volume rm -f "$v" >/dev/null 2>&1 || true ;; esac
  done
  remove_new_images
  step "left in podman's storage: $(podman images -a -q | wc -l) images, $(podman images -q --filter dangling=true | wc -l) dangling"
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

# --- 1. a local Debian base, then the build -----------------------------------------------
if podman image exists "$BASE"; then
  step "base image $BASE (cached)"
else
  MIRROR=$(grep -hoE 'https?://[^ ]+/debian/?$|https?://[^ ]+/debian ' /etc/apt/sources.list \
    /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
    | grep -v security | head -1 | tr -d ' ' || true)
  MIRROR=${MIRROR:-http://deb.debian.org/debian}
  step "debootstrap --variant=minbase bookworm from $MIRROR"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log"; fail "debootstrap"; }
  rm -rf "$WORK"/rootfs/var/cache/apt/archives/*.deb "$WORK"/rootfs/var/lib/apt/lists/*
  # trust the host's extra CAs (a TLS-intercepting egress proxy) inside the image
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$WORK/rootfs/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$WORK/rootfs/usr/local/share/ca-certificates/"
  fi
  step "podman import -> $BASE"
  tar -C "$WORK/rootfs" -c . | podman import -q - "$BASE" >/dev/null || fail "podman import"
  rm -rf "$WORK/rootfs"
fi
# FROM debian:bookworm-slim (and the like) resolves to the local base; the build pulls nothing
for tag in bookworm bookworm-slim 12 12-slim; do
  podman tag "$BASE" "docker.io/library/debian:$tag" || fail "podman tag"
done

ARGS="${BUILD_ARGS:-} --format docker"   # docker format keeps the HEALTHCHECK
[ -d /opt/wheels ] && ARGS="$ARGS -v /opt/wheels:/wheels:ro"
step "podman build --pull=never $ARGS -t $IMAGE $CONTEXT"
# shellcheck disable=SC2086  # ARGS is a list of arguments
podman build --pull=never $ARGS -t "$IMAGE" "$CONTEXT" > "$WORK/build.log" 2>&1 \
  || { tail -40 "$WORK/build.log"; fail "podman build"; }
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

# --- 2. the image as built: ready, healthcheck, a cited answer, search, the page --------------
step "podman run -p 127.0.0.1:$PORT:8000 $IMAGE"
start -p "127.0.0.1:$PORT:8000"
wait_ready "$PORT"
step "readyz: $READY"
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
# the page and the docs' assets are package data of the installed (non-editable) package
# (read whole, then matched: `curl | grep -q` fails under pipefail when grep stops reading early)
PAGE=$(curl -fsS --max-time 10 "http://127.0.0.1:$PORT/") || fail "GET / (the web page)"
case "$PAGE" in *'/ui/app.js'*) ;; *) fail "GET / is not the web page" ;; esac
for asset in /ui/app.js /ui/app.css /docs-assets/swagger-ui-bundle.js /docs-assets/swagger-ui.css; do
  curl -fsS --max-time 10 -o /dev/null "http://127.0.0.1:$PORT$asset" || fail "GET $asset"
done
PAGE=$(curl -fsS --max-time 10 "http://127.0.0.1:$PORT/docs") || fail "GET /docs"
case "$PAGE" in *'/docs-assets/swagger-ui-bundle.js'*) ;; *) fail "/docs does not use the bundled Swagger UI" ;; esac
echo "web page and offline docs: ok"
[ "$(podman exec "$CID" id -u)" != 0 ] || fail "the container runs as root"
echo "non-root: uid $(podman exec "$CID" id -u)"
podman rm -f -v -t 2 "$CID" >/dev/null 2>&1   # frees the host port

# --- 3. a documents folder + a named index volume (docs/docker.md), a setting from the environment ----
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
