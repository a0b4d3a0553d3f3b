// A finished answer as the chat shows it: [n] markers as buttons that open the source, flagged claims,
// the abstention, the sources list and the details (model, provider, usage, timings).
import {fmtMs, fmtNum, h} from './ui.js';

// A citation whose claim shares less than this with its passage is shown as weak (answer.min_support's default).
export const WEAK_SUPPORT = 0.5;
const MARKER = /\[(\d+)\]/g;
const WORD = /[\p{L}\p{N}]{3,}/gu;
const STATUS_TEXT = {
  contradicted: 'contradicted by its source',
  unsupported: 'not supported by its source',
  weak: 'only weakly supported by its source',
};

function words(text) {
  return new Set((text.toLowerCase().match(WORD) || []));
}

/** The citation a marker stands for: of those with its number, the one whose quote best fits the claim before it. */
export function pickCitation(answer, number, markerIndex) {
  const candidates = answer.citations.map((c, i) => [c, i]).filter(([c]) => c.number === number);
  if (candidates.length <= 1) return candidates[0] || null;
  const before = answer.answer.slice(0, markerIndex).replace(/(\[\d+\]\s*)+$/, '');
  const claim = words(before.slice(Math.max(before.search(/[^.!?]*$/), 0)));
  let best = candidates[0];
  let bestShared = -1;
  for (const pair of candidates) {
    const shared = [...words(pair[0].quote)].filter((w) => claim.has(w)).length;
    if (shared > bestShared) [best, bestShared] = [pair, shared];
  }
  return best;
}

function sentenceSpans(text) {
  const spans = [];
  const pattern = /[^.!?]+(?:[.!?]+|$)(?:\s*\[\d+\])*/g;
  for (const m of text.matchAll(pattern)) {
    const lead = m[0].length - m[0].trimStart().length;
    const end = m.index + m[0].trimEnd().length;
    if (m[0].trim()) spans.push([m.index + lead, end]);
  }
  return spans;
}

/** Ranges of the answer text to flag: failed claims when the server checked claims, else weakly cited sentences. */
export function flaggedRanges(answer) {
  const text = answer.answer;
  const claims = Array.isArray(answer.claims) ? answer.claims : [];
  const ranges = [];
  if (claims.length) {
    for (const claim of claims) {
      if (!claim || claim.status === 'supported') continue;
      // start/end span the claim in the answer text, its own markers included
      let {start, end} = claim;
      if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start < end && end <= text.length)) {
        start = text.indexOf(claim.text);
        end = start + (claim.text || '').length;
      }
      while (end > start && /\s/.test(text[end - 1])) end -= 1;
      if (start >= 0 && end > start) ranges.push({start, end, status: claim.status});
    }
  } else {
    for (const [start, end] of sentenceSpans(text)) {
      for (const m of text.slice(start, end).matchAll(MARKER)) {
        const picked = pickCitation(answer, Number(m[1]), start + m.index);
        if (picked && !picked[0].attributed && (picked[0].support ?? 1) < WEAK_SUPPORT) {
          ranges.push({start, end, status: 'weak'});
          break;
        }
      }
    }
  }
  return ranges.sort((a, b) => a.start - b.start);
}

/** The answer text as nodes: plain runs (flagged ones in <span class="flag">) and citation buttons. */
function textNodes(answer, onCite) {
  const text = answer.answer;
  const flags = flaggedRanges(answer);
  const nodes = [];
  const plain = (from, to) => {
    let at = from;
    for (const f of flags) {
      if (f.end <= at || f.start >= to) continue;
      if (f.start > at) nodes.push(text.slice(at, f.start));
      const end = Math.min(f.end, to);
      nodes.push(h('span', {class: ['flag', f.status], title: `This claim is ${STATUS_TEXT[f.status] || f.status}.`,
        'data-status': f.status}, text.slice(Math.max(at, f.start), end)));
      at = end;
    }
    if (at < to) nodes.push(text.slice(at, to));
  };
  let pos = 0;
  for (const m of text.matchAll(MARKER)) {
    plain(pos, m.index);
    const picked = pickCitation(answer, Number(m[1]), m.index);
    if (picked) {
      const [citation, index] = picked;
      const weak = !citation.attributed && (citation.support ?? 1) < WEAK_SUPPORT;
      nodes.push(h('button', {type: 'button', class: ['cite', weak ? 'weak' : ''], 'data-n': m[1],
        'data-citation': String(index), 'aria-pressed': 'false',
        'aria-label': `Source ${m[1]}: ${citation.title || citation.doc_id}`,
        title: `${citation.title || citation.doc_id}${weak ? ' (weak support)' : ''}`,
        onclick: (e) => onCite(citation, e.currentTarget)}, m[1]));
    } else {
      nodes.push(m[0]);
    }
    pos = m.index + m[0].length;
  }
  plain(pos, text.length);
  return nodes;
}

