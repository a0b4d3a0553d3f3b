// Calls to the server's /v1 API: the key header, one retry after the key prompt, errors as ApiError.
import {promptKey, storedKey} from './keyprompt.js';

export class ApiError extends Error {
  constructor(status, message, body = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
}

function url(path, query) {
  const u = new URL(path, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== '') u.searchParams.set(name, String(value));
  }
  return u.pathname + u.search;
}

function headers(extra = {}) {
  const key = storedKey();
  return key ? {...extra, Authorization: `Bearer ${key}`} : {...extra};
}

async function errorOf(response) {
  let body = null;
  let message = `${response.status} ${response.statusText}`;
  try {
    body = await response.json();
    message = body?.error?.message || body?.message || message;
  } catch { /* not JSON: keep the status line */ }
  return new ApiError(response.status, message, body);
}

const KEY_TRIES = 3;

/** fetch with the key; on 401 ask for a key and try again (a refused key asks again, up to KEY_TRIES times).
 * Returns the Response (ok) or throws ApiError. */
async function send(path, init, query) {
  const target = url(path, query);
  const sent = storedKey();
  let response = await fetch(target, {...init, headers: headers(init.headers)});
  for (let tries = 0; response.status === 401 && tries < KEY_TRIES; tries += 1) {
    // another call may have got a key from the prompt while this one was on its way
    const current = storedKey();
    const key = current && current !== sent && tries === 0 ? current : await promptKey(tries > 0 || Boolean(sent));
    if (!key) break;
    response = await fetch(target, {...init, headers: headers(init.headers)});
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

export async function api(path, {method = 'GET', body, query, signal} = {}) {
  const init = {method, signal, headers: {Accept: 'application/json'}};
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  const response = await send(path, init, query);
  if (response.status === 204) return null;
  const type = response.headers.get('content-type') || '';
  return type.includes('json') ? response.json() : response.text();
}

/** Server-sent events from a Response body: onEvent(eventName, data); data is parsed JSON when it is JSON. */
async function readEvents(response, onEvent, signal) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const dispatch = (block) => {
    let name = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') name = value;
      else if (field === 'data') data.push(value);
    }
    if (!data.length) return;
    const text = data.join('\n');
    let parsed = text;
    try { parsed = JSON.parse(text); } catch { /* e.g. [DONE] */ }
    onEvent(name, parsed);
  };
  try {
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, {stream: true}).replace(/\r\n?/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        dispatch(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
    if (buffer.trim()) dispatch(buffer);
  } finally {
    if (signal?.aborted) reader.cancel().catch(() => {});
  }
}

/** POST a JSON body and read the server-sent events it answers with (EventSource cannot send the key). */
export async function postStream(path, body, onEvent, signal) {
  const response = await send(path, {
    method: 'POST', signal, body: JSON.stringify(body),
    headers: {'Content-Type': 'application/json', Accept: 'text/event-stream'},
  });
  await readEvents(response, onEvent, signal);
}

/** GET a server-sent event stream (e.g. /v1/events) until it ends or `signal` aborts. */
export async function getStream(path, onEvent, signal, query) {
  const response = await send(path, {method: 'GET', signal, headers: {Accept: 'text/event-stream'}}, query);
  await readEvents(response, onEvent, signal);
}

/** Upload one file to POST /v1/documents (multipart). */
export async function upload(file, {namespace = '', docId = '', metadata = null, signal} = {}) {
  const form = new FormData();
  form.append('file', file, file.name);
  if (namespace) form.append('namespace', namespace);
  if (docId) form.append('doc_id', docId);
  if (metadata) form.append('metadata', JSON.stringify(metadata));
  return api('/v1/documents', {method: 'POST', body: form, signal});
}
