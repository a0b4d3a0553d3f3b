// The API key prompt: shown when a /v1 call answers 401; the key lives in sessionStorage only.
import {h, modal} from './ui.js';

export const KEY_STORAGE = 'localrag.key';
let pending = null;

export function storedKey() {
  return sessionStorage.getItem(KEY_STORAGE) || '';
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
  document.dispatchEvent(new CustomEvent('localrag:key'));
}

/** Ask once for all the calls that got a 401 together; resolves with the key, or '' when dismissed. */
export function promptKey(rejected) {
  if (!pending) {
    pending = modal('API key needed', (close) => {
      const input = h('input', {id: 'api-key', type: 'password', autocomplete: 'off', spellcheck: 'false',
        required: true, 'aria-describedby': 'api-key-help'});
      const form = h('form', {class: 'stack', onsubmit: (e) => {
        e.preventDefault();
        const key = input.value.trim();
        if (key) close(key);
      }},
      h('p', {id: 'api-key-help', class: 'muted'}, rejected
        ? 'The key was refused. Enter a valid API key for this server.'
        : 'This server asks for an API key. It is kept for this browser tab only.'),
      h('label', {for: 'api-key'}, 'API key'),
      input,
      h('div', {class: 'row end'},
        h('button', {type: 'button', class: 'ghost', onclick: () => close(null)}, 'Cancel'),
        h('button', {type: 'submit', class: 'primary'}, 'Use key')));
      queueMicrotask(() => input.focus());
      return form;
    }).then((key) => {
      pending = null;
      if (key) {
        sessionStorage.setItem(KEY_STORAGE, key);
        document.dispatchEvent(new CustomEvent('localrag:key'));
      }
      return key || '';
    });
  }
  return pending;
}
