"""Sentence embeddings with onnxruntime: no torch at query or ingest time.

The ONNX graph returns ``last_hidden_state``; pooling is done here, as sentence-transformers
does for this model: the mean over real (unmasked) tokens, then L2 normalisation.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from localrag.embed.graph import KEEP_UNFUSED, unfused_model
from localrag.embed.tokenizer import ModelTokenizer
from localrag.errors import ModelNotFoundError
from localrag.protocols import Vectors

log = logging.getLogger(__name__)

if getattr(sys.modules.get("localrag"), "_ORT_IMPORTED_FIRST", False):
    # localrag/__init__ sets ORT_DISABLE_TELEMETRY, but onnxruntime was imported before it and read the
    # variable then: events can still be switched off, not the uploader's lookups.
    ort.disable_telemetry_events()
    log.warning("onnxruntime was imported before localrag, so its telemetry uploader may query DNS; set "
                "ORT_DISABLE_TELEMETRY=1 in the environment or import localrag first to keep this process offline")

OUTPUT = "last_hidden_state"
# The fixed cost of one session run in token-rows (MiniLM int8, one thread: ~0.7 ms per run,
# ~0.08 ms per token-row), used to group queries by length.
_RUN_COST_TOKENS = 8
_QUERY_THREADS = 1


class OnnxEmbedder:
    """Implements ``Embedder`` on an ONNX encoder and the model's ``tokenizer.json``."""

    def __init__(
        self,
        model_path: Path,
        tokenizer_folder: Path,
        threads: int = 1,
        batch_size: int = 32,
        max_tokens: int = 256,
        *,
        name: str = "onnx",
        vector_space: str = "",
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.name = name
        self.batch_size = batch_size
        self._tokenizer = ModelTokenizer(tokenizer_folder, max_tokens=max_tokens)
        self._model_path = model_path
        self._threads = threads
        self._sessions: dict[int, ort.InferenceSession] = {}
        self._sessions_lock = threading.Lock()
        self._inputs = {i.name for i in self._session(_QUERY_THREADS).get_inputs()}
        self.dim = self._output_dim()
        self.vector_space = vector_space or name  # read by the engine to refuse mixed vectors

    def _session(self, threads: int) -> ort.InferenceSession:
        """One session per thread count, made on first use: documents run on ``threads``, queries
        on one (a second thread cuts a 22-token query's time by 5% or less and costs 50% more CPU;
        a 256-token document batch runs 1.9x faster on two)."""
        with self._sessions_lock:
            if threads not in self._sessions:
                self._sessions[threads] = make_session(self._model_path, threads)
            return self._sessions[threads]

    def _output_dim(self) -> int:
        output = next((o for o in self._session(_QUERY_THREADS).get_outputs() if o.name == OUTPUT), None)
        if output is None:
            raise ModelNotFoundError(f"ONNX model {self.name} has no {OUTPUT!r} output")
        last = output.shape[-1] if output.shape else None
        if isinstance(last, int):
            return last
        return int(self._run(self._tokenizer.encode_batch(["dimension probe"]), _QUERY_THREADS).shape[1])

    @property
    def tokenizer(self) -> ModelTokenizer:
        return self._tokenizer

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """(n, dim) float32, L2-normalised; batches are formed from texts of similar token length."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = self._tokenizer.encode(texts)
        # Sorting by length keeps padding (wasted compute) small; rows go back to input order.
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        out = np.empty((len(encodings), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            out[rows] = self._run(self._tokenizer.pad([encodings[i] for i in rows]), self._threads)
        return out

    def embed_query(self, text: str) -> Vectors:
        return self.embed_queries([text])[0]

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        """A batch of short texts (the server's micro-batches): run as groups of similar length.

        Compute grows with rows x padded width, and each run has a fixed cost, so the
        length-sorted texts are cut where padding would cost more than another run
        (``length_groups``). Int8 dynamic quantisation scales activations per run, so a
        vector can differ slightly (in the 3rd decimal) from ``embed_query`` of the same text.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = self._tokenizer.encode(texts)
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        out = np.empty((len(encodings), self.dim), dtype=np.float32)
        for start, stop in length_groups([len(encodings[i].ids) for i in order], self.batch_size):
            rows = order[start:stop]
            out[rows] = self._run(self._tokenizer.pad([encodings[i] for i in rows]), _QUERY_THREADS)
        return out

    def _run(self, batch: dict[str, np.ndarray], threads: int) -> Vectors:
        feed = {name: array for name, array in batch.items() if name in self._inputs}
        (hidden,) = self._session(threads).run([OUTPUT], feed)
        return mean_pool(np.asarray(hidden, dtype=np.float32), batch["attention_mask"])


def length_groups(lengths: Sequence[int], max_rows: int) -> list[tuple[int, int]]:
    """Cut ascending ``lengths`` into runs [start, stop) minimising the padded token-rows plus
    ``_RUN_COST_TOKENS`` per run (dynamic programming; a run is padded to its last length)."""
    n = len(lengths)
    best = [0.0] + [float("inf")] * n
    cut = [0] * (n + 1)
    for stop in range(1, n + 1):
        for start in range(max(0, stop - max_rows), stop):
            cost = best[start] + _RUN_COST_TOKENS + (stop - start) * lengths[stop - 1]
            if cost < best[stop]:
                best[stop], cut[stop] = cost, start
    groups = []
    stop = n
    while stop:
        groups.append((cut[stop], stop))
        stop = cut[stop]
    return groups[::-1]


def make_session(model_path: Path, threads: int) -> ort.InferenceSession:
    """A CPU session for an encoder; ``threads`` 0 lets onnxruntime use every core.

    Fused skip-layer-norms and bias-GELUs are split first (see ``embed.graph``)."""
    try:
        rewritten = unfused_model(model_path)
    except Exception as e:  # onnx raises DecodeError, ValidationError, OSError...
        raise ModelNotFoundError(f"cannot load ONNX model {model_path}: {e}") from e
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(0, threads)
    options.inter_op_num_threads = 1
    # Idle worker threads would spin for a while after each run, taking the CPU from the FAISS
    # and BM25 work that follows a query embedding: measured 0.65 -> 4.3 ms per FAISS call on 2 cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # warnings about unused initializers are noise here
    try:
        return ort.InferenceSession(
            rewritten if rewritten is not None else str(model_path), sess_options=options,
            providers=["CPUExecutionProvider"], disabled_optimizers=list(KEEP_UNFUSED),
        )
    except Exception as e:  # onnxruntime raises its own Fail/NoSuchFile/InvalidGraph classes
        raise ModelNotFoundError(f"cannot load ONNX model {model_path}: {e}") from e


def mean_pool(hidden: np.ndarray, attention_mask: np.ndarray) -> Vectors:
    """Mean of the unmasked token vectors, L2-normalised: (batch, seq, dim) -> (batch, dim)."""
    mask = attention_mask.astype(np.float32)[:, :, None]
    summed = (hidden * mask).sum(axis=1)
    counts = np.maximum(mask.sum(axis=1), 1e-9)
    pooled = summed / counts
    norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return (pooled / norms).astype(np.float32, copy=False)
