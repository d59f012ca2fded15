// Requests to the HTTP API, and what the UI learns from them: whether the server and
// a leader can be reached (the banner), the server's clock, the event types, and the
// event stream that every view shares.

export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status; // 0: the server could not be reached
  }
}

// Problems that the banner shows, by source; each source clears its own.
const problems = new Map();
const problemListeners = new Set();

export function setProblem(source, msg) {
  if (problems.get(source) === msg) return;
  problems.set(source, msg);
  problemListeners.forEach((fn) => fn(problems));
}

export function clearProblem(source) {
  if (!problems.delete(source)) return;
  problemListeners.forEach((fn) => fn(problems));
}

export function onProblems(fn) {
  problemListeners.add(fn);
  fn(problems);
}

// The server's clock, from the Date header of its answers, so that "3s ago" is
// right on a browser whose clock is off. The header counts whole seconds: only a
// skew over 2 s is believed.
let skew = 0;
export const serverNow = () => Date.now() + skew;

function learnClock(res) {
  const d = Date.parse(res.headers.get('Date') || '');
  if (isNaN(d)) return;
  const diff = d - Date.now();
  skew = Math.abs(diff) > 2000 ? diff : 0;
}

// call sends a request and returns {data, res}. An answer other than 2xx throws an
// APIError with the server's error text as it is. A server that cannot be reached,
// or that has no leader, raises the banner; the status poll (main.js) lowers it.
export async function call(method, path, {body, signal, timeout = 15000} = {}) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new DOMException('timed out after ' + timeout / 1000 + 's', 'TimeoutError')), timeout);
  const abort = () => ctl.abort(signal.reason);
  if (signal) {
    if (signal.aborted) abort();
    signal.addEventListener('abort', abort);
  }
  let res;
  try {
    const init = {method, signal: ctl.signal, cache: 'no-store', headers: {Accept: 'application/json'}};
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    }
    res = await fetch(path, init);
  } catch (e) {
    if (signal && signal.aborted) throw e;
    const msg = e && e.name === 'TimeoutError' ? e.message : 'the server cannot be reached';
    setProblem('server', `No answer from ${location.host}: ${msg}. Retrying…`);
    throw new APIError(0, `${method} ${path}: ${msg}`);
  } finally {
    clearTimeout(timer);
    if (signal) signal.removeEventListener('abort', abort);
  }
  clearProblem('server');
  learnClock(res);
  let data = null;
  const text = await res.text();
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const msg = (data && typeof data.error === 'string' && data.error) || text.trim() || res.statusText;
    if (res.status === 503) setProblem('leader', `No leader: ${msg}. The servers may be electing one, or have lost their quorum; retrying…`);
    throw new APIError(res.status, msg);
  }
  return {data, res};
}

export async function get(path, opts) {
  return (await call('GET', path, opts)).data;
}

// query builds "path?k=v&…" from the parameters that are not empty.
export function query(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== '' && v != null) q.set(k, String(v));
  }
  const qs = q.toString();
  return qs ? path + '?' + qs : path;
}

export const enc = encodeURIComponent;

// Event types and their severities, from GET /v1/events/types.
export const SEVERITIES = ['info', 'warning', 'error', 'critical'];
let types = [];
const severityByType = new Map();

export async function loadTypes() {
  for (;;) {
    try {
      types = await get('/v1/events/types');
      types.forEach((t) => severityByType.set(t.type, t.severity));
      return types;
    } catch (e) {
      await sleep(2000);
    }
  }
}

export const eventTypes = () => types;
export const severityOf = (type) => severityByType.get(type) || 'info';

export const sleep = (ms, signal) => new Promise((resolve) => {
  const t = setTimeout(resolve, ms);
  if (signal) signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, {once: true});
});

