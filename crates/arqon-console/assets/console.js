// ArqonBus admin console (specs/console.md). Plain browser JavaScript, no framework, no build step.
//
// The admin token is entered on the login form, kept in sessionStorage (this tab only) and sent as
// an `Authorization: Bearer` header on every admin API call; it never goes into a URL. Every value
// from the server reaches the page through textContent (never as markup). The current page is read
// again every POLL_MS without a reload; a table is only rewritten when its data changed, so the
// aria-live regions announce changes, not every poll.
'use strict';

const TOKEN_KEY = 'arqon.console.token';
const POLL_MS = 2000;
const PAGES = ['nodes', 'connections', 'rooms', 'policies', 'governance', 'audit'];
const DECISIONS = new Set(['approval', 'rejection', 'enforce', 'catalog_update']);
const NODE_METRICS = [
  ['arqonbus_shield_connections_open', 'Connections open'],
  ['arqonbus_shield_connections_accepted', 'Connections accepted'],
  ['arqonbus_shield_rooms_subscribed', 'Rooms subscribed'],
  ['arqonbus_shield_published', 'Messages published'],
  ['arqonbus_shield_delivered', 'Messages delivered'],
  ['arqonbus_shield_policy_blocked', 'Publishes blocked by policy'],
];

let session = null; // { token, tenant, sub, role }
let timer = null;
let busy = false;

const byId = (id) => document.getElementById(id);

/** An element with text content (never parsed as markup). */
function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function pill(text, kind) {
  return el('span', text, `pill ${kind}`);
}

/** A table row; each cell is a string, a number or a DOM node. */
function row(cells, className) {
  const tr = document.createElement('tr');
  if (className) tr.className = className;
  for (const cell of cells) {
    const td = document.createElement('td');
    if (cell instanceof Node) td.append(cell);
    else if (typeof cell === 'number') { td.textContent = String(cell); td.className = 'num'; }
    else td.textContent = cell ?? '';
    tr.append(td);
  }
  return tr;
}

/** Rewrites a container only when `data` differs from what it shows. */
function render(id, data, build) {
  const target = byId(id);
  const signature = JSON.stringify(data);
  if (target.dataset.signature === signature) return;
  target.dataset.signature = signature;
  target.replaceChildren(...build(data));
}

/** Rows for a tbody, or one row saying there is nothing. */
function rowsOr(id, items, columns, emptyText, toRow) {
  render(id, items, (list) => {
    if (list.length === 0) {
      const td = el('td', emptyText, 'empty');
      td.colSpan = columns;
      const tr = document.createElement('tr');
      tr.append(td);
      return [tr];
    }
    return list.map(toRow);
  });
}

function when(atUs) {
  if (!atUs) return '';
  return `${new Date(atUs / 1000).toISOString().replace('T', ' ').slice(0, 19)} UTC`;
}

function short(hash) {
  const code = el('code', `${String(hash).slice(0, 12)}…`, 'hash');
  code.title = hash;
  return code;
}

function metricTiles(id, tiles) {
  render(id, tiles, (list) => list.map(([label, value]) => {
    const box = document.createElement('div');
    box.append(el('dt', label), el('dd', value));
    return box;
  }));
}

class Refused extends Error {}

/** One admin API call with the session's token; a 401 ends the session. */
async function api(path) {
  const response = await fetch(path, {
    headers: { Authorization: `Bearer ${session.token}`, Accept: 'application/json' },
    cache: 'no-store',
    credentials: 'omit',
  });
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (response.status === 401) {
    logout('The node no longer accepts this token (expired or revoked). Log in again.');
    throw new Refused('401');
  }
  return { status: response.status, body };
}

function tenantPath(rest) {
  return `/admin/v1/tenants/${encodeURIComponent(session.tenant)}/${rest}`;
}

async function probe(path) {
  try {
    const response = await fetch(path, { cache: 'no-store', credentials: 'omit' });
    return { ok: response.ok, status: response.status, text: await response.text() };
  } catch {
    return { ok: false, status: 0, text: '' };
  }
}

/** Sums every sample of each wanted metric in Prometheus text. */
function metricSums(text, names) {
  const sums = new Map(names.map((name) => [name, null]));
  for (const line of text.split('\n')) {
    const match = /^([a-z_:][a-z0-9_:]*)(\{[^}]*\})?\s+(\S+)/i.exec(line);
    if (match && sums.has(match[1])) sums.set(match[1], (sums.get(match[1]) ?? 0) + Number(match[3]));
  }
  return sums;
}

// ---- pages ----------------------------------------------------------------------------------

