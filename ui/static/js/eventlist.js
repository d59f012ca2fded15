// A table of events, newest first, that never shows an event twice: events are
// keyed by seq, whether they come from a listing, the stream or both. Gaps the
// stream reports show as marker rows in their place.

import {h, agentLink, nodeLink, eventLink, badge, fmtTime, isoTitle} from './dom.js';
import {severityOf} from './api.js';

export class EventList {
  // opts: testid (of the table, default "events"), caption, empty (text while there
  // is no event), columns: which of agent and node to show (default both).
  constructor(opts = {}) {
    this.rows = new Map(); // seq -> tr
    this.gaps = new Map(); // "seq/retrying" -> tr
    this.showAgent = opts.agent !== false;
    this.showNode = opts.node !== false;
    this.tbody = h('tbody');
    const heads = ['Seq', 'Time', 'Severity', 'Type', this.showAgent && 'Agent', this.showNode && 'Node', 'Description'].filter(Boolean);
    this.table = h('table', {testid: opts.testid || 'events', class: 'events'},
      opts.caption ? h('caption', {class: 'sr'}, opts.caption) : null,
      h('thead', null, h('tr', null, heads.map((x) => h('th', {scope: 'col'}, x)))),
      this.tbody);
    this.empty = h('p', {class: 'muted'}, opts.empty || 'No events.');
    this.el = h('div', {class: 'scroll'}, this.table, this.empty);
  }

  get size() { return this.rows.size; }

  has(seq) { return this.rows.has(seq); }

  // add inserts events not shown yet, each in its place by seq.
  add(events) {
    for (const e of events) {
      if (!e || typeof e.seq !== 'number' || this.rows.has(e.seq)) continue;
      const tr = eventRow(e, this.showAgent, this.showNode);
      this.rows.set(e.seq, tr);
      this.insert(tr, e.seq);
    }
    this.empty.hidden = this.tbody.firstChild != null;
  }

  // gap shows where the stream could not deliver an event: a marker row, once per
  // seq and kind (retrying or skipped).
  gap(g) {
    const key = g.seq + '/' + !!g.retrying;
    if (this.gaps.has(key)) return;
    const text = g.retrying
      ? `Event #${g.seq} is delayed: ${g.error}. The server retries; it follows once the event store answers.`
      : `Event #${g.seq} was skipped: ${g.error}.`;
    const cols = this.table.tHead.rows[0].cells.length;
    const tr = h('tr', {testid: 'event-gap', class: 'gap', data: {seq: g.seq, retrying: !!g.retrying}},
      h('td', {colspan: cols}, '⚠ Gap: ', text));
    this.gaps.set(key, tr);
    // Above the event of the same seq, if it comes.
    this.insert(tr, g.seq + 0.5);
    this.empty.hidden = true;
  }

  insert(tr, seq) {
    tr._seq = seq;
    let at = this.tbody.firstChild;
    while (at && at._seq > seq) at = at.nextSibling;
    this.tbody.insertBefore(tr, at);
  }

  clear() {
    this.rows.clear();
    this.gaps.clear();
    this.tbody.replaceChildren();
    this.empty.hidden = false;
  }
}

export function eventRow(e, showAgent = true, showNode = true) {
  const sev = severityOf(e.type);
  return h('tr', {testid: 'event-row', class: 'sev-' + sev, data: {seq: e.seq, type: e.type, severity: sev}},
    h('td', null, eventLink(e.seq)),
    h('td', {class: 'nowrap', title: isoTitle(e.timestamp)}, fmtTime(e.timestamp)),
    h('td', null, badge(sev)),
    h('td', {class: 'type'}, e.type),
    showAgent && h('td', {class: 'nowrap'}, agentLink(e.agent_id)),
    showNode && h('td', {class: 'nowrap'}, nodeLink(e.node_id, e.node_name)),
    h('td', {class: 'desc'}, e.description));
}

// eventLine is one event on one line, for chains: "#12 node_crashed: Node … crashed".
export function eventLine(e, current) {
  const sev = severityOf(e.type);
  return h('span', {class: ['line', 'sev-' + sev, current && 'current']},
    current ? h('strong', null, '#' + e.seq) : eventLink(e.seq), ' ', badge(sev), ' ',
    h('span', {class: 'type'}, e.type), ' ', h('span', {class: 'muted'}, fmtTime(e.timestamp)), ' ',
    h('span', {class: 'desc'}, e.description));
}

// chain shows an event's causes and effects as a nested list: the root cause first,
// each effect under its cause, the event itself marked.
export function chain(anchor, causes, effects) {
  const root = h('ul', {class: 'chain'});
  let list = root;
  for (const c of [...(causes || [])].reverse()) {
    const ul = h('ul');
    list.appendChild(h('li', null, eventLine(c), ul));
    list = ul;
  }
  const eff = h('ul');
  list.appendChild(h('li', {class: 'anchor'}, eventLine(anchor, true), (effects && effects.length) ? eff : null));
  // Effects are transitive in some answers: nest each under the effect it names.
  const items = new Map([[anchor.seq, eff]]);
  for (const e of effects || []) {
    const ul = h('ul');
    const parent = items.get(e.caused_by) || eff;
    parent.appendChild(h('li', null, eventLine(e), ul));
    items.set(e.seq, ul);
  }
  // Empty nested lists are left out.
  root.querySelectorAll('ul').forEach((ul) => { if (!ul.firstChild) ul.remove(); });
  return root;
}
