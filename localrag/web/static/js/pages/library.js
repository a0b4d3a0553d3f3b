// The library page: namespaces, upload (drag and drop or a file chooser), the document list with
// filter, paging and delete, the document view (library_doc.js) and the watched folders (library_watch.js).
import { h, clear, toast, fmtNum } from '../ui.js';
import { fmtTime, plural, showDocument } from '../library_doc.js';
import { mountWatch } from '../library_watch.js';

const PAGE = 20;
const FILTER_DELAY_MS = 250;

// What the server did with one uploaded file, from POST /v1/documents' answer.
export function describeUpload(result) {
  const parts = [];
  const chunks = result.chunks_added ? ` (${plural(result.chunks_added, 'chunk')})` : '';
  if (result.added?.length) parts.push(result.added.length === 1 ? 'added' : `added ${result.added.length} documents`);
  if (result.updated?.length) parts.push(result.updated.length === 1 ? 'updated' : `updated ${result.updated.length}`);
  if (result.unchanged?.length) parts.push('unchanged');
  for (const s of result.skipped || []) parts.push(`skipped: ${s.reason}`);
  const kind = result.added?.length ? 'added' : result.updated?.length ? 'updated'
    : result.unchanged?.length ? 'unchanged' : 'skipped';
  return { kind, text: (parts.join('; ') || 'nothing indexed') + chunks };
}

