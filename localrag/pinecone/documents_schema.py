"""Document-index schemas (Pinecone API 2026-07): parse, validate, describe; and document validation.

A schema maps field names to typed declarations. Searched fields are declared:
``dense_vector`` (dimension, metric), ``sparse_vector``, and ``string`` with at least one of
``full_text_search``, ``embed`` or ``sparse_embed``. Everything else a document carries is
metadata, filterable with the usual operators and never declared. An index whose only field
is the reserved ``_values`` or ``_sparse_values`` is a legacy vector index, not a document one.

``embed`` and ``sparse_embed`` are served by localrag's own models (the configured embedder
and a hashed-token sparse encoder): the model a schema names is recorded, not used, and the
scores differ from Pinecone's hosted models.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from localrag.errors import InvalidInputError
from localrag.pinecone import wire

LEGACY_FIELDS = frozenset({"_values", "_sparse_values"})
MAX_FIELDS = 100
MAX_FIELD_NAME = 64
MAX_DOCUMENTS = 1000
MAX_EMBED_DOCUMENTS = 96  # Pinecone's cap for a request that it embeds
METRICS = ("cosine", "dotproduct", "euclidean")
LANGUAGES = {"en": "english", "english": "english", "de": "german", "german": "german", "fr": "french",
             "french": "french", "es": "spanish", "spanish": "spanish", "it": "italian", "italian": "italian",
             "pt": "portuguese", "portuguese": "portuguese", "nl": "dutch", "dutch": "dutch"}
DEFAULT_EMBED_MODEL = "localrag-embedder"
DEFAULT_SPARSE_MODEL = "localrag-sparse-hash"


@dataclass(frozen=True, slots=True)
class FullText:
    language: str = "english"
    stemming: bool = False
    stop_words: bool = False

    def to_wire(self) -> dict[str, Any]:
        return {"language": self.language, "stemming": self.stemming, "stop_words": self.stop_words}


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: str  # dense_vector | sparse_vector | string
    dimension: int | None = None
    metric: str | None = None
    full_text: FullText | None = None
    embed: dict[str, Any] | None = None
    sparse_embed: dict[str, Any] | None = None
    store_text: bool = True
    description: str | None = None

    @property
    def text_searchable(self) -> bool:
        return self.type == "string" and self.full_text is not None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "description": self.description}
        if self.type == "dense_vector":
            out.update(dimension=self.dimension, metric=self.metric)
        elif self.type == "string":
            if self.full_text is not None:
                out["full_text_search"] = self.full_text.to_wire()
            if self.embed is not None:
                out["embed"] = self.embed
            if self.sparse_embed is not None:
                out["sparse_embed"] = self.sparse_embed
            out["store_text"] = self.store_text
        return out


@dataclass(frozen=True, slots=True)
class DocumentSchema:
    fields: tuple[FieldSpec, ...]

    def field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def text_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.text_searchable)

    @property
    def dense_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.type == "dense_vector")

    @property
    def sparse_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.type == "sparse_vector")

    @property
    def embed_field(self) -> FieldSpec | None:
        return next((f for f in self.fields if f.embed is not None), None)

    @property
    def sparse_embed_field(self) -> FieldSpec | None:
        return next((f for f in self.fields if f.sparse_embed is not None), None)

    def to_wire(self) -> dict[str, Any]:
        return {"fields": {f.name: f.to_wire() for f in self.fields}}


def is_document_schema(schema: Any) -> bool:
    """True for a schema a document index is made from (not the legacy ``_values`` shape)."""
    if not isinstance(schema, Mapping) or not isinstance(schema.get("fields"), Mapping):
        return False
    return not set(schema["fields"]) <= LEGACY_FIELDS


def _flag(value: Any, name: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidInputError(f"{name} must be a boolean")
    return value


def _full_text(value: Any, name: str) -> FullText:
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"schema.fields.{name}.full_text_search must be an object")
    unknown = set(value) - {"language", "stemming", "stop_words", "ngram"}
    if unknown:
        raise InvalidInputError(f"schema.fields.{name}.full_text_search: unknown keys {sorted(unknown)}")
    if value.get("ngram") is not None:
        raise InvalidInputError(f"schema.fields.{name}: ngram tokenization is not supported by localrag")
    language = value.get("language") or "en"
    if not isinstance(language, str) or language.lower() not in LANGUAGES:
        raise InvalidInputError(f"schema.fields.{name}.full_text_search.language {language!r} is not supported; "
                                f"use one of {sorted(LANGUAGES)}")
    stemming = _flag(value.get("stemming"), f"schema.fields.{name}.full_text_search.stemming", False)
    stop_words = _flag(value.get("stop_words"), f"schema.fields.{name}.full_text_search.stop_words", False)
    resolved = LANGUAGES[language.lower()]
    if stop_words and not stemming:
        raise InvalidInputError(f"schema.fields.{name}.full_text_search: stop_words requires stemming")
    if stop_words and resolved != "english":
        raise InvalidInputError(f"schema.fields.{name}.full_text_search: stop_words is not supported for "
                                f"{resolved}")
    return FullText(resolved, stemming, stop_words)


def _string_field(name: str, spec: Mapping[str, Any], embed_dim: int | None) -> FieldSpec:
    full_text = None if spec.get("full_text_search") is None else _full_text(spec["full_text_search"], name)
    embed = spec.get("embed")
    sparse_embed = spec.get("sparse_embed")
    for key, value in (("embed", embed), ("sparse_embed", sparse_embed)):
        if value is not None and not isinstance(value, Mapping):
            raise InvalidInputError(f"schema.fields.{name}.{key} must be an object")
    if spec.get("filterable") and (full_text or embed is not None or sparse_embed is not None):
        raise InvalidInputError(f"schema.fields.{name}: a field is filtered or searched, not both; "
                                "drop filterable")
    if full_text is None and embed is None and sparse_embed is None:
        raise InvalidInputError(f"schema.fields.{name}: a string field needs full_text_search, embed or "
                                "sparse_embed (metadata fields are not declared)")
    store_text = _flag(spec.get("store_text"), f"schema.fields.{name}.store_text", True)
    if not store_text and (full_text is not None or (embed is None and sparse_embed is None)):
        raise InvalidInputError(f"schema.fields.{name}: store_text false needs embed or sparse_embed and no "
                                "full_text_search")
    if store_text and full_text is None:
        full_text = FullText()  # stored text is always full-text searchable, as Pinecone does
    resolved_embed = None
    if embed is not None:
        dimension = embed.get("dimension")
        if dimension is not None and dimension != embed_dim:
            raise InvalidInputError(f"schema.fields.{name}.embed.dimension {dimension} is not supported: the local "
                                    f"embedder makes {embed_dim}-dimensional vectors")
        metric = (embed.get("metric") or "cosine").lower()
        if metric not in METRICS:
            raise InvalidInputError(f"schema.fields.{name}.embed.metric must be one of {', '.join(METRICS)}")
        resolved_embed = {"model": embed.get("model") or DEFAULT_EMBED_MODEL, "dimension": embed_dim,
                          "metric": metric, "write_parameters": dict(embed.get("write_parameters") or {}),
                          "read_parameters": dict(embed.get("read_parameters") or {})}
    resolved_sparse = None
    if sparse_embed is not None:
        resolved_sparse = {"model": sparse_embed.get("model") or DEFAULT_SPARSE_MODEL,
                           "write_parameters": dict(sparse_embed.get("write_parameters") or {}),
                           "read_parameters": dict(sparse_embed.get("read_parameters") or {})}
    return FieldSpec(name, "string", full_text=full_text, embed=resolved_embed, sparse_embed=resolved_sparse,
                     store_text=store_text, description=spec.get("description"))


def parse_schema(schema: Any, embed_dim: int | None = None) -> DocumentSchema:
    """Validate a create-index schema; ``embed_dim`` is the local embedder's (needed for ``embed``)."""
    if not isinstance(schema, Mapping) or not isinstance(schema.get("fields"), Mapping) or not schema["fields"]:
        raise InvalidInputError("schema must be an object with a non-empty 'fields' object")
    raw = schema["fields"]
    if len(raw) > MAX_FIELDS:
        raise InvalidInputError(f"schema declares {len(raw)} fields; the maximum is {MAX_FIELDS}")
    fields: list[FieldSpec] = []
    for name, spec in raw.items():
        if not isinstance(name, str) or not name or len(name) > MAX_FIELD_NAME or name.startswith(("_", "$")):
            raise InvalidInputError(f"schema field name {name!r} is invalid: 1-{MAX_FIELD_NAME} characters, not "
                                    "starting with '_' or '$'")
        if not isinstance(spec, Mapping):
            raise InvalidInputError(f"schema.fields.{name} must be an object")
        kind = spec.get("type")
        if kind == "dense_vector":
            dimension, metric = spec.get("dimension"), (spec.get("metric") or "cosine")
            if isinstance(dimension, bool) or not isinstance(dimension, int) \
                    or not 1 <= dimension <= wire.MAX_DIMENSION:
                raise InvalidInputError(f"schema.fields.{name}.dimension must be an integer in [1, "
                                        f"{wire.MAX_DIMENSION}]")
            if not isinstance(metric, str) or metric.lower() not in METRICS:
                raise InvalidInputError(f"schema.fields.{name}.metric must be one of {', '.join(METRICS)}")
            fields.append(FieldSpec(name, kind, dimension, metric.lower(), description=spec.get("description")))
        elif kind == "sparse_vector":
            fields.append(FieldSpec(name, kind, description=spec.get("description")))
        elif kind == "string":
            fields.append(_string_field(name, spec, embed_dim))
        else:
            raise InvalidInputError(f"schema.fields.{name}.type {kind!r} cannot be declared; use dense_vector, "
                                    "sparse_vector or string")
    parsed = DocumentSchema(tuple(fields))
    embeds = [f for f in fields if f.embed is not None]
    sparse_embeds = [f for f in fields if f.sparse_embed is not None]
    if len(embeds) > 1 or (embeds and parsed.dense_fields):
        raise InvalidInputError("an embed field takes the index's dense vector slot: at most one, and not beside a "
                                "dense_vector field")
    if len(sparse_embeds) > 1 or (sparse_embeds and parsed.sparse_fields):
        raise InvalidInputError("a sparse_embed field takes the index's sparse vector slot: at most one, and not "
                                "beside a sparse_vector field")
    return parsed


