// The source panel: the document a citation or hit points at, with the quoted span in <mark class="quote">.
// PDFs show the cited page, sheets their rows as a table, recordings their timed lines; other text a window
// around the quote. Document text is untrusted: it only ever becomes text nodes.
import {clear, h} from './ui.js';

const WHOLE_TEXT = 30000; // shorter documents are shown whole
const WINDOW = 4000; // characters either side of the quote in longer ones
const TIMESTAMP = /^\[(\d+:)?\d{1,2}:\d{2}(\.\d+)?\]/;
const SEPARATOR = ' | ';

/** What to show for a citation ({quote, quote_start, quote_end, ...}) or a search hit ({text, char_start, ...}). */
function target(item) {
  const hasQuote = typeof item.quote === 'string' && item.quote_start !== undefined;
  return {
    docId: item.doc_id,
    namespace: item.namespace ?? null, // a citation's or hit's own; the picker's when it has none
    title: item.title || item.doc_id,
    source: item.source || '',
    page: item.page ?? null,
    number: item.number ?? null,
    quote: hasQuote ? item.quote : (item.text ?? ''),
    start: hasQuote ? item.quote_start : item.char_start,
    end: hasQuote ? item.quote_end : item.char_end,
  };
}

export async function showSource(panel, item, {api, namespace, close}) {
  const t = target(item);
  const body = h('div', {class: 'source-text loading'}, 'Loading the document…');
  const heading = h('h2', {id: 'source-title', tabindex: '-1'}, t.number ? `[${t.number}] ${t.title}` : t.title);
  clear(panel);
  panel.setAttribute('aria-labelledby', 'source-title');
  panel.append(
    h('div', {class: 'source-head'}, heading,
      h('button', {type: 'button', class: 'ghost small', 'aria-label': 'Close the source', onclick: close}, '✕')),
    h('div', {class: 'source-meta'}, [t.source || t.docId, t.page ? ` · page ${t.page}` : '',
      ` · chars ${t.start}–${t.end}`].join('')),
    body);
  heading.focus({preventScroll: true});
  let doc = null;
  let problem = '';
  try {
    doc = await api(`/v1/documents/${encodeURIComponent(t.docId)}`, {query: {namespace: t.namespace ?? namespace()}});
  } catch (e) {
    problem = e.status === 404 ? 'The document is no longer in the library.' : `The document could not be loaded: ${e.message}`;
  }
  if (!panel.contains(body)) return; // closed or replaced meanwhile
  body.classList.remove('loading');
  clear(body);
  if (!doc || typeof doc.text !== 'string') {
    body.append(h('p', {class: 'notice warn'}, problem || 'The document could not be read.'), h('blockquote', {}, mark(t.quote)));
  } else {
    renderDocument(body, doc, locate(doc.text, t));
  }
  const first = body.querySelector('mark.quote');
  if (first) first.scrollIntoView({block: 'center'});
}

/** The quote's span in the text as stored now; the offsets stand unless the document changed since. */
function locate(text, t) {
  if (text.slice(t.start, t.end) === t.quote) return {...t};
  const at = t.quote ? text.indexOf(t.quote) : -1;
  return at >= 0 ? {...t, start: at, end: at + t.quote.length} : {...t, start: -1, end: -1, missing: true};
}

function renderDocument(body, doc, t) {
  if (t.missing) body.append(h('p', {class: 'notice warn'}, 'The quoted passage is no longer in this document; it may have changed.'));
  const kind = doc.kind || guessKind(doc);
  if (kind === 'sheet') renderSheet(body, doc, t);
  else if (kind === 'media' || (kind !== 'pdf' && TIMESTAMP.test(doc.text))) renderMedia(body, doc, t);
  else if (kind === 'pdf' || (doc.page_starts && doc.page_starts.length > 1)) renderPage(body, doc, t);
  else renderText(body, doc.text, 0, doc.text.length, t);
}

function guessKind(doc) {
  const meta = doc.metadata || {};
  if (meta.sheet !== undefined || meta.row_start !== undefined) return 'sheet';
  if (meta.file_type === 'pdf') return 'pdf';
  return 'text';
}

/** Nodes for text[from:to] with the part inside [t.start, t.end) in <mark class="quote">. */
function marked(text, from, to, t) {
  const a = Math.max(from, t.start);
  const b = Math.min(to, t.end);
  if (t.start < 0 || a >= b) return [text.slice(from, to)];
  return [text.slice(from, a), mark(text.slice(a, b)), text.slice(b, to)].filter((n) => n !== '');
}

function mark(text) {
  return h('mark', {class: 'quote'}, text);
}

