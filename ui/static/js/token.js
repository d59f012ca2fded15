// The ACL token: when the API answers 403, the UI asks for a token in a dialog and
// sends it with every request, in the X-Grid-Token header (the event stream too: it is
// read with fetch, which can send headers, so the secret never goes into a URL). The
// token is kept in sessionStorage: for this tab only, gone when the tab closes.

import {h, fill} from './dom.js';

const KEY = 'grid-token';

let token = '';
try {
  token = sessionStorage.getItem(KEY) || '';
} catch {
  // No storage (a sandboxed page): the token lasts as long as the page.
}

// withToken adds the token header to headers, when there is a token.
export function withToken(headers) {
  if (token) headers['X-Grid-Token'] = token;
  return headers;
}

function setToken(t) {
  token = t;
  try {
    if (t) sessionStorage.setItem(KEY, t);
    else sessionStorage.removeItem(KEY);
  } catch {
    // As above.
  }
}

let dialog = null;
let pending = null;
// dismissed: the user closed the dialog; refusals no longer open it by themselves,
// the header's Token button does.
let dismissed = false;

// askToken shows why the server refused (msg) and asks for a token. It resolves true
// once the token changed (the caller tries again), false when the user closes the
// dialog, or closed it before and force is not set. Refusals that come while the
// dialog is open share it.
export function askToken(msg, force) {
  if (pending) return pending;
  if (dismissed && !force) return Promise.resolve(false);
  if (!dialog) {
    dialog = h('dialog', {class: 'confirm', testid: 'token-dialog', 'aria-labelledby': 'token-title'});
    document.body.appendChild(dialog);
  }
  let resolve;
  pending = new Promise((r) => { resolve = r; });
  const done = (ok) => {
    if (!pending) return;
    pending = null;
    dismissed = !ok;
    dialog.removeEventListener('close', onClose);
    if (dialog.open) dialog.close();
    resolve(ok);
  };
  const onClose = () => done(false);
  const input = h('input', {type: 'password', id: 'token-input', testid: 'token-input', autocomplete: 'off', spellcheck: 'false'});
  const forget = token && h('button', {type: 'button', testid: 'token-forget', on: {click: () => { setToken(''); done(true); }}}, 'Forget token');
  const form = h('form', {class: 'token', novalidate: true},
    h('h2', {id: 'token-title'}, 'ACL token'),
    msg ? h('p', {class: 'msg error', testid: 'token-error'}, msg) : null,
    h('p', null, 'Enter the secret ID of an ACL token that allows this. It is sent with every request and kept for this tab only.'),
    h('label', {for: 'token-input'}, 'Secret ID'), input,
    h('div', {class: 'actions'}, forget,
      h('button', {type: 'button', testid: 'token-cancel', on: {click: () => done(false)}}, 'Cancel'),
      h('button', {type: 'submit', class: 'primary', testid: 'token-submit'}, 'Use token')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const t = input.value.trim();
    if (!t) return input.focus();
    setToken(t);
    done(true);
  });
  fill(dialog, form);
  dialog.addEventListener('close', onClose);
  if (!dialog.open) dialog.showModal();
  input.focus();
  return pending;
}

// tokenButton opens the dialog at the user's request, to enter a token before any
// refusal or to change it; the page then loads again with the new one.
export function tokenButton() {
  return h('button', {type: 'button', class: 'small', testid: 'token-open', title: 'Enter or change the ACL token',
    on: {click: () => askToken('', true).then((ok) => { if (ok) location.reload(); })}}, 'Token');
}