def load_schema(stored: Mapping[str, Any]) -> DocumentSchema:
    """A schema as ``DocumentSchema.to_wire`` stored it (already resolved)."""
    fields = []
    for name, spec in stored["fields"].items():
        ft = spec.get("full_text_search")
        fields.append(FieldSpec(name, spec["type"], spec.get("dimension"), spec.get("metric"),
                                None if ft is None else FullText(**ft), spec.get("embed"), spec.get("sparse_embed"),
                                bool(spec.get("store_text", True)), spec.get("description")))
    return DocumentSchema(tuple(fields))


# --------------------------------------------------------------------------- documents


def _metadata_value(key: str, value: Any) -> Any:
    checked = wire.metadata_of({key: value}, "document")
    assert checked is not None
    return checked[key]


def validate_document(doc: Any, schema: DocumentSchema, position: int) -> dict[str, Any]:
    """A document checked against the schema; numbers become floats, vectors float lists."""
    if not isinstance(doc, Mapping):
        raise InvalidInputError(f"Document at position {position} must be an object")
    doc_id = wire.vector_id(doc.get("_id"), f"Document at position {position}: '_id'")
    out: dict[str, Any] = {"_id": doc_id}
    searchable = False
    for key, value in doc.items():
        if key == "_id":
            continue
        if not isinstance(key, str) or not key or key.startswith(("_", "$")):
            raise InvalidInputError(f"Document {doc_id!r}: field name {key!r} is invalid (reserved prefix)")
        spec = schema.field(key)
        where = f"Document {doc_id!r}, field {key!r}"
        if value is None:
            raise InvalidInputError(f"{where}: null is not a value; leave the field out")
        if spec is None:
            out[key] = _metadata_value(key, value)
            continue
        searchable = True
        if spec.type == "dense_vector":
            values = wire.dense_values(value, where)
            if values is None or len(values) != spec.dimension:
                raise InvalidInputError(f"{where}: expected {spec.dimension} values, got "
                                        f"{0 if values is None else len(values)}")
            out[key] = values  # float32; kept out of the stored JSON (see DocSpace.layout)
        elif spec.type == "sparse_vector":
            sparse = wire.sparse_values(value, where)
            assert sparse is not None
            out[key] = {"indices": [int(i) for i in sparse[0]], "values": [float(v) for v in sparse[1]]}
        else:
            if not isinstance(value, str):
                raise InvalidInputError(f"{where}: a string field takes a string")
            out[key] = value
    missing = [f.name for f in schema.fields if (f.type == "dense_vector" or f.embed is not None) and f.name not in out]
    if missing:
        raise InvalidInputError(f"Document {doc_id!r} lacks the required fields {missing}")
    if not searchable:
        raise InvalidInputError(f"Document {doc_id!r} has no searchable schema field; it needs one of "
                                f"{[f.name for f in schema.fields]}")
    return out


def finite(value: float) -> float:
    """A score safe for JSON (a NaN or infinity would make the response unreadable)."""
    return value if math.isfinite(value) else 0.0
