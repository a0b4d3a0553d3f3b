// The search page: query, mode, alpha (hybrid), rerank, k, namespace and a metadata filter built in
// rows (or typed as JSON); results with their per-stage scores and timings, a source panel on click,
// and thumbs up/down per result written to POST /v1/feedback.
import {svg} from '../chart.js';
import {clear, fmtMs, fmtNum, h, toast} from '../ui.js';

const OPERATORS = ['$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$nin', '$exists'];
const OPERATOR_LABELS = {$eq: '= equals', $ne: '≠ not equal', $gt: '> greater', $gte: '≥ at least', $lt: '< less',
  $lte: '≤ at most', $in: 'in list', $nin: 'not in list', $exists: 'exists'};
const SNIPPET_CHARS = 480;
const TIMING_ORDER = ['embed', 'dense', 'keyword', 'fuse', 'rerank', 'hydrate'];
const STATE_KEY = 'localrag.search';
let rowIds = 0;
// The thumbs-up/down outlines of Feather icons (MIT License, (c) 2013-2017 Cole Bemis): no emoji font needed.
const THUMB_UP = 'M14 9V5a3 3 0 0 0-3-3l-4 9v11h11.28a2 2 0 0 0 2-1.7l1.38-9a2 2 0 0 0-2-2.3zM7 22H4a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2h3';
const THUMB_DOWN = 'M10 15v4a3 3 0 0 0 3 3l4-9V2H5.72a2 2 0 0 0-2 1.7l-1.38 9a2 2 0 0 0 2 2.3zm7-13h2.67A2.31 2.31 0 0 1 22 4v7a2.31 2.31 0 0 1-2.33 2H17';

function icon(path) {
  return svg('svg', {viewBox: '0 0 24 24', width: 16, height: 16, fill: 'none', stroke: 'currentColor', 'stroke-width': 2,
    'stroke-linecap': 'round', 'stroke-linejoin': 'round', 'aria-hidden': 'true', focusable: 'false'}, svg('path', {d: path}));
}

/** A typed value: JSON when it parses to a scalar or a list ("2020", "true", "[1, 2]", "\"x\""), else the text. */
export function parseValue(text) {
  const trimmed = text.trim();
  try {
    const value = JSON.parse(trimmed);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  } catch { /* plain text */ }
  return trimmed;
}

/** The filter of builder rows [{field, op, value}]: one condition alone, several under $and. Throws on a bad row. */
export function buildFilter(rows) {
  const conditions = [];
  for (const {field, op, value} of rows) {
    const name = field.trim();
    if (!name) {
      if (value.trim()) throw new Error('A filter row has a value but no field name.');
      continue;
    }
    let operand;
    if (op === '$exists') operand = value !== 'false';
    else if (op === '$in' || op === '$nin') {
      const parsed = parseValue(value);
      operand = Array.isArray(parsed) ? parsed : value.split(',').map((v) => v.trim()).filter(Boolean).map(parseValue);
      if (!operand.length) throw new Error(`The filter on "${name}" needs at least one value (comma-separated).`);
    } else {
      if (!value.trim()) throw new Error(`The filter on "${name}" needs a value.`);
      operand = parseValue(value);
    }
    conditions.push({[name]: {[op]: operand}});
  }
  if (!conditions.length) return null;
  return conditions.length === 1 ? conditions[0] : {$and: conditions};
}

/** Builder rows from a filter, when it is one the builder can show (conditions under $and); else null. */
export function rowsOf(filter) {
  if (!filter || typeof filter !== 'object' || Array.isArray(filter)) return null;
  const parts = Object.keys(filter).length === 1 && Array.isArray(filter.$and) ? filter.$and : [filter];
  const rows = [];
  for (const part of parts) {
    if (!part || typeof part !== 'object') return null;
    for (const [field, condition] of Object.entries(part)) {
      if (field.startsWith('$')) return null;
      const isOp = condition && typeof condition === 'object' && !Array.isArray(condition);
      const entries = isOp ? Object.entries(condition) : [['$eq', condition]];
      for (const [op, operand] of entries) {
        if (!OPERATORS.includes(op)) return null;
        const value = op === '$exists' ? String(Boolean(operand))
          : Array.isArray(operand) ? operand.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(', ')
            : typeof operand === 'string' ? operand : JSON.stringify(operand);
        rows.push({field, op, value});
      }
    }
  }
  return rows;
}

