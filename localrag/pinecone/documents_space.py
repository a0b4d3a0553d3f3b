"""One namespace of a document index in memory, and filters over its documents.

Documents live in slots; each full-text field has its own BM25 ``FieldIndex`` and each vector
field (declared, or made by ``embed``/``sparse_embed``) its own exact ``Space`` keyed by
document id, so every search mode reuses the legacy store's scoring. Filters mix metadata
predicates (``localrag.filters``, Pinecone's language) with the text-match operators
``$match_phrase``, ``$match_all`` and ``$match_any`` on full-text fields, under ``$and``/``$or``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from localrag.errors import InvalidInputError
from localrag.filters import compile_filter
from localrag.pinecone.documents_schema import DocumentSchema
from localrag.pinecone.documents_text import FieldIndex, analyzer
from localrag.pinecone.space import VERSIONS, Space
from localrag.pinecone.wire import Sparse

TEXT_MATCH = ("$match_phrase", "$match_all", "$match_any")
MAX_FILTER_DEPTH = 16

Predicate = Callable[["DocSpace", int], bool]


class DocSpace:
    def __init__(self, schema: DocumentSchema) -> None:
        self.schema = schema
        self.slot_of: dict[str, int] = {}
        self.docs: list[dict[str, Any] | None] = []
        self._free: list[int] = []
        self.text = {f.name: FieldIndex(analyzer(f.full_text)) for f in schema.text_fields if f.full_text}
        self.dense = {f.name: Space(f.dimension, f.metric or "cosine") for f in schema.dense_fields}
        self.sparse = {f.name: Space(None, "dotproduct") for f in schema.sparse_fields}
        embed, sparse_embed = schema.embed_field, schema.sparse_embed_field
        if embed is not None and embed.embed is not None:
            self.dense[embed.name] = Space(int(embed.embed["dimension"]), str(embed.embed["metric"]))
        if sparse_embed is not None:
            self.sparse[sparse_embed.name] = Space(None, "dotproduct")
        self.embed_name = None if embed is None else embed.name
        self.sparse_embed_name = None if sparse_embed is None else sparse_embed.name
        # Dense vectors travel as one float32 blob (the store's vector column): declared fields in
        # schema order, then the embedded one. Documents in memory keep none of them; the Spaces do.
        self.layout = [(name, int(space.dimension or 0)) for name, space in self.dense.items()]
        self.version = next(VERSIONS)  # changes on every write, never repeats: keys filter caches

    def __len__(self) -> int:
        return len(self.slot_of)

    def put(self, doc: dict[str, Any], dense: NDArray[np.float32] | None, sparse_embedded: Sparse | None) -> None:
        """``doc`` without its dense vectors, which come packed in ``dense`` (see ``layout``)."""
        doc_id = doc["_id"]
        self.remove(doc_id)
        slot = self._free.pop() if self._free else len(self.docs)
        if slot == len(self.docs):
            self.docs.append(None)
        self.docs[slot] = doc
        self.slot_of[doc_id] = slot
        self.version = next(VERSIONS)
        for name, index in self.text.items():
            if isinstance(doc.get(name), str):
                index.add(slot, doc[name])
        offset = 0
        for name, dim in self.layout:
            if dense is not None:
                self.dense[name].put(doc_id, dense[offset:offset + dim], None, None)
            offset += dim
        for name, space in self.sparse.items():
            sparse = sparse_embedded if name == self.sparse_embed_name else _sparse(doc.get(name))
            if sparse is not None:
                space.put(doc_id, None, sparse, None)

    def document(self, slot: int, names: Collection[str] | None = None) -> dict[str, Any]:
        """The document as stored: its fields (``names`` only, when given) with declared dense vectors."""
        doc = self.doc(slot)
        out = dict(doc) if names is None else {"_id": doc["_id"], **{k: doc[k] for k in names if k in doc}}
        for name, _ in self.layout:
            if name != self.embed_name and (names is None or name in names):
                space = self.dense[name]
                values = space.values_of(space.slot_of[doc["_id"]])
                if values is not None:
                    out[name] = values.tolist()
        return out

    def remove(self, doc_id: str) -> bool:
        slot = self.slot_of.pop(doc_id, None)
        if slot is None:
            return False
        for index in self.text.values():
            index.remove(slot)
        for space in (*self.dense.values(), *self.sparse.values()):
            space.remove(doc_id)
        self.docs[slot] = None
        self._free.append(slot)
        self.version = next(VERSIONS)
        return True

    def doc(self, slot: int) -> dict[str, Any]:
        doc = self.docs[slot]
        assert doc is not None
        return doc

    def matching(self, predicate: Predicate) -> list[int]:
        """Slots of the documents passing ``predicate``, in no particular order (cheaper than ``slots``)."""
        return [slot for slot in self.slot_of.values() if predicate(self, slot)]

    def slots(self, predicate: Predicate | None) -> list[int]:
        """Slots of the documents passing ``predicate``, in id order."""
        ordered = sorted(self.slot_of.items(), key=lambda item: item[0].encode())
        return [slot for _, slot in ordered if predicate is None or predicate(self, slot)]

    def space_mask(self, space: Space, allowed: list[int] | None) -> NDArray[np.bool_]:
        if allowed is None:
            return space.mask(None)
        mask = np.zeros(len(space.ids), dtype=bool)
        for slot in allowed:
            vector_slot = space.slot_of.get(self.doc(slot)["_id"])
            if vector_slot is not None:
                mask[vector_slot] = True
        return mask


def _sparse(value: Any) -> Sparse | None:
    if not isinstance(value, Mapping):
        return None
    return (np.asarray(value["indices"], dtype=np.uint32), np.asarray(value["values"], dtype=np.float32))


# --------------------------------------------------------------------------- filters


def compile_document_filter(flt: Any, schema: DocumentSchema, *, text_match: bool = True) -> Predicate | None:
    """A predicate over (space, slot); None for no filter. ``text_match=False`` refuses ``$match_*``
    (Pinecone refuses them where they would widen a delete or update)."""
    if flt is None or (isinstance(flt, Mapping) and not flt):
        return None
    return _node(flt, schema, text_match, "filter", 0)


def _node(node: Any, schema: DocumentSchema, text_match: bool, path: str, depth: int) -> Predicate:
    if depth > MAX_FILTER_DEPTH:
        raise InvalidInputError(f"{path}: filters nest at most {MAX_FILTER_DEPTH} levels")
    if not isinstance(node, Mapping) or not node:
        raise InvalidInputError(f"{path} must be a non-empty object")
    parts: list[Predicate] = []
    for key, value in node.items():
        where = f"{path}.{key}"
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise InvalidInputError(f"{where} must be a non-empty list of filters")
            children = [_node(v, schema, text_match, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
            parts.append(_all(children) if key == "$and" else _any(children))
        elif isinstance(key, str) and key.startswith("$"):
            raise InvalidInputError(f"{where}: unknown operator {key!r} at the top of a filter")
        else:
            parts.append(_field(key, value, schema, text_match, where))
    return _all(parts)


def _all(parts: list[Predicate]) -> Predicate:
    return parts[0] if len(parts) == 1 else lambda space, slot: all(p(space, slot) for p in parts)


def _any(parts: list[Predicate]) -> Predicate:
    return lambda space, slot: any(p(space, slot) for p in parts)


def _field(name: str, cond: Any, schema: DocumentSchema, text_match: bool, where: str) -> Predicate:
    spec = schema.field(name)
    ops = set(cond) if isinstance(cond, Mapping) else set()
    wants_text = bool(ops & set(TEXT_MATCH))
    if spec is None:
        if wants_text:
            raise InvalidInputError(f"{where}: {sorted(ops & set(TEXT_MATCH))} apply only to full-text string fields "
                                    f"of the schema; {name!r} is a metadata field")
        predicate = compile_filter({name: cond})

        def metadata(space: DocSpace, slot: int) -> bool:
            return predicate(space.doc(slot))
        return metadata
    if not spec.text_searchable or not spec.store_text:
        raise InvalidInputError(f"{where}: {name!r} is a {spec.type} field of the schema; it cannot be filtered on")
    if not wants_text or len(ops) != 1:
        raise InvalidInputError(f"{where}: {name!r} is a full-text field; filter it with exactly one of "
                                f"{', '.join(TEXT_MATCH)} (comparison operators apply to metadata fields)")
    if not text_match:
        raise InvalidInputError(f"{where}: text-match operators are not supported in this filter")
    op = next(iter(ops))
    operand = cond[op]
    if not isinstance(operand, str) or not operand.strip():
        raise InvalidInputError(f"{where}.{op} must be a non-empty string")

    def match(space: DocSpace, slot: int) -> bool:
        index = space.text[name]
        words = index.tokenize(operand)
        if op == "$match_phrase":
            return index.has_phrase(slot, words)
        return index.has_terms(slot, words, every=op == "$match_all")
    return match