// poll calls fn every interval ms (from the end of one call to the start of the
// next, less the time it took) until signal aborts.
export async function poll(signal, interval, fn) {
  while (!signal.aborted) {
    const start = Date.now();
    try {
      await fn();
    } catch (e) {
      // fn shows its own errors; the loop goes on.
    }
    await sleep(Math.max(100, interval - (Date.now() - start)), signal);
  }
}

// The event stream: one EventSource for the page, on GET /v1/event/stream. It starts
// with the next new event; after a dropped connection the browser resumes it with
// Last-Event-ID, and when the browser gives up (an error answer), it is opened again
// after the last seq seen. Listeners get {event} or {gap}.
const streamListeners = new Set();
const stateListeners = new Set();
let source = null;
let lastSeq = 0;
let streamState = 'connecting';

export function onStream(fn) {
  streamListeners.add(fn);
  return () => streamListeners.delete(fn);
}

export function onStreamState(fn) {
  stateListeners.add(fn);
  fn(streamState);
}

function setStreamState(st) {
  streamState = st;
  stateListeners.forEach((fn) => fn(st));
}

// stopStream closes the stream, which startStream resumes after the last seq seen.
// A tab that is not shown lets its connection go: browsers allow only six to a
// server over HTTP/1.1, and a stream holds one for as long as it is open.
export function stopStream() {
  if (!source) return;
  source.close();
  source = null;
  if (!lastSeq && lastStatus) lastSeq = lastStatus.events.last_seq;
  setStreamState('paused');
}

let hiddenTimer = 0;
document.addEventListener('visibilitychange', () => {
  clearTimeout(hiddenTimer);
  if (document.hidden) hiddenTimer = setTimeout(stopStream, 30000);
  else if (!source && streamState === 'paused') startStream();
});
// A page kept in the back-forward cache keeps no connection either.
window.addEventListener('pagehide', stopStream);
window.addEventListener('pageshow', (e) => { if (e.persisted && !source) startStream(); });

export function startStream() {
  if (source) source.close();
  const url = lastSeq > 0 ? '/v1/event/stream?since_seq=' + lastSeq : '/v1/event/stream';
  const es = new EventSource(url);
  source = es;
  es.addEventListener('open', () => setStreamState('live'));
  es.addEventListener('error', () => {
    if (es !== source) return;
    if (es.readyState === EventSource.CLOSED) {
      setStreamState('reconnecting');
      setTimeout(() => { if (es === source) startStream(); }, 2000);
    } else {
      setStreamState('reconnecting');
    }
  });
  const onEvent = (m) => {
    let ev;
    try {
      ev = JSON.parse(m.data);
    } catch {
      return;
    }
    if (typeof ev.seq !== 'number') return;
    if (ev.seq > lastSeq) lastSeq = ev.seq;
    streamListeners.forEach((fn) => fn({event: ev}));
  };
  for (const t of types) es.addEventListener(t.type, onEvent);
  es.addEventListener('gap', (m) => {
    let g;
    try {
      g = JSON.parse(m.data);
    } catch {
      return;
    }
    if (!g.retrying && g.seq > lastSeq) lastSeq = g.seq;
    streamListeners.forEach((fn) => fn({gap: g}));
  });
}

// The status poll (main.js runs it every second): GET /v1/status is answered by the
// leader, so its success says that the server and a leader answer, and the banner
// goes. Views that show the status listen with onStatus.
const statusListeners = new Set();
let lastStatus = null;

export function onStatus(fn) {
  statusListeners.add(fn);
  if (lastStatus) fn(lastStatus);
  return () => statusListeners.delete(fn);
}

export async function pollStatus() {
  try {
    lastStatus = await get('/v1/status', {timeout: 8000});
    clearProblem('leader');
    clearProblem('status');
    statusListeners.forEach((fn) => fn(lastStatus));
  } catch (e) {
    if (e instanceof APIError && e.status !== 0 && e.status !== 503) setProblem('status', 'GET /v1/status: ' + e.message);
    statusListeners.forEach((fn) => fn(null, e));
  }
}
