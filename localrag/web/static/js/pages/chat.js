// The chat page: questions answered with citations, streamed, with the conversation sent along as history.
// It streams from POST /v1/chat/completions, the route that takes earlier turns (follow-ups are rewritten
// into standalone questions there); its last chunk carries the whole answer ("localrag").
import {answerAsText, detailsList, renderAnswer} from '../answer.js';
import {clear, h, toast} from '../ui.js';

const HISTORY_TURNS = 6;
// Kept across page switches for the tab's life: {question, namespace, answer|null, text, state, error}
const conversation = [];

export async function mount(root, ctx) {
  let controller = null;
  const log = h('div', {class: 'chat-log', 'aria-live': 'polite', 'aria-busy': 'false'});
  const input = h('textarea', {id: 'chat-question', rows: '2', placeholder: 'Ask a question about your documents…',
    'aria-describedby': 'chat-hint', autocomplete: 'off'});
  const send = h('button', {type: 'submit', class: 'primary'}, 'Send');
  const stop = h('button', {type: 'button', class: 'danger', hidden: true, onclick: () => controller?.abort()}, 'Stop');
  const form = h('form', {class: 'composer', onsubmit: (e) => { e.preventDefault(); ask(); }},
    h('label', {for: 'chat-question', class: 'visually-hidden'}, 'Question'),
    input, stop, send);
  const hint = h('p', {id: 'chat-hint', class: 'muted small'}, 'Enter sends, Shift+Enter starts a new line.');
  const fresh = h('button', {type: 'button', class: 'ghost small', onclick: reset}, 'New chat');

  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      ask();
    }
  });
  const unpress = () => root.querySelectorAll('.cite[aria-pressed="true"]').forEach((b) => b.setAttribute('aria-pressed', 'false'));
  document.addEventListener('localrag:source-closed', unpress);

  const namespace = ctx.namespace();
  root.append(h('div', {class: 'chat'},
    h('div', {class: 'row'}, h('h1', {style: {flex: '1', margin: '0'}}, 'Chat'),
      namespace ? h('span', {class: 'badge'}, `namespace: ${namespace}`) : null, fresh),
    log, h('div', {}, form, hint)));
  render();
  input.focus();

  function openCitation(citation, button) {
    unpress();
    if (button && button.classList.contains('cite')) button.setAttribute('aria-pressed', 'true');
    ctx.openSource(citation);
  }

  function render() {
    clear(log);
    if (!conversation.length) {
      log.append(h('div', {class: 'chat-empty'}, h('h1', {}, 'Ask your documents'),
        h('p', {}, 'Answers cite the passages they rest on; click a [n] to read the source beside the answer.')));
    }
    for (const turn of conversation) log.append(turnView(turn));
  }

  function turnView(turn) {
    const text = h('div', {class: 'answer-text'});
    const card = h('article', {class: 'answer', 'aria-label': 'Answer'}, text);
    const view = h('div', {class: 'turn'}, h('div', {class: 'turn-q'}, turn.question), card);
    turn.view = {card, text};
    paint(turn);
    return view;
  }

  function paint(turn) {
    const {card, text} = turn.view;
    card.className = ['answer', turn.state, turn.answer?.abstained ? 'abstained' : ''].filter(Boolean).join(' ');
    card.dataset.tokens = String(turn.tokens || 0);
    while (card.lastChild !== text) card.lastChild.remove();
    if (turn.state === 'done' && turn.answer) {
      card.append(...renderAnswer(text, turn.answer, openCitation), tools(turn));
      return;
    }
    text.textContent = turn.text;
    if (turn.state === 'streaming' && !turn.text) text.append(h('span', {class: 'muted'}, 'Searching and thinking…'));
    if (turn.state === 'stopped') card.append(h('p', {class: 'muted small'}, 'Stopped.'));
    if (turn.state === 'failed') card.append(h('p', {class: 'notice error', role: 'alert'}, turn.error));
  }

  function tools(turn) {
    const details = h('div', {class: 'details', hidden: true, id: `details-${conversation.indexOf(turn)}`},
      detailsList(turn.answer));
    const toggle = h('button', {type: 'button', class: 'ghost small', 'aria-expanded': 'false',
      'aria-controls': details.id, onclick: () => {
        details.hidden = !details.hidden;
        toggle.setAttribute('aria-expanded', String(!details.hidden));
      }}, 'Details');
    const copy = h('button', {type: 'button', class: 'ghost small', onclick: () => copyText(answerAsText(turn.answer))}, 'Copy');
    return h('div', {}, h('div', {class: 'answer-tools'}, copy, toggle), details);
  }

  function history() {
    const messages = [];
    const done = conversation.filter((t) => t.state === 'done' && t.answer && t.namespace === ctx.namespace());
    for (const turn of done.slice(-HISTORY_TURNS)) {
      messages.push({role: 'user', content: turn.question}, {role: 'assistant', content: turn.answer.answer});
    }
    return messages;
  }

  async function ask() {
    const question = input.value.trim();
    if (!question || controller) return;
    const messages = [...history(), {role: 'user', content: question}];
    const turn = {question, namespace: ctx.namespace(), answer: null, text: '', state: 'streaming', tokens: 0};
    if (!conversation.length) clear(log);
    conversation.push(turn);
    log.append(turnView(turn));
    turn.view.card.scrollIntoView({block: 'end'});
    input.value = '';
    busy(true);
    controller = new AbortController();
    try {
      await ctx.postStream('/v1/chat/completions', {model: 'localrag', stream: true, messages,
        namespace: turn.namespace}, (name, data) => onChunk(turn, data), controller.signal);
      if (turn.state === 'streaming') throw new Error('The answer stream ended before the answer.');
    } catch (e) {
      if (e.name === 'AbortError') turn.state = 'stopped';
      else if (turn.state !== 'failed') Object.assign(turn, {state: 'failed', error: e.message || String(e)});
    } finally {
      controller = null;
      busy(false);
      if (turn.view) paint(turn);
      if (turn.view && turn.state === 'done') turn.view.card.scrollIntoView({block: 'nearest'});
      if (root.isConnected) input.focus();
    }
  }

  function onChunk(turn, data) {
    if (!data || typeof data !== 'object') return; // "[DONE]"
    if (data.error) {
      Object.assign(turn, {state: 'failed', error: data.error.message || 'The answer failed.'});
      return;
    }
    if (data.localrag) {
      Object.assign(turn, {answer: data.localrag, state: 'done'});
      if (turn.view) paint(turn);
      return;
    }
    const piece = data.choices?.[0]?.delta?.content;
    if (piece) {
      turn.tokens += 1;
      turn.text += piece;
      if (!turn.view) return;
      if (turn.tokens === 1) clear(turn.view.text);
      turn.view.text.append(piece);
      turn.view.card.dataset.tokens = String(turn.tokens);
    }
  }

  function busy(on) {
    send.disabled = on;
    stop.hidden = !on;
    log.setAttribute('aria-busy', String(on));
  }

  function reset() {
    controller?.abort();
    conversation.length = 0;
    ctx.closeSource();
    render();
    input.focus();
  }

  return () => {
    controller?.abort();
    document.removeEventListener('localrag:source-closed', unpress);
    for (const turn of conversation) delete turn.view;
  };
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast('Answer copied.', 'ok');
  } catch {
    toast('The browser refused the clipboard; select the text to copy it.', 'error');
  }
}