async function showNodes() {
  const [node, health, ready, metrics] = await Promise.all([
    api('/admin/v1/node'), probe('/healthz'), probe('/readyz'), probe('/metrics'),
  ]);
  const info = node.body ?? {};
  rowsOr('nodes-rows', [{ id: info.id, health: health.ok, ready: ready.ok, spine: info.spine?.connected }], 4, '', (n) => row([
    el('strong', n.id ?? '?'),
    pill(n.health ? 'healthy' : 'unhealthy', n.health ? 'ok' : 'bad'),
    pill(n.ready ? 'ready' : 'not ready', n.ready ? 'ok' : 'bad'),
    pill(n.spine ? 'connected' : 'disconnected', n.spine ? 'ok' : 'bad'),
  ]));
  const sums = metricSums(metrics.text, NODE_METRICS.map(([name]) => name));
  metricTiles('node-metrics', NODE_METRICS.map(([name, label]) => [label, sums.get(name) ?? 'n/a']));
}

async function showConnections() {
  const { body } = await api(tenantPath('connections'));
  render('connections-open', body.open, (open) => [document.createTextNode(String(open))]);
  rowsOr('connections-rows', body.users, 2, 'No open connections.', (u) => row([u.user, u.connections]));
}

function presenceList(members) {
  const list = el('ul', null, 'members');
  for (const m of members) {
    const meta = m.meta ? ` ${JSON.stringify(m.meta)}` : '';
    list.append(el('li', `${m.user} (session ${m.session} on ${m.node})${meta}`));
  }
  return list;
}

async function showRooms() {
  const { body } = await api(tenantPath('rooms'));
  rowsOr('rooms-rows', body.rooms, 3, 'No room has members on this node.', (r) => row([
    el('strong', r.room), r.local_members, r.members.length ? presenceList(r.members) : el('span', 'nobody', 'empty'),
  ]));
}

async function showPolicies() {
  const { status, body } = await api(tenantPath('policies'));
  if (status !== 200) {
    const why = status === 403 ? 'Policy chains are shown to role admin only.' : (body?.error ?? `HTTP ${status}`);
    rowsOr('chains-rows', [], 4, why, () => null);
    rowsOr('history-rows', [], 5, why, () => null);
    return;
  }
  rowsOr('chains-rows', body.chains, 4, 'No chain in force: every message is allowed.', (c) => {
    const modules = el('ul', null, 'modules');
    for (const m of c.modules) {
      const item = el('li', `${m.name} `);
      item.append(short(m.sha256));
      if (m.failing_with) item.append(' ', pill(`fails closed: ${m.failing_with}`, 'bad'));
      modules.append(item);
    }
    const blocked = c.blocked === null ? el('span', 'not shown (judges every tenant)', 'empty') : c.blocked;
    return row([el('strong', c.scope), c.generation, c.modules.length ? modules : el('span', 'empty chain', 'empty'), blocked]);
  });
  rowsOr('history-rows', [...body.history].reverse(), 5, 'No deploy since the node started.', (d) => row([
    when(d.at_us), d.by, d.scope, `${d.module} (${String(d.sha256).slice(0, 12)}…)`,
    pill(d.outcome === 'ok' ? `deployed, generation ${d.generation}` : `refused: ${d.outcome}`, d.outcome === 'ok' ? 'ok' : 'bad'),
  ]));
}

function percentCell(rollout) {
  const percent = rollout.percent_bp / 100;
  const cell = document.createElement('span');
  const bar = document.createElement('progress');
  bar.max = 100;
  bar.value = percent;
  bar.setAttribute('aria-label', `${rollout.proposal_id} at ${percent} percent`);
  cell.append(bar, el('strong', `${percent.toFixed(2)} %`));
  return cell;
}

async function showGovernance() {
  const [state, audit] = await Promise.all([api(tenantPath('governance')), api(tenantPath('audit'))]);
  if (state.status !== 200) {
    metricTiles('gov-state', [['Governance', state.body?.error ?? `HTTP ${state.status}`]]);
    return;
  }
  const gov = state.body;
  metricTiles('gov-state', [
    ['Adaptation', gov.paused ? 'paused' : 'running'],
    ['Catalog version', gov.catalog_version],
    ['Pending proposals', gov.pending.length],
    ['Rollouts in flight', gov.rollouts.length],
  ]);
  rowsOr('rollouts-rows', gov.rollouts, 3, 'No rollout in flight.', (r) => row([el('strong', r.proposal_id), r.phase, percentCell(r)]));
  rowsOr('pending-rows', gov.pending, 6, 'No proposal is waiting.', (p) => {
    const change = [p.variant_id !== null && p.variant_id !== undefined ? `variant ${p.variant_id}` : '',
      ...Object.entries(p.params ?? {}).map(([k, v]) => `${k}=${v}`)].filter(Boolean).join(', ');
    return row([el('strong', p.id), p.from, change, p.reason, p.confidence, short(p.digest)]);
  });
  const decisions = (audit.body?.records ?? []).filter((r) => DECISIONS.has(r.record.kind)).reverse();
  rowsOr('decisions-rows', decisions, 5, 'No decision recorded yet.', (r) => row([
    when(r.record.at_us), r.record.kind, `${r.record.actor} (${r.record.role})`, r.record.subject, r.record.outcome,
  ]));
}