export async function mount(root, ctx) {
  const abort = new AbortController();
  const timers = new Set();
  const state = { namespace: ctx.namespace ? ctx.namespace() || '' : '', q: '', offset: 0, open: null, confirming: null };
  let listSeq = 0;

  // -- layout ---------------------------------------------------------------------------------------
  const nsSelect = h('select', { id: 'lib-ns', onchange: () => setNamespace(nsSelect.value) });
  const nsInput = h('input', { id: 'lib-ns-new', type: 'text', maxlength: '512', autocomplete: 'off',
    placeholder: 'e.g. work' });
  const nsForm = h('form', { class: 'lib-ns-new', hidden: '', onsubmit: (e) => {
    e.preventDefault();
    const name = nsInput.value.trim();
    if (!name) { nsInput.focus(); return; }
    nsForm.hidden = true;
    setNamespace(name);
    nsSelect.focus();
  } },
  h('label', { for: 'lib-ns-new' }, 'New namespace'), nsInput,
  h('button', { type: 'submit' }, 'Use'),
  h('button', { type: 'button', onclick: () => { nsForm.hidden = true; nsSelect.focus(); } }, 'Cancel'));
  const nsNew = h('button', { type: 'button', onclick: () => { nsForm.hidden = false; nsInput.focus(); } },
    'New namespace…');

  const fileInput = h('input', { id: 'lib-files', type: 'file', multiple: '', class: 'visually-hidden',
    tabindex: '-1', 'aria-hidden': 'true', onchange: () => { uploadAll([...fileInput.files]); fileInput.value = ''; } });
  const chooseButton = h('button', { type: 'button', class: 'primary', onclick: () => fileInput.click() },
    'Choose files…');
  const drop = h('div', { class: 'dropzone', id: 'lib-drop', role: 'group', 'aria-labelledby': 'lib-drop-label' },
    h('p', { id: 'lib-drop-label' }, 'Drop files here to add them to the library'),
    h('p', {}, 'or ', chooseButton, fileInput),
    h('p', { class: 'lib-note' }, 'Text, Markdown, HTML, PDF, Office and OpenDocument files, e-mail, images (OCR), ' +
      'recordings (transcribed).'));
  const uploads = h('ul', { class: 'upload-results', 'aria-live': 'polite', 'aria-label': 'Upload results' });

  const filter = h('input', { id: 'lib-filter', type: 'search', placeholder: 'title, id or source',
    autocomplete: 'off', oninput: () => {
      later('filter', () => { state.q = filter.value.trim(); state.offset = 0; loadList(); }, FILTER_DELAY_MS);
    } });
  const listBody = h('tbody', {});
  const listStatus = h('p', { class: 'lib-count', role: 'status' });
  const prev = h('button', { type: 'button', onclick: () => page(-1) }, '← Previous');
  const next = h('button', { type: 'button', onclick: () => page(1) }, 'Next →');
  const docPanel = h('section', { class: 'lib-doc card', 'aria-labelledby': 'lib-doc-title', hidden: '' });
  const watchSection = h('section', { class: 'lib-watch card', 'aria-labelledby': 'lib-watch-title' });

  clear(root);
  root.append(h('div', { class: 'library' },
    h('header', { class: 'lib-top' },
      h('h1', {}, 'Library'),
      h('div', { class: 'lib-ns' }, h('label', { for: 'lib-ns' }, 'Namespace'), nsSelect, nsNew, nsForm)),
    h('div', { class: 'lib-grid' },
      h('div', { class: 'lib-main' },
        h('section', { class: 'card', 'aria-labelledby': 'lib-add-title' },
          h('h2', { id: 'lib-add-title' }, 'Add documents'), drop, uploads),
        h('section', { class: 'card', 'aria-labelledby': 'lib-docs-title' },
          h('h2', { id: 'lib-docs-title' }, 'Documents'),
          h('div', { class: 'lib-filter' }, h('label', { for: 'lib-filter' }, 'Filter'), filter),
          listStatus,
          h('div', { class: 'table-wrap' }, h('table', { class: 'lib-list' },
            h('thead', {}, h('tr', {},
              h('th', { scope: 'col' }, 'Title / id'), h('th', { scope: 'col', class: 'source' }, 'Source'),
              h('th', { scope: 'col', class: 'num' }, 'Chunks'), h('th', { scope: 'col', class: 'updated' }, 'Updated'),
              h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
            listBody)),
          h('nav', { class: 'pager', 'aria-label': 'Document pages' }, prev, next)),
        watchSection),
      docPanel)));

  // -- helpers --------------------------------------------------------------------------------------
  const named = new Map();
  // At most one pending run per name, not pushed back by new calls: during a sync of thousands of files
  // the list still refreshes every `ms` instead of waiting for the events to stop.
  function soon(name, fn, ms) {
    if (!named.has(name)) later(name, fn, ms);
  }
  function later(name, fn, ms) {
    clearTimeout(named.get(name));
    const t = setTimeout(() => { timers.delete(t); named.delete(name); fn(); }, ms);
    named.set(name, t);
    timers.add(t);
  }
  const nsLabel = (name) => (name === '' ? '(default)' : name);

  // -- namespaces -----------------------------------------------------------------------------------
  async function loadNamespaces() {
    let names = [];
    try {
      const data = await ctx.api('/v1/namespaces', { signal: abort.signal });
      names = data.namespaces || [];
    } catch (e) {
      if (e.name === 'AbortError') return;
      toast(`Could not list namespaces: ${e.message}`, 'error');
    }
    const known = new Set(names.map((n) => n.name));
    clear(nsSelect);
    if (!known.has('')) nsSelect.append(h('option', { value: '' }, nsLabel('')));
    for (const n of names) {
      nsSelect.append(h('option', { value: n.name },
        `${nsLabel(n.name)} — ${plural(n.documents, 'document')}`));
    }
    if (!known.has(state.namespace) && state.namespace !== '') {
      nsSelect.append(h('option', { value: state.namespace }, `${state.namespace} (new)`));
    }
    nsSelect.value = state.namespace;
  }

  // The namespace is the nav bar's: choosing one here sets the nav's picker, whose change remounts the
  // page on it (and keeps it for the session). Without that picker the page switches on its own.
  function setNamespace(name) {
    const picker = document.getElementById('namespace');
    if (picker && picker.tagName === 'SELECT') {
      if (![...picker.options].some((o) => o.value === name)) picker.append(h('option', { value: name }, name));
      picker.value = name;
      picker.dispatchEvent(new Event('change'));
      return;
    }
    state.namespace = name;
    state.offset = 0;
    closeDocument();
    loadNamespaces();
    loadList();
  }

  // -- list -----------------------------------------------------------------------------------------
  function page(step) {
    state.offset = Math.max(0, state.offset + step * PAGE);
    loadList();
  }

  async function loadList() {
    const seq = ++listSeq;
    const query = { namespace: state.namespace, limit: PAGE, offset: state.offset };
    if (state.q) query.q = state.q;
    let data;
    try {
      data = await ctx.api('/v1/documents', { query, signal: abort.signal });
    } catch (e) {
      if (e.name === 'AbortError') return;
      listStatus.textContent = `Could not list documents: ${e.message}`;
      return;
    }
    if (seq !== listSeq) return; // a newer filter or page was asked for meanwhile
    const docs = data.documents || [];
    if (!docs.length && state.offset > 0) { // the last page emptied (a delete): step back
      state.offset = Math.max(0, state.offset - PAGE);
      loadList();
      return;
    }
    // A live refresh must not drop a delete confirmation the user has open (nor the focus inside it).
    const active = document.activeElement;
    const focusConfirm = Boolean(active && listBody.contains(active) && active.closest('.confirm'));
    clear(listBody);
    for (const doc of docs) listBody.append(row(doc));
    if (focusConfirm) listBody.querySelector('.confirm button:not(.danger)')?.focus();
    const total = typeof data.total === 'number' ? data.total : null;
    const from = docs.length ? state.offset + 1 : 0;
    const to = state.offset + docs.length;
    const where = state.q ? ` matching “${state.q}”` : '';
    if (!docs.length) {
      listStatus.textContent = state.q ? `No documents match “${state.q}”.`
        : `No documents in ${nsLabel(state.namespace)} yet: add some above.`;
    } else {
      listStatus.textContent = `${fmtNum(from)}–${fmtNum(to)} of ${total === null ? 'many' : fmtNum(total)}` +
        ` documents${where}`;
    }
    prev.disabled = state.offset === 0;
    next.disabled = total === null ? docs.length < PAGE : to >= total;
  }

  function row(doc) {
    const title = doc.title && doc.title !== doc.doc_id ? doc.title : '';
    const open = h('button', { type: 'button', class: 'link doc-open', 'data-doc': doc.doc_id,
      onclick: () => openDocument(doc.doc_id) }, title || doc.doc_id);
    const actions = h('td', { class: 'actions' });
    const del = h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${doc.doc_id}`,
      onclick: () => confirmDelete(actions, doc.doc_id, del, Boolean(doc.metadata?.root)) }, 'Delete');
    actions.append(del);
    if (state.confirming === doc.doc_id) confirmDelete(actions, doc.doc_id, del, Boolean(doc.metadata?.root), false);
    return h('tr', { 'data-doc': doc.doc_id },
      // the id under the title only when it says something the source column does not
      h('td', { 'data-label': 'Title / id' }, open,
        title && doc.doc_id !== doc.source ? h('div', { class: 'doc-id' }, doc.doc_id) : ''),
      h('td', { 'data-label': 'Source', class: 'source' }, doc.source || '—'),
      h('td', { 'data-label': 'Chunks', class: 'num' }, fmtNum(doc.chunks),
        h('span', { class: 'unit' }, doc.chunks === 1 ? ' chunk' : ' chunks')),
      h('td', { 'data-label': 'Updated', class: 'updated' }, fmtTime(doc.updated_at)),
      actions);
  }

  // The delete button turns into a confirm step in place; Escape or Cancel puts it back. A document of a
  // watched folder (metadata.root) stays deleted only while its file is unchanged: the question says so.
  function confirmDelete(cell, docId, button, watched, focus = true) {
    state.confirming = docId;
    const restore = () => { state.confirming = null; clear(cell); cell.append(button); button.focus(); };
    const yes = h('button', { type: 'button', class: 'danger', onclick: () => remove(docId, cell, restore) },
      'Delete');
    const no = h('button', { type: 'button', onclick: restore }, 'Cancel');
    clear(cell);
    cell.append(h('span', { class: 'confirm', role: 'group', 'aria-label': `Delete ${docId}?`,
      onkeydown: (e) => { if (e.key === 'Escape') restore(); } },
    h('span', {}, `Delete ${docId}?`), ' ', yes, ' ', no,
    watched ? h('span', { class: 'lib-note confirm-note' }, 'From a watched folder: it returns if the file changes.') : null));
    if (focus) no.focus();
  }

  async function remove(docId, cell, restore) {
    for (const b of cell.querySelectorAll('button')) b.disabled = true;
    try {
      await ctx.api(`/v1/documents/${encodeURIComponent(docId)}`,
        { method: 'DELETE', query: { namespace: state.namespace }, signal: abort.signal });
    } catch (e) {
      if (e.name === 'AbortError') return;
      toast(`Could not delete ${docId}: ${e.message}`, 'error');
      restore();
      return;
    }
    state.confirming = null;
    toast(`Deleted ${docId}`, 'ok');
    if (state.open === docId) closeDocument();
    await loadList();
    filter.focus();
    loadNamespaces();
  }

  // -- document view --------------------------------------------------------------------------------
  let viewAbort = null;
  function openDocument(docId, { focus = true } = {}) {
    viewAbort?.abort();
    viewAbort = new AbortController();
    state.open = docId;
    for (const tr of listBody.querySelectorAll('tr')) tr.classList.toggle('current', tr.dataset.doc === docId);
    showDocument(docPanel, ctx, docId, state.namespace, { signal: viewAbort.signal, focus, onClose: () => {
      const opener = listBody.querySelector(`tr.current .doc-open`);
      closeDocument();
      opener?.focus();
    } });
  }

  function closeDocument() {
    viewAbort?.abort();
    state.open = null;
    docPanel.hidden = true;
    clear(docPanel);
    for (const tr of listBody.querySelectorAll('tr.current')) tr.classList.remove('current');
  }

  // -- upload ---------------------------------------------------------------------------------------
  async function uploadAll(files) {
    if (!files.length) return;
    const namespace = state.namespace;
    const rows = files.map((file) => {
      const result = h('span', { class: 'result' }, 'waiting');
      const li = h('li', { class: 'upload pending', 'data-file': file.name },
        h('span', { class: 'name' }, file.name), ' ', h('span', { class: 'size' }, `${fmtSize(file.size)}`), ' ',
        result);
      uploads.prepend(li);
      return { file, li, result };
    });
    // One at a time: the server has one writer, and per-file results come back in order. Leaving the
    // page does not cancel what the user asked for: the rest still go, and a toast says when they are in.
    let failed = 0;
    for (const { file, li, result } of rows) {
      result.textContent = 'uploading…';
      try {
        const answer = await ctx.upload(file, { namespace });
        const { kind, text } = describeUpload(answer);
        li.className = `upload ${kind}`;
        result.textContent = text;
      } catch (e) {
        failed++;
        li.className = 'upload error';
        result.textContent = `error: ${e.message}`;
      }
    }
    document.dispatchEvent(new CustomEvent('localrag:namespaces-changed')); // the nav's picker lists it too
    if (abort.signal.aborted) {
      toast(`Uploads finished: ${files.length - failed} of ${files.length} files taken`, failed ? 'error' : 'ok');
      return;
    }
    while (uploads.children.length > 50) uploads.lastElementChild.remove();
    if (namespace === state.namespace) loadList();
    loadNamespaces();
  }

  function fmtSize(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
    return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  }

  // Dragging over the zone marks it; a file dropped elsewhere on the page must not replace the app.
  let depth = 0;
  drop.addEventListener('dragenter', (e) => { e.preventDefault(); depth++; drop.classList.add('over'); });
  drop.addEventListener('dragover', (e) => { e.preventDefault(); if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy'; });
  drop.addEventListener('dragleave', () => { depth = Math.max(0, depth - 1); if (!depth) drop.classList.remove('over'); });
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    depth = 0;
    drop.classList.remove('over');
    uploadAll([...(e.dataTransfer?.files || [])]);
  });
  const swallow = (e) => { if (!drop.contains(e.target)) e.preventDefault(); };
  window.addEventListener('dragover', swallow);
  window.addEventListener('drop', swallow);

  // -- live updates ---------------------------------------------------------------------------------
  const stopWatch = mountWatch(watchSection, ctx, { onDocsChanged: (event) => {
    if ((event.namespace || '') !== state.namespace) return;
    soon('list', () => { loadList(); loadNamespaces(); }, 500);
    if (event.kind === 'delete' && event.doc_id === state.open) closeDocument();
    // a changed document shows its new text, without taking the focus from wherever the user is
    if (event.kind === 'update' && event.doc_id === state.open) soon('view', () => openDocument(event.doc_id, { focus: false }), 300);
  } });

  await Promise.all([loadNamespaces(), loadList()]);

  return () => {
    abort.abort();
    viewAbort?.abort();
    stopWatch();
    for (const t of timers) clearTimeout(t);
    timers.clear();
    window.removeEventListener('dragover', swallow);
    window.removeEventListener('drop', swallow);
  };
}
