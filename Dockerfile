# rag-zh: the HTTP service with the bundled corpus already indexed, so a new container answers
# at once. See docs/docker.md for running it, mounting documents and an index
# volume, and pointing it at an LLM.
#
# Build (any machine with network access to PyPI and download.pytorch.org):
#   docker build -t rag-zh .            # or: podman build --format docker -t rag-zh .
# Build with a local CPU torch wheel instead of download.pytorch.org (podman / buildah only):
#   podman build --format docker -v /opt/wheels:/wheels:ro -t rag-zh .
# (`--format docker` keeps the HEALTHCHECK; podman's default OCI format drops it.)
#
# torch must be the CPU build: PyPI's Linux torch wheel is a multi-GB CUDA build. It is taken
# from a wheel `torch-${TORCH_VERSION}+cpu-*.whl` in /wheels when that folder is mounted at build
# time, otherwise from ${TORCH_INDEX_URL} (PyTorch's CPU index).

ARG BASE_IMAGE=debian:bookworm-slim

# --- build stage: a virtual environment with torch (CPU), the runtime deps and the project -----
FROM ${BASE_IMAGE} AS build

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG DEBIAN_FRONTEND=noninteractive

# PIP_CERT: pip trusts the system CA store (including any extra CA added to the base image for
# an intercepting proxy), not only its bundled certifi.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_DEFAULT_TIMEOUT=120 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PATH=/opt/venv/bin:$PATH

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && update-ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv \
 && pip install --upgrade pip

# torch (CPU). Its C++ headers and test binaries are not used at run time (about 190 MB): removed.
RUN set -eu; \
    if ls /wheels/torch-"${TORCH_VERSION}"+cpu-*.whl >/dev/null 2>&1; then \
        echo "torch ${TORCH_VERSION}+cpu: local wheel from /wheels"; \
        pip install --find-links /wheels "torch==${TORCH_VERSION}+cpu"; \
    else \
        echo "torch ${TORCH_VERSION}+cpu: from ${TORCH_INDEX_URL}"; \
        pip install --index-url "${TORCH_INDEX_URL}" --extra-index-url https://pypi.org/simple \
            "torch==${TORCH_VERSION}+cpu"; \
    fi; \
    python -c "import torch; assert torch.version.cuda is None, torch.version.cuda; print('torch', torch.__version__)"; \
    cd /opt/venv/lib/python*/site-packages/torch; \
    rm -rf include test; \
    find bin -mindepth 1 -maxdepth 1 ! -name torch_shm_manager -exec rm -rf {} +

# The runtime dependencies (+ the `sbert` extra, not `dev`) in their own layer: editing the code
# does not reinstall them.
WORKDIR /src
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['sbert']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

COPY README.md ./
COPY rag ./rag
COPY api ./api
RUN pip install --no-deps . \
 && python -c "import torch, sentence_transformers; assert torch.version.cuda is None; print(torch.nn.Linear(4, 2)(torch.ones(1, 4)).shape)" \
 && rag --help >/dev/null

# --- runtime stage: python3, the venv, a non-root user, the sample corpus indexed --------------
FROM ${BASE_IMAGE}

ARG DEBIAN_FRONTEND=noninteractive
ARG APP_UID=10001

# ca-certificates: for an LLM endpoint over HTTPS.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && useradd --uid "${APP_UID}" --user-group --create-home --home-dir /home/rag --shell /usr/sbin/nologin rag \
 && mkdir -p /data/index /data/docs \
 && chown -R rag:rag /data

COPY --from=build /opt/venv /opt/venv
COPY --chown=rag:rag corpus /app/corpus

# Every setting is a RAG_* variable (rag/config.py); override any of them with `-e`.
# The CMD passes no flags, so RAG_HOST / RAG_PORT decide where the server listens.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    RAG_INDEX_DIR=/data/index \
    RAG_HOST=0.0.0.0 \
    RAG_PORT=8000

USER rag
WORKDIR /app

# Index the sample corpus now (as the runtime user, so the index and jieba's dictionary cache
# are in the image and owned by it), then ask one question to prove the installed package works.
RUN rag ingest /app/corpus --quiet \
 && rag info \
 && rag ask "碳谷2023年的税收是多少？" --json > /dev/null

# Declared after the index is built (a build step's writes under a VOLUME are discarded).
# A new named volume mounted here starts as a copy of the sample index. /data/docs is where to
# mount a folder of documents (see docs/docker.md).
VOLUME ["/data/index"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('RAG_PORT', '8000'), timeout=4)"]

CMD ["rag", "serve"]