async function showAudit() {
  const { status, body } = await api(tenantPath('audit'));
  const verdict = byId('audit-verdict');
  if (status !== 200) {
    render('audit-verdict', status, () => [document.createTextNode(body?.error ?? `HTTP ${status}`)]);
    return;
  }
  const check = body.verification;
  const bad = check.ok ? Infinity : check.first_bad_seq;
  verdict.className = `verdict ${check.ok ? 'ok' : 'bad'}`;
  render('audit-verdict', check, (c) => [document.createTextNode(c.ok
    ? `Chain verified: all ${c.records} records intact (every hash and every link checks).`
    : `Chain BROKEN at record #${c.first_bad_seq}: ${c.reason}. That record was altered, removed or reordered; records from #${c.first_bad_seq} on cannot be trusted.`)]);
  rowsOr('audit-rows', body.records, 8, 'The audit log is empty.', (r) => {
    const state = r.seq < bad ? ['verified', 'ok', ''] : r.seq === bad ? ['TAMPERED', 'bad', 'tampered'] : ['unverified', 'unknown', 'unverified'];
    return row([r.seq, when(r.record.at_us), r.record.kind, `${r.record.actor} (${r.record.role})`, r.record.subject,
      r.record.outcome, short(r.hash), pill(state[0], state[1])], state[2]);
  });
}

const SHOW = { nodes: showNodes, connections: showConnections, rooms: showRooms, policies: showPolicies, governance: showGovernance, audit: showAudit };

function currentPage() {
  const name = location.hash.replace(/^#/, '');
  return PAGES.includes(name) ? name : 'nodes';
}

async function refresh() {
  if (!session || busy) return;
  busy = true;
  const page = currentPage();
  try {
    await SHOW[page]();
    byId('status').textContent = `Updated ${new Date().toLocaleTimeString()}; refreshes every ${POLL_MS / 1000} s.`;
    document.body.dataset.refreshed = String(Date.now());
  } catch (error) {
    if (!(error instanceof Refused)) byId('status').textContent = `Could not reach the node: ${error.message}`;
  } finally {
    busy = false;
  }
}

function showPage() {
  const page = currentPage();
  for (const name of PAGES) {
    byId(`page-${name}`).hidden = name !== page;
    const link = document.querySelector(`nav a[data-page="${name}"]`);
    if (name === page) link.setAttribute('aria-current', 'page'); else link.removeAttribute('aria-current');
  }
  refresh();
}

// ---- session --------------------------------------------------------------------------------

function enter(token, who) {
  session = { token, tenant: who.tenant, sub: who.sub, role: who.role };
  sessionStorage.setItem(TOKEN_KEY, token);
  byId('token').value = '';
  byId('login').hidden = true;
  byId('app').hidden = false;
  byId('logout').hidden = false;
  const whoLine = byId('who');
  whoLine.hidden = false;
  whoLine.textContent = `${who.sub} · ${who.role} of tenant ${who.tenant}`;
  for (const span of document.querySelectorAll('.tenant')) span.textContent = who.tenant;
  showPage();
  timer = setInterval(refresh, POLL_MS);
}

function logout(message) {
  session = null;
  clearInterval(timer);
  sessionStorage.removeItem(TOKEN_KEY);
  // Nothing of the last session stays in the page, not even on hidden pages.
  for (const target of document.querySelectorAll('[data-signature]')) {
    delete target.dataset.signature;
    target.replaceChildren();
  }
  byId('audit-verdict').className = 'verdict';
  byId('app').hidden = true;
  byId('logout').hidden = true;
  byId('who').hidden = true;
  byId('login').hidden = false;
  byId('login-error').textContent = message ?? '';
  byId('token').focus();
}

async function login(token) {
  let response;
  try {
    response = await fetch('/admin/v1/whoami', { headers: { Authorization: `Bearer ${token}` }, cache: 'no-store', credentials: 'omit' });
  } catch (error) {
    return `Cannot reach the node: ${error.message}`;
  }
  if (response.status === 200) {
    enter(token, await response.json());
    return '';
  }
  if (response.status === 401) return 'Token refused: it is not a valid token for this node (check it is complete and not expired).';
  if (response.status === 403) return 'This token may not use the console: it needs role admin or operator.';
  if (response.status === 404) return 'This node does not serve the admin API ([admin] enabled = false).';
  return `Login failed: HTTP ${response.status}`;
}

document.addEventListener('DOMContentLoaded', () => {
  byId('login-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = byId('token').value.trim();
    byId('login-error').textContent = token ? '' : 'Paste a token first.';
    if (token) byId('login-error').textContent = await login(token);
  });
  byId('logout').addEventListener('click', () => logout('Logged out.'));
  window.addEventListener('hashchange', showPage);
  const kept = sessionStorage.getItem(TOKEN_KEY);
  if (kept) login(kept).then((error) => { if (error) logout(error); });
  else byId('token').focus();
});
