// The settings page: the server's effective settings (GET /v1/settings, secrets already hidden by the
// server), one table per section, with a filter; the data directory; the key state of this tab; the theme.
import {forgetKey, storedKey} from '../keyprompt.js';
import {clear, h, toast} from '../ui.js';

const SECTION_NOTES = {
  embed: 'Embedding model', chunk: 'Chunking', index: 'Vector index', bm25: 'Keyword index (BM25)',
  search: 'Search defaults', ingest: 'Ingest and parsing', vector: 'Vector store', generate: 'Answer model',
  answer: 'Answers and citations', rerank: 'Reranker', server: 'HTTP server', learn: 'Learning from feedback',
};
const REDACTED = '***';

function shown(value) {
  if (value === '') return h('span', {class: 'muted'}, '(empty)');
  if (value === REDACTED) return h('span', {class: 'badge'}, 'set (hidden)');
  if (typeof value === 'boolean') return h('span', {class: ['badge', value ? 'ok' : null]}, value ? 'on' : 'off');
  return h('code', {}, typeof value === 'string' ? value : JSON.stringify(value));
}

function themeName() {
  return window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

export async function mount(root, ctx) {
  const abort = new AbortController();
  const filter = h('input', {id: 'settings-filter', type: 'search', autocomplete: 'off', placeholder: 'e.g. alpha, threads',
    oninput: () => applyFilter()});
  const sections = h('div', {class: 'settings-sections'});
  const keyState = h('p', {class: 'settings-key'});
  const theme = h('span', {}, themeName());
  const dataDir = h('code', {class: 'settings-datadir'}, '…');
  const empty = h('p', {class: 'muted', hidden: true}, 'No setting matches.');

  clear(root);
  root.append(
    h('h1', {}, 'Settings'),
    h('p', {class: 'muted'}, 'What this server runs with, read-only. Change settings in ',
      h('code', {}, 'localrag.toml'), ' in the data directory or with ', h('code', {}, 'LOCALRAG_SECTION__FIELD'),
      ' variables, then restart the server.'),
    h('section', {class: 'card settings-about', 'aria-labelledby': 'settings-about-title'},
      h('h2', {id: 'settings-about-title'}, 'This server and this tab'),
      h('dl', {class: 'settings-facts'},
        h('dt', {}, 'Data directory'), h('dd', {}, dataDir),
        h('dt', {}, 'API key'), h('dd', {}, keyState),
        h('dt', {}, 'Theme'), h('dd', {}, 'Light and dark follow the system setting; now ', theme, '.'))),
    h('div', {class: 'settings-filter'}, h('label', {for: 'settings-filter'}, 'Find a setting'), filter),
    empty, sections);

  const media = window.matchMedia('(prefers-color-scheme: dark)');
  const onTheme = () => { theme.textContent = themeName(); };
  media.addEventListener('change', onTheme);

  function renderKey(serverHasKeys) {
    const stored = Boolean(storedKey());
    const parts = [serverHasKeys ? 'This server asks for an API key on /v1.' : 'This server asks for no key (it listens on loopback only).'];
    if (stored) parts.push(' A key is kept for this tab (session storage) and sent with each request. ');
    clear(keyState).append(...parts);
    if (stored) {
      keyState.append(h('button', {type: 'button', class: 'small', onclick: () => {
        forgetKey();
        toast('The API key is forgotten for this tab.', 'info');
        renderKey(serverHasKeys);
      }}, 'Forget key'));
    }
  }

  function applyFilter() {
    const needle = filter.value.trim().toLowerCase();
    let visible = 0;
    for (const section of sections.children) {
      let rows = 0;
      for (const row of section.querySelectorAll('tbody tr')) {
        const match = !needle || row.dataset.name.includes(needle) || section.dataset.section.includes(needle);
        row.hidden = !match;
        rows += match ? 1 : 0;
      }
      section.hidden = rows === 0;
      visible += rows;
    }
    empty.hidden = visible > 0;
  }

  try {
    const data = await ctx.api('/v1/settings', {signal: abort.signal});
    dataDir.textContent = data.data_dir || '(unknown)';
    renderKey(data.settings?.server?.api_keys === REDACTED);
    for (const [section, values] of Object.entries(data.settings || {})) {
      sections.append(h('section', {class: 'card settings-section', 'data-section': section, 'aria-labelledby': `settings-${section}`},
        h('h2', {id: `settings-${section}`}, section, SECTION_NOTES[section] ? h('span', {class: 'muted small'}, ` · ${SECTION_NOTES[section]}`) : null),
        h('table', {},
          h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'Setting'), h('th', {scope: 'col'}, 'Value'))),
          h('tbody', {}, ...Object.entries(values).map(([name, value]) => h('tr', {'data-name': `${section}.${name}`.toLowerCase(), 'data-setting': `${section}.${name}`},
            h('th', {scope: 'row'}, h('code', {}, name)), h('td', {}, shown(value))))))));
    }
  } catch (e) {
    if (!abort.signal.aborted) {
      sections.append(h('div', {class: 'notice error', role: 'alert'}, `Could not read the settings: ${e.message}`));
    }
    renderKey(Boolean(storedKey()));
  }

  return () => {
    abort.abort();
    media.removeEventListener('change', onTheme);
  };
}