function notes(answer) {
  const out = [];
  if (answer.abstained) {
    out.push(h('p', {class: 'abstain-note'}, 'No passage found in the library supports an answer, so localrag ',
      'abstains rather than guess. Try other words, another namespace, or add the documents that hold the answer.'));
  }
  const invalid = answer.invalid_citations || [];
  if (invalid.length) {
    out.push(h('p', {class: 'answer-flags notice warn'}, `The model cited ${invalid.map((n) => `[${n}]`).join(' ')}, `,
      'which named no source it was given; those markers were removed.'));
  }
  for (const conflict of answer.conflicts || []) {
    const sides = (conflict.sides || []).map((side) => `[${side.citation}] ${side.value}${side.preferred ? ' (preferred)' : ''}`);
    if (sides.length > 1) {
      out.push(h('p', {class: 'answer-flags notice warn', 'data-conflict': conflict.kind},
        `The sources disagree${conflict.topic ? ` on ${conflict.topic}` : ''}: ${sides.join('; ')}.`));
    }
  }
  const failed = (answer.claims || []).filter((c) => c && c.status !== 'supported');
  if (failed.length) {
    const counts = ['contradicted', 'unsupported'].map((s) => [s, failed.filter((c) => c.status === s).length])
      .filter(([, n]) => n).map(([s, n]) => `${n} ${s}`);
    out.push(h('p', {class: 'answer-flags notice warn'}, `Check the underlined claims: ${counts.join(', ')}.`));
  }
  return out;
}

const SNIPPET = 110;

function sourcesList(answer, onCite) {
  if (!answer.citations.length) return null;
  return h('ol', {class: 'sources-list', 'aria-label': 'Sources'}, answer.citations.map((c, i) => {
    const quote = (c.quote || '').replace(/\s+/g, ' ').trim();
    return h('li', {},
      h('button', {type: 'button', class: 'source-item', 'data-citation': String(i), onclick: (e) => onCite(c, e.currentTarget)},
        h('span', {class: 'cite', 'aria-hidden': 'true'}, String(c.number)),
        h('span', {class: 'source-item-body'},
          h('span', {class: 'source-item-title'}, `${c.title || c.doc_id}${c.page ? ` · p. ${c.page}` : ''}`),
          quote ? h('span', {class: 'source-item-quote'}, `“${quote.length > SNIPPET ? `${quote.slice(0, SNIPPET)}…` : quote}”`) : null)));
  }));
}

export function detailsList(answer) {
  const usage = answer.usage || {};
  const t = answer.timings_ms || {};
  const rows = [
    ['Model', answer.model || '–'],
    ['Provider', answer.provider || '–'],
    ['Tokens', `${fmtNum(usage.prompt_tokens ?? 0)} in (${fmtNum(usage.cached_prompt_tokens ?? 0)} cached), `
      + `${fmtNum(usage.completion_tokens ?? 0)} out`],
    ['Timings', ['retrieve', 'rerank', 'build', 'first_token', 'generate', 'total'].filter((k) => k in t)
      .map((k) => `${k.replace('_', ' ')} ${fmtMs(t[k])}`).join(' · ') || '–'],
    ['Support', answer.support === null || answer.support === undefined ? '–' : `${Math.round(answer.support * 100)}%`],
    ['Confidence', answer.confidence === null || answer.confidence === undefined ? '–' : answer.confidence.toFixed(2)],
  ];
  if (answer.standalone_question && answer.standalone_question !== answer.question) {
    rows.push(['Searched as', answer.standalone_question]);
  }
  return h('dl', {}, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

/** Plain text for the clipboard: the answer, then its sources. */
export function answerAsText(answer) {
  const lines = [answer.answer];
  if (answer.citations.length) {
    lines.push('', 'Sources:');
    for (const c of answer.citations) lines.push(`[${c.number}] ${c.title || c.doc_id} (${c.source || c.doc_id}): "${c.quote}"`);
  }
  return lines.join('\n');
}

/** Fill `box` (the answer's text element) and return the notes and sources to show under it. */
export function renderAnswer(box, answer, onCite) {
  box.replaceChildren(...textNodes(answer, onCite));
  return [...notes(answer), sourcesList(answer, onCite)].filter(Boolean);
}
