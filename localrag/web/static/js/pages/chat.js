// Placeholder until the chat page lands.
import {h} from '../ui.js';

export async function mount(root) {
  root.append(h('h1', {}, 'Chat'), h('p', {class: 'muted'}, 'This page is not ready yet.'));
  return () => {};
}
