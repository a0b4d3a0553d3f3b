// The library's document view: metadata, the text with its chunk boundaries marked, and the chunk list.
// Document text is untrusted: every piece goes in as a text node (h() / textContent), never as HTML.
import { h, clear } from './ui.js';

// Rendering hundreds of thousands of spans freezes the tab; past this the view shows the start only.
const MAX_TEXT = 200000;

export function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export function fmtTime(seconds) {
  if (seconds === null || seconds === undefined || seconds === '') return '';
  const d = typeof seconds === 'number' ? new Date(seconds * 1000) : new Date(seconds);
  if (Number.isNaN(d.getTime())) return String(seconds);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

// Split the text at every chunk start and end, so overlapping chunks show as their own segments.
// One sweep over the cut points with the set of chunks open there: linear in the chunks, since a
// document of thousands of chunks must not cost a quadratic scan in the browser.
export function segments(length, chunks, cuts = []) {
  const clamp = (n) => Math.max(0, Math.min(length, n));
  const opens = new Map();
  const closes = new Map();
  const at = (map, key, ordinal) => { if (!map.has(key)) map.set(key, []); map.get(key).push(ordinal); };
  for (const c of chunks) {
    if (clamp(c.char_start) >= clamp(c.char_end)) continue; // empty, or past the text shown
    at(opens, clamp(c.char_start), c.ordinal);
    at(closes, clamp(c.char_end), c.ordinal);
  }
  const extra = cuts.map(clamp);
  const points = [...new Set([0, length, ...extra, ...opens.keys(), ...closes.keys()])].sort((a, b) => a - b);
  const active = new Set();
  const out = [];
  for (let i = 0; i + 1 < points.length; i++) {
    for (const o of closes.get(points[i]) || []) active.delete(o);
    for (const o of opens.get(points[i]) || []) active.add(o);
    if (points[i + 1] > points[i]) out.push({ start: points[i], end: points[i + 1], covering: [...active] });
  }
  return out;
}

function metaRows(doc) {
  const rows = [['Document id', doc.doc_id], ['Source', doc.source || '—'], ['Kind', doc.kind || '—'],
    ['Chunks', String(doc.chunks.length)], ['Characters', String(doc.text_chars ?? doc.text.length)]];
  if (doc.page_starts && doc.page_starts.length) rows.push(['Pages', String(doc.page_starts.length)]);
  for (const [key, value] of Object.entries(doc.metadata || {})) {
    if (key === 'source' && value === doc.source) continue;
    rows.push([key, typeof value === 'string' ? value : JSON.stringify(value)]);
  }
  return h('dl', { class: 'lib-meta' }, ...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function textView(doc, onPick) {
  const shown = doc.text.length > MAX_TEXT ? doc.text.slice(0, MAX_TEXT) : doc.text;
  const pre = h('div', { class: 'lib-text', tabindex: '0', 'aria-label': 'Document text with chunk boundaries' });
  const startsAt = new Map();
  for (const c of doc.chunks) {
    if (!startsAt.has(c.char_start)) startsAt.set(c.char_start, []);
    startsAt.get(c.char_start).push(c);
  }
  // Pages (PDFs, scans) are marked where they begin, so a chunk's page can be seen in the text.
  const pages = doc.page_starts && doc.page_starts.length > 1 ? doc.page_starts : [];
  const pageAt = new Map(pages.map((start, i) => [start, i + 1]));
  for (const seg of segments(shown.length, doc.chunks, pages)) {
    if (pageAt.has(seg.start)) {
      pre.append(h('span', { class: 'page-mark', role: 'separator' }, `page ${pageAt.get(seg.start)}`));
      pageAt.delete(seg.start); // two pages starting at one offset (an empty page) show once
    }
    for (const c of startsAt.get(seg.start) || []) {
      const label = `#${c.ordinal}` + (c.page ? ` p.${c.page}` : '');
      pre.append(h('button', {
        type: 'button', class: 'chunk-mark', 'data-ordinal': String(c.ordinal),
        title: `chunk ${c.ordinal}: characters ${c.char_start}–${c.char_end}`,
        'aria-label': `chunk ${c.ordinal} starts here`, onclick: () => onPick(c.ordinal),
      }, label));
    }
    const cls = ['seg', seg.covering.length > 1 ? 'overlap' : '', seg.covering.length === 0 ? 'gap' : '']
      .filter(Boolean).join(' ');
    pre.append(h('span', { class: cls, 'data-chunks': seg.covering.join(' ') }, shown.slice(seg.start, seg.end)));
  }
  const total = Math.max(doc.text_chars ?? 0, doc.text.length);
  if (shown.length < total) {
    pre.append(h('p', { class: 'lib-note' }, `… ${total - shown.length} more characters not shown`));
  }
  return pre;
}

// "1:05.2" for 65.2 s: where a recording's chunk begins.
export function fmtClock(seconds) {
  const m = Math.floor(seconds / 60);
  return `${m}:${(seconds - m * 60).toFixed(1).padStart(4, '0')}`;
}

// Recordings say when a chunk begins (the last transcript line starting at or before it); the rest, the page.
function whereOf(doc) {
  const lines = doc.kind === 'media' ? doc.segments || [] : [];
  if (!lines.length) {
    return doc.chunks.some((c) => c.page) ? { label: 'Page', of: (c) => (c.page ? String(c.page) : '—') } : null;
  }
  return { label: 'Time', of: (c) => {
    let at = null;
    for (const line of lines) if (line.char_start <= c.char_start) at = line.start_s;
    return at === null ? '—' : fmtClock(at);
  } };
}

// The start of a chunk on one line, cut at a word and marked as cut.
function preview(text, max = 90) {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat.length <= max) return flat;
  const cut = flat.lastIndexOf(' ', max);
  return `${flat.slice(0, cut > max / 2 ? cut : max)}…`;
}

function chunkTable(doc, onPick) {
  const where = whereOf(doc);
  const body = h('tbody', {});
  for (const c of doc.chunks) {
    body.append(h('tr', { 'data-ordinal': String(c.ordinal) },
      h('td', { 'data-label': 'Chunk' },
        h('button', { type: 'button', class: 'link', onclick: () => onPick(c.ordinal) }, `#${c.ordinal}`)),
      h('td', { 'data-label': 'Characters' }, `${c.char_start}–${c.char_end}`),
      where ? h('td', { 'data-label': where.label }, where.of(c)) : null,
      h('td', { 'data-label': 'Preview', class: 'preview' }, preview(doc.text.slice(c.char_start, c.char_end)))));
  }
  return h('table', { class: 'lib-chunks' },
    h('caption', {}, plural(doc.chunks.length, 'chunk')),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Chunk'), h('th', { scope: 'col' }, 'Characters'),
      where ? h('th', { scope: 'col' }, where.label) : null, h('th', { scope: 'col', class: 'preview' }, 'Preview'))),
    body);
}