function labelled(id, text, control, extra = null) {
  return h('div', {class: 'field'}, h('label', {for: id}, text), control, extra);
}

export async function mount(root, ctx) {
  const abort = new AbortController();
  const saved = JSON.parse(sessionStorage.getItem(STATE_KEY) || '{}');

  const query = h('input', {id: 'search-q', type: 'search', required: true, autocomplete: 'off',
    placeholder: 'What are you looking for?', value: saved.query || ''});
  const mode = h('select', {id: 'search-mode', onchange: () => showAlpha()},
    ...['hybrid', 'keyword', 'dense'].map((m) => h('option', {value: m}, m)));
  const alpha = h('input', {id: 'search-alpha', type: 'range', min: '0', max: '1', step: '0.05', value: '0.5',
    'aria-describedby': 'search-alpha-value', oninput: () => showAlpha()});
  const alphaValue = h('output', {id: 'search-alpha-value', for: 'search-alpha'});
  const alphaField = h('div', {class: 'field'}, h('label', {for: 'search-alpha'}, 'Dense weight (alpha)'),
    h('div', {class: 'range'}, alpha, alphaValue));
  const rerank = h('input', {id: 'search-rerank', type: 'checkbox'});
  const k = h('input', {id: 'search-k', type: 'number', min: '1', max: '100', value: String(saved.k || 10), inputmode: 'numeric'});
  const namespace = h('input', {id: 'search-ns', type: 'text', maxlength: '512', autocomplete: 'off',
    placeholder: '(default)', value: ctx.namespace ? ctx.namespace() : ''});

  const rowsBox = h('div', {class: 'filter-rows'});
  const rawJson = h('textarea', {id: 'filter-json', rows: '4', spellcheck: 'false', class: 'mono',
    placeholder: '{"genre": {"$in": ["drama", "comedy"]}, "year": {"$gte": 2020}}', hidden: true,
    'aria-label': 'Filter as JSON'});
  const rawToggle = h('input', {id: 'filter-raw', type: 'checkbox', onchange: () => toggleRaw()});
  const addRow = h('button', {type: 'button', class: 'small', onclick: () => { addFilterRow(); focusLastRow(); }}, '+ Add condition');
  const filterBox = h('fieldset', {class: 'filter-builder'},
    h('legend', {}, 'Metadata filter'),
    h('p', {class: 'muted small'}, 'All conditions must hold. Values are text, numbers, true/false or JSON; ' +
      'lists are comma-separated.'),
    rowsBox, rawJson,
    h('div', {class: 'row'}, addRow, h('label', {class: 'check'}, rawToggle, ' Edit as JSON')));

  const error = h('div', {class: 'notice error search-error', role: 'alert', hidden: true});
  const summary = h('p', {class: 'search-summary muted', role: 'status'});
  const results = h('ol', {class: 'search-results', 'aria-label': 'Results'});
  const submit = h('button', {type: 'submit', class: 'primary'}, 'Search');
  const form = h('form', {class: 'search-form card', role: 'search', onsubmit: (e) => { e.preventDefault(); run(); }},
    h('div', {class: 'search-line'}, h('label', {for: 'search-q', class: 'visually-hidden'}, 'Query'), query, submit),
    h('div', {class: 'search-options'},
      labelled('search-mode', 'Mode', mode), alphaField,
      h('div', {class: 'field check-field'}, h('label', {class: 'check', for: 'search-rerank'}, rerank, ' Rerank')),
      labelled('search-k', 'Results (k)', k), labelled('search-ns', 'Namespace', namespace)),
    filterBox);

  clear(root);
  root.append(h('h1', {}, 'Search'), form, error, summary, results);

  function showAlpha() {
    alphaField.hidden = mode.value !== 'hybrid';
    alphaValue.textContent = Number(alpha.value).toFixed(2);
  }

  function addFilterRow(row = {field: '', op: '$eq', value: ''}) {
    const n = ++rowIds;
    const field = h('input', {type: 'text', class: 'filter-field', id: `filter-field-${n}`, value: row.field,
      placeholder: 'field', autocomplete: 'off', 'aria-label': 'Field'});
    const op = h('select', {class: 'filter-op', 'aria-label': 'Operator'},
      ...OPERATORS.map((o) => h('option', {value: o}, OPERATOR_LABELS[o])));
    op.value = row.op;
    const value = h('input', {type: 'text', class: 'filter-value', value: row.op === '$exists' ? '' : row.value,
      placeholder: 'value', autocomplete: 'off', 'aria-label': 'Value'});
    const exists = h('select', {class: 'filter-exists', 'aria-label': 'Value'},
      h('option', {value: 'true'}, 'true'), h('option', {value: 'false'}, 'false'));
    exists.value = row.op === '$exists' && row.value === 'false' ? 'false' : 'true';
    const sync = () => { value.hidden = op.value === '$exists'; exists.hidden = op.value !== '$exists'; };
    op.addEventListener('change', sync);
    const remove = h('button', {type: 'button', class: 'ghost small', 'aria-label': 'Remove condition',
      onclick: () => { line.remove(); if (!rowsBox.children.length) addFilterRow(); }}, '✕');
    const line = h('div', {class: 'filter-row', role: 'group', 'aria-label': 'Condition'}, field, op, value, exists, remove);
    line.read = () => ({field: field.value, op: op.value, value: op.value === '$exists' ? exists.value : value.value});
    sync();
    rowsBox.append(line);
  }

  function focusLastRow() {
    rowsBox.lastElementChild?.querySelector('input')?.focus();
  }

  function builderRows() {
    return [...rowsBox.children].map((line) => line.read());
  }

  function setRows(rows) {
    clear(rowsBox);
    for (const row of rows.length ? rows : [undefined]) addFilterRow(row);
  }

  function toggleRaw() {
    showError(null);
    if (rawToggle.checked) {
      try {
        const filter = buildFilter(builderRows());
        rawJson.value = filter ? JSON.stringify(filter, null, 2) : '';
      } catch { /* keep whatever JSON was there */ }
    } else {
      let rows = [];
      if (rawJson.value.trim()) {
        try {
          rows = rowsOf(JSON.parse(rawJson.value));
        } catch {
          rows = null;
        }
      }
      if (rows === null) {
        rawToggle.checked = true;
        showError('This filter cannot be shown as rows (it uses $or or nesting, or is not valid JSON): edit it as JSON.');
        return;
      }
      setRows(rows);
    }
    rawJson.hidden = !rawToggle.checked;
    rowsBox.hidden = rawToggle.checked;
    addRow.hidden = rawToggle.checked;
  }

  function currentFilter() {
    if (!rawToggle.checked) return buildFilter(builderRows());
    if (!rawJson.value.trim()) return null;
    let filter;
    try {
      filter = JSON.parse(rawJson.value);
    } catch (e) {
      throw new Error(`The filter is not valid JSON: ${e.message}`);
    }
    if (!filter || typeof filter !== 'object' || Array.isArray(filter)) throw new Error('The filter must be a JSON object.');
    return filter;
  }

  function showError(message) {
    error.hidden = !message;
    error.textContent = message || '';
  }

  async function run() {
    showError(null);
    const text = query.value.trim();
    if (!text) { query.focus(); return; }
    let filter;
    try {
      filter = currentFilter();
    } catch (e) {
      showError(e.message);
      return;
    }
    const count = Number.parseInt(k.value, 10);
    const body = {query: text, mode: mode.value, k: Number.isFinite(count) && count > 0 ? count : 10,
      namespace: namespace.value.trim(), rerank: rerank.checked};
    if (mode.value === 'hybrid') body.alpha = Number(alpha.value);
    if (filter) body.filter = filter;
    sessionStorage.setItem(STATE_KEY, JSON.stringify({query: text, k: body.k}));
    submit.disabled = true;
    summary.textContent = 'Searching…';
    try {
      const data = await ctx.api('/v1/search', {method: 'POST', body, signal: abort.signal});
      showResults(body, data);
    } catch (e) {
      if (abort.signal.aborted) return;
      clear(results);
      summary.textContent = '';
      showError(e.status === 400 ? `The server refused the search: ${e.message}` : `Search failed: ${e.message}`);
    } finally {
      submit.disabled = false;
    }
  }

  function showResults(request, data) {
    const hits = data.hits || [];
    const rank = (stage) => (TIMING_ORDER.includes(stage) ? TIMING_ORDER.indexOf(stage) : TIMING_ORDER.length);
    const timings = Object.entries(data.timings_ms || {}).filter(([stage, ms]) => stage !== 'search' && ms >= 0.005)
      .sort((a, b) => rank(a[0]) - rank(b[0]));
    const total = data.timings_ms?.search;
    const count = `${hits.length} result${hits.length === 1 ? '' : 's'}`;
    const cached = data.timings_ms?.cached;
    summary.textContent = cached !== undefined ? `${count} from the result cache (${fmtMs(cached)})`
      : count + (total !== undefined ? ` in ${fmtMs(total)}` : '') +
        (timings.length ? ` (${timings.map(([stage, ms]) => `${stage} ${fmtMs(ms)}`).join(', ')})` : '');
    results.replaceChildren(...hits.map((hit, i) => resultItem(request, hit, i + 1)));
    if (!hits.length) results.append(h('li', {class: 'muted empty'}, 'Nothing matched.'));
  }

  function resultItem(request, hit, rank) {
    const where = [hit.source, hit.page ? `page ${hit.page}` : null, hit.namespace ? `namespace ${hit.namespace}` : null]
      .filter(Boolean).join(' · ');
    const text = hit.text || '';
    const snippet = text.length > SNIPPET_CHARS ? `${text.slice(0, SNIPPET_CHARS).trimEnd()}…` : text;
    const stages = Object.entries(hit.scores || {});
    const state = h('span', {class: 'feedback-state', role: 'status'});
    const vote = (relevant) => async (e) => {
      const buttons = e.currentTarget.parentElement.querySelectorAll('button');
      buttons.forEach((b) => { b.disabled = true; });
      try {
        await ctx.api('/v1/feedback', {method: 'POST', signal: abort.signal,
          body: {query: request.query, chunk_id: hit.chunk_id, relevant, namespace: hit.namespace ?? request.namespace}});
        item.dataset.feedback = relevant ? 'relevant' : 'not-relevant';
        buttons.forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.relevant === String(relevant))));
        state.textContent = relevant ? 'Recorded: relevant' : 'Recorded: not relevant';
        state.className = 'feedback-state badge ok';
      } catch (err) {
        if (!abort.signal.aborted) toast(`Feedback not recorded: ${err.message}`, 'error');
      } finally {
        buttons.forEach((b) => { b.disabled = false; });
      }
    };
    const item = h('li', {class: 'hit card', 'data-chunk-id': String(hit.chunk_id), 'data-doc-id': hit.doc_id},
      h('div', {class: 'hit-head'},
        h('span', {class: 'hit-rank', 'aria-hidden': 'true'}, String(rank)),
        h('button', {type: 'button', class: 'hit-title link', onclick: () => ctx.openSource(hit),
          title: 'Open the source beside the results'}, hit.title || hit.doc_id),
        h('span', {class: 'badge hit-score', title: 'total score'}, `score ${fmtScore(hit.score)}`)),
      where ? h('p', {class: 'hit-where muted small'}, where) : null,
      h('p', {class: 'hit-text'}, snippet),
      h('div', {class: 'hit-foot'},
        h('ul', {class: 'hit-scores', 'aria-label': 'Scores per stage'},
          ...stages.map(([stage, value]) => h('li', {'data-stage': stage}, h('span', {class: 'muted'}, stage), ' ',
            fmtScore(value)))),
        h('div', {class: 'feedback', role: 'group', 'aria-label': `Was “${hit.title || hit.doc_id}” relevant?`},
          h('button', {type: 'button', class: 'small vote', 'data-relevant': 'true', 'aria-pressed': 'false',
            'aria-label': 'Relevant', title: 'Relevant', onclick: vote(true)}, icon(THUMB_UP)),
          h('button', {type: 'button', class: 'small vote', 'data-relevant': 'false', 'aria-pressed': 'false',
            'aria-label': 'Not relevant', title: 'Not relevant', onclick: vote(false)}, icon(THUMB_DOWN)),
          state)));
    return item;
  }

  async function loadDefaults() {
    try {
      const {settings} = await ctx.api('/v1/settings', {signal: abort.signal});
      mode.value = settings.search?.mode || 'hybrid';
      if (typeof settings.search?.alpha === 'number') alpha.value = String(settings.search.alpha);
      rerank.checked = Boolean(settings.rerank?.enabled);
    } catch { /* older servers: the page's own defaults */ }
    showAlpha();
  }

  setRows([]);
  showAlpha();
  await loadDefaults();
  query.focus();
  return () => abort.abort();
}

function fmtScore(value) {
  if (value === null || value === undefined) return '–';
  return Math.abs(value) >= 100 ? fmtNum(value) : value.toFixed(3);
}
