// Placeholder: the search page is being built (issue 13); it keeps the page contract meanwhile.
import {h} from '../ui.js';

export async function mount(root) {
  root.append(h('h1', {}, 'Search'), h('p', {class: 'muted'}, 'This page is not ready yet.'));
  return () => {};
}
