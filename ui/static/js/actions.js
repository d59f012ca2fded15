// Acting on the fleet: the spawn form (POST /v1/nodes, then GET /v1/node/ID until
// the node runs or fails) and the stop dialog (DELETE /v1/node/ID).

import {h, fill, nodeLink, agentLink, badge} from './dom.js';
import {call, get, sleep, enc} from './api.js';

// spawnForm returns the form and update(agents), which keeps the list of healthy
// agents current without losing the user's choice.
export function spawnForm(signal) {
  const agent = h('select', {name: 'agent', id: 'spawn-agent', required: true});
  const port = h('input', {name: 'port', id: 'spawn-port', type: 'number', min: 1, max: 65535, required: true, inputmode: 'numeric', placeholder: '50100'});
  const name = h('input', {name: 'name', id: 'spawn-name', type: 'text', maxlength: 63, placeholder: 'the node\'s ID', autocomplete: 'off', spellcheck: 'false'});
  const path = h('input', {name: 'storage_path', id: 'spawn-path', type: 'text', placeholder: 'a directory named after the node', autocomplete: 'off', spellcheck: 'false'});
  const mem = h('input', {name: 'memory_limit_mb', id: 'spawn-mem', type: 'number', min: 0, inputmode: 'numeric', placeholder: '512'});
  const submit = h('button', {type: 'submit', testid: 'spawn-submit', class: 'primary'}, 'Spawn');
  const out = h('div', {testid: 'spawn-status', class: 'spawn-status', role: 'status', 'aria-live': 'polite'});
  const field = (label, input, hint) => h('label', {class: 'field', for: input.id}, h('span', null, label), input, hint ? h('small', {class: 'muted'}, hint) : null);
  const form = h('form', {testid: 'spawn-form', class: 'spawn', novalidate: true},
    field('Agent', agent, 'healthy agents only'),
    field('Port', port),
    field('Name', name, 'optional'),
    field('Storage path', path, 'optional'),
    field('Memory limit (MiB)', mem, 'optional; default 512'),
    h('div', {class: 'actions'}, submit),
    out);

  let busy = false;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (busy) return;
    const body = {agent: agent.value, port: Number(port.value)};
    if (!body.agent) return show(out, 'error', 'Choose an agent: spawns go to healthy agents only.');
    if (!port.value || !Number.isInteger(body.port)) return show(out, 'error', 'Give the port of the node\'s gRPC endpoint, 1-65535.');
    if (name.value.trim()) body.name = name.value.trim();
    if (path.value.trim()) body.storage_path = path.value.trim();
    if (mem.value !== '') body.memory_limit_mb = Number(mem.value);
    busy = true;
    submit.disabled = true;
    show(out, 'pending', `Spawning on ${body.agent}, port ${body.port}…`);
    try {
      const {data: node} = await call('POST', '/v1/nodes', {body});
      // Recorded: the same port and name would now be refused.
      port.value = name.value = path.value = '';
      await follow(node, out, signal);
    } catch (err) {
      show(out, 'error', err.message);
    } finally {
      busy = false;
      submit.disabled = false;
    }
  });

  let shown = '';
  function update(agents) {
    const healthy = (agents || []).filter((a) => a.status === 'healthy').map((a) => a.name).sort();
    const key = healthy.join('\n');
    if (key === shown) return;
    shown = key;
    const keep = agent.value;
    fill(agent, healthy.length
      ? healthy.map((n) => h('option', {value: n}, n))
      : h('option', {value: '', disabled: true}, 'no healthy agent'));
    if (healthy.includes(keep)) agent.value = keep;
    else if (healthy.length) agent.value = healthy[0];
  }
  return {el: form, update};
}

function show(out, kind, ...msg) {
  fill(out, h('p', {class: ['msg', kind]}, msg));
  out.dataset.state = kind;
}

// follow polls a node just recorded until it runs or fails, and shows its progress.
async function follow(node, out, signal) {
  const what = () => [nodeLink(node.id, node.name), node.name !== node.id ? ` (${node.id})` : '', ' on ', agentLink(node.agent)];
  const deadline = Date.now() + 120000;
  let errors = 0;
  for (;;) {
    if (node.status === 'running') return show(out, 'ok', '✓ Node ', what(), ' is running', node.pid ? ` (pid ${node.pid})` : '', '.');
    if (node.status === 'failed') return show(out, 'error', '✗ Node ', what(), ' failed: ', node.error || 'no reason given', '.');
    if (node.status === 'stopped') return show(out, 'error', 'Node ', what(), ' stopped before it ran.');
    show(out, 'pending', h('span', {class: 'spinner', 'aria-hidden': 'true'}), 'Node ', what(), ' is ', badge(node.status), '; waiting for its agent to start it…');
    if (Date.now() > deadline) return show(out, 'pending', 'Node ', what(), ' is still ', badge(node.status), ' after 2 minutes; its page shows what happens next.');
    await sleep(500, signal);
    if (signal.aborted) return;
    try {
      node = await get('/v1/node/' + enc(node.id), {signal});
      errors = 0;
    } catch (err) {
      if (++errors > 20) throw err;
    }
  }
}

// The stop dialog: one for the page, opened for a node.
let dialog = null;

export function confirmStop(node, done) {
  if (!dialog) {
    dialog = h('dialog', {class: 'confirm', testid: 'node-stop-dialog', 'aria-labelledby': 'stop-title'});
    document.body.appendChild(dialog);
  }
  const err = h('p', {class: 'msg error', testid: 'node-stop-error', hidden: true});
  const cancel = h('button', {type: 'button', testid: 'node-stop-cancel', on: {click: () => dialog.close()}}, 'Cancel');
  const ok = h('button', {type: 'button', class: 'danger', testid: 'node-stop-confirm'}, 'Stop node');
  ok.addEventListener('click', async () => {
    ok.disabled = cancel.disabled = true;
    err.hidden = true;
    try {
      const {data} = await call('DELETE', '/v1/node/' + enc(node.id));
      dialog.close();
      if (done) done(data);
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
      ok.disabled = cancel.disabled = false;
    }
  });
  fill(dialog,
    h('h2', {id: 'stop-title'}, 'Stop node ', node.name),
    h('p', null, 'Node ', h('strong', null, node.name), node.name !== node.id ? ` (${node.id})` : '', ' on ', h('strong', null, node.agent),
      ' will be stopped: its agent sends the process SIGTERM, then SIGKILL after 5 seconds. It is not restarted.'),
    err,
    h('div', {class: 'actions'}, cancel, ok));
  if (dialog.open) dialog.close();
  dialog.showModal();
  cancel.focus();
}

// stopButton is a node's stop button, kept in step with its status by update(node).
export function stopButton(onStopped) {
  let node = null;
  const b = h('button', {type: 'button', class: 'danger small', testid: 'node-stop'}, 'Stop');
  b.addEventListener('click', () => node && confirmStop(node, onStopped));
  return {
    el: b,
    update(n) {
      node = n;
      const off = n.status === 'stopped' || n.status === 'stopping';
      if (b.disabled !== off) b.disabled = off;
      b.setAttribute('aria-label', 'Stop node ' + n.name);
      b.title = off ? `Node is ${n.status}` : 'Stop this node';
    },
  };
}