function renderText(body, text, from, to, t) {
  let start = from;
  let end = to;
  if (to - from > WHOLE_TEXT && t.start >= 0) {
    start = Math.max(from, t.start - WINDOW);
    end = Math.min(to, t.end + WINDOW);
  }
  const box = h('div', {class: 'source-text'});
  if (start > from) box.append(h('p', {class: 'muted'}, '…'));
  for (const [a, b] of paragraphs(text, start, end)) {
    box.append(h('p', {class: isProse(text.slice(a, b)) ? 'prose' : null}, marked(text, a, b, t)));
  }
  if (end < to) box.append(h('p', {class: 'muted'}, '…'));
  body.append(box);
}

/** [start, end) of each blank-line-separated paragraph of text[from:to]; the blank lines themselves are left out. */
function paragraphs(text, from, to) {
  const out = [];
  const gap = /\n[ \t]*\n\s*/g;
  gap.lastIndex = from;
  let at = from;
  for (let m = gap.exec(text); m && m.index < to; m = gap.exec(text)) {
    if (m.index > at) out.push([at, m.index]);
    at = Math.min(to, m.index + m[0].length);
  }
  if (at < to) out.push([at, to]);
  return out;
}

/** Hard-wrapped prose (long lines) reads better reflowed; short lines (lists, code, verse) keep their breaks. */
function isProse(paragraph) {
  const lines = paragraph.split('\n');
  return lines.length > 1 && lines.slice(0, -1).every((line) => line.length >= 50);
}

function renderPage(body, doc, t) {
  const starts = doc.page_starts && doc.page_starts.length ? doc.page_starts : [0];
  const at = t.start >= 0 ? t.start : 0;
  let index = 0;
  while (index + 1 < starts.length && starts[index + 1] <= at) index += 1;
  const from = starts[index];
  const to = index + 1 < starts.length ? starts[index + 1] : doc.text.length;
  const label = (doc.metadata && doc.metadata.page_label) || 'page';
  body.append(h('p', {class: 'badge', 'data-page': String(index + 1)},
    `${label[0].toUpperCase()}${label.slice(1)} ${index + 1} of ${starts.length}`));
  renderText(body, doc.text, from, to, t);
}

function renderMedia(body, doc, t) {
  const text = doc.text;
  const box = h('div', {class: 'source-text media'});
  let stamp = '';
  let lineStart = 0;
  for (const line of text.split('\n')) {
    const lineEnd = lineStart + line.length;
    const lead = line.match(TIMESTAMP);
    const leadEnd = lineStart + (lead ? lead[0].length : 0);
    const current = t.start >= 0 && t.start < lineEnd + 1 && t.end > lineStart;
    if (current && !stamp && lead) stamp = lead[0];
    box.append(h('span', {class: ['line', current ? 'current' : '']},
      lead ? h('span', {class: 'timestamp'}, marked(text, lineStart, leadEnd, t)) : null,
      marked(text, leadEnd, lineEnd, t)));
    lineStart = lineEnd + 1;
  }
  if (stamp) body.append(h('p', {class: 'badge', 'data-timestamp': stamp.slice(1, -1)}, `At ${stamp.slice(1, -1)}`));
  body.append(box);
}

function renderSheet(body, doc, t) {
  const text = doc.text;
  const lines = [];
  let at = 0;
  for (const line of text.split('\n')) {
    lines.push({line, start: at});
    at += line.length + 1;
  }
  const [caption, header, ...rows] = lines;
  const cells = ({line, start}) => {
    const out = [];
    let from = 0;
    for (;;) {
      const next = line.indexOf(SEPARATOR, from);
      const to = next < 0 ? line.length : next;
      out.push([start + from, start + to]);
      if (next < 0) return out;
      from = next + SEPARATOR.length;
    }
  };
  const table = h('table', {class: 'sheet'});
  if (header) {
    table.append(h('thead', {}, h('tr', {}, cells(header).map(([a, b]) => h('th', {scope: 'col'}, marked(text, a, b, t))))));
  }
  const tbody = h('tbody');
  for (const row of rows) {
    if (!row.line) continue;
    const cited = t.start >= 0 && t.start < row.start + row.line.length && t.end > row.start;
    tbody.append(h('tr', {class: cited ? 'cited' : null},
      cells(row).map(([a, b]) => h('td', {}, marked(text, a, b, t)))));
  }
  table.append(tbody);
  body.append(h('p', {class: 'badge'}, caption ? caption.line : 'Sheet'), h('div', {class: 'sheet-wrap'}, table));
}