// Highlight one chunk's segments in the text and bring it into view.
function pick(panel, ordinal) {
  for (const el of panel.querySelectorAll('.sel')) el.classList.remove('sel');
  let first = null;
  for (const seg of panel.querySelectorAll('.lib-text .seg')) {
    if (seg.dataset.chunks.split(' ').includes(String(ordinal))) {
      seg.classList.add('sel');
      first = first || seg;
    }
  }
  for (const el of panel.querySelectorAll(`[data-ordinal="${ordinal}"]`)) el.classList.add('sel');
  // scroll the text box alone (scrollIntoView would move the page too), the chunk's marker at the top
  const box = panel.querySelector('.lib-text');
  const mark = panel.querySelector(`.chunk-mark[data-ordinal="${ordinal}"]`) || first;
  if (box && mark) box.scrollTo({ top: Math.max(0, mark.offsetTop - 8) });
}

// Renders the document into `panel`; `onClose` hides the panel; `focus` moves the focus to its title.
export async function showDocument(panel, ctx, docId, namespace, { onClose, signal, focus = true } = {}) {
  const close = () => h('button', { type: 'button', onclick: onClose }, 'Close');
  if (focus || panel.hidden) { // a refresh keeps the old view until the new one is in (no flicker)
    clear(panel);
    panel.hidden = false;
    panel.append(h('p', { class: 'lib-note', role: 'status' }, `Loading ${docId}…`));
  }
  let doc;
  try {
    doc = await ctx.api(`/v1/documents/${encodeURIComponent(docId)}`, { query: { namespace }, signal });
  } catch (e) {
    if (e.name === 'AbortError') return;
    clear(panel);
    panel.append(h('header', { class: 'lib-doc-head' }, h('h2', { id: 'lib-doc-title' }, docId), close()),
      h('p', { class: 'lib-error', role: 'alert' }, `Could not open ${docId}: ${e.message}`));
    return;
  }
  const scrolled = panel.querySelector('.lib-text')?.scrollTop || 0;
  clear(panel);
  doc.chunks = doc.chunks || [];
  doc.text = doc.text || '';
  const heading = h('h2', { id: 'lib-doc-title', tabindex: '-1' }, doc.title || doc.doc_id);
  const actions = h('div', { class: 'lib-actions' }, close());
  const onPick = (ordinal) => pick(panel, ordinal);
  panel.append(
    h('header', { class: 'lib-doc-head' }, heading, actions),
    metaRows(doc),
    h('h3', {}, 'Text'),
    h('p', { class: 'lib-note' }, doc.chunks.length > 1
      ? 'Each #n marks where a chunk starts; shaded text is shared by two chunks. Pick a chunk to highlight it.'
      : 'The whole text is one chunk.'),
    textView(doc, onPick),
    h('h3', {}, 'Chunks'),
    h('div', { class: 'table-wrap' }, chunkTable(doc, onPick)),
  );
  if (focus) heading.focus();
  else panel.querySelector('.lib-text').scrollTop = scrolled;
}
