"""Answers as JSON-ready dicts and as terminal text (used by the CLI and servers)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from localrag.types import Answer, Citation, Claim, Conflict, Hit


def hit_dict(hit: Hit) -> dict[str, Any]:
    return {"chunk_id": hit.chunk_id, "doc_id": hit.doc_id, "score": hit.score, "scores": dict(hit.scores),
            "title": hit.title, "source": hit.source, "page": hit.page, "char_start": hit.char_start,
            "char_end": hit.char_end, "namespace": hit.namespace, "metadata": dict(hit.metadata),
            "text": hit.text}


def citation_dict(citation: Citation) -> dict[str, Any]:
    data = asdict(citation)
    data["chunk_ids"] = list(citation.chunk_ids)
    return data


def answer_dict(answer: Answer) -> dict[str, Any]:
    return {
        "question": answer.question,
        "standalone_question": answer.standalone_question or None,
        "answer": answer.text,
        "abstained": answer.abstained,
        "citations": [citation_dict(c) for c in answer.citations],
        "invalid_citations": list(answer.invalid_citations),
        "model": answer.model,
        "provider": answer.provider,
        "usage": dict(answer.usage),
        "timings_ms": {k: round(v, 2) for k, v in answer.timings.items()},
        "hits": [hit_dict(h) for h in answer.hits],
        "generated_text": answer.generated_text,
        "support": answer.support,
        "confidence": answer.confidence,
        "strategy": answer.strategy,
        "self_query": answer.self_query,
        "claims": [claim_dict(c) for c in answer.claims],
        "conflicts": [conflict_dict(c) for c in answer.conflicts],
        "short": answer.short,
        "kind": answer.kind,
        "parts": list(answer.parts),
        "corrected": [{"word": w, "corrected": c} for w, c in answer.corrected],
    }


def claim_dict(claim: Claim) -> dict[str, Any]:
    return {"text": claim.text, "start": claim.start, "end": claim.end, "status": claim.status,
            "citations": list(claim.citations), "score": claim.score}


def conflict_dict(conflict: Conflict) -> dict[str, Any]:
    return {"topic": conflict.topic, "kind": conflict.kind,
            "sides": [{"citation": s.citation, "value": s.value, "doc_id": s.doc_id, "preferred": s.preferred}
                      for s in conflict.sides]}


def format_claims(answer: Answer, width: int = 160) -> str:
    """A line per claim that failed its check, flagged ``[contradicted]`` or ``[unsupported]``."""
    lines = []
    for claim in answer.claims:
        if claim.status != "supported":
            cited = "".join(f"[{n}]" for n in claim.citations) or "(uncited)"
            text = claim.text if len(claim.text) <= width else claim.text[:width] + "…"
            lines.append(f"  [{claim.status}] {text} {cited} (score {claim.score:.2f})")
    return "Claims not supported by their sources:\n" + "\n".join(lines) if lines else ""


def format_sources(answer: Answer, width: int = 300) -> str:
    """One block per citation: ``[n] title (file, page, chars a-b)`` and the quoted sentence."""
    if not answer.citations:
        return ""
    lines = ["Sources:"]
    for c in answer.citations:
        where = Path(c.source).name if c.source else c.doc_id
        page = f", p. {c.page}" if c.page else ""
        span = f"chars {c.quote_start}-{c.quote_end}"
        lines.append(f"  [{c.number}] {c.title or c.doc_id} ({where}{page}, {span})")
        quote = " ".join(c.quote.split())
        lines.append(f"      \"{quote[:width]}{'…' if len(quote) > width else ''}\"")
    return "\n".join(lines)


def format_footer(answer: Answer) -> str:
    t = answer.timings
    usage = answer.usage
    parts = [f"{answer.provider or 'none'}:{answer.model}" if answer.model else "no model call"]
    if answer.model:
        parts.append(f"first token {t.get('first_token', 0) / 1000:.2f}s")
    parts.append(f"total {t.get('total', 0) / 1000:.2f}s")
    if usage.get("completion_tokens"):
        parts.append(f"{usage.get('prompt_tokens', 0)}+{usage['completion_tokens']} tokens")
    if answer.strategy != "none":
        parts.append(f"strategy {answer.strategy}")
    if answer.self_query is not None and answer.self_query.get("applied") != "no":
        parts.append(f"self-query {answer.self_query['applied']} {answer.self_query['filter']}")
    if answer.invalid_citations:
        parts.append("removed invalid citations " + ", ".join(f"[{n}]" for n in answer.invalid_citations))
    return "(" + "; ".join(parts) + ")"
