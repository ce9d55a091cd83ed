// The Kubist dashboard's page: it draws the pictures the server pushes
// (server-sent events on api/stream) and sends the release actions.
'use strict';

const state = { snap: null, project: '', namespace: '' };
// Every time a release's chart gained or lost a step, and when: read by
// the end-to-end test to time a step to the chart showing it.
window.kubistRenders = [];

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function time(t) {
  return new Date(t).toLocaleTimeString([], { hour12: false });
}

// The tree, filtered: a node stays when it matches the filters or holds
// one that does.
function visible(node, inProject) {
  const project = state.project;
  if (project && node.kind === 'Project' && node.name !== project) return null;
  if (project && node.kind !== 'Project' && !inProject) return null;
  const children = (node.children || []).map((c) => visible(c, inProject || node.kind === 'Project')).filter(Boolean);
  const ns = state.namespace;
  const matches = !ns || node.namespace === ns;
  if (!matches && children.length === 0) return null;
  if (ns && !node.namespace && children.length === 0 && node.kind !== 'Project') return null;
  return { ...node, children };
}

function drawNode(node) {
  if (!node.name) {
    return el('li', {}, el('div', { class: 'node muted' }, node.kind), drawList(node.children));
  }
  const full = node.namespace ? node.namespace + '/' + node.name : node.name;
  const name = node.release
    ? el('a', { class: 'name', href: '#' + cssId(node.release) }, full)
    : el('span', { class: 'name' }, full);
  const ready = el('span', { class: 'badge ' + node.ready, title: node.reason ? node.reason + ': ' + node.message : '' }, 'Ready ' + node.ready);
  return el('li', { 'data-kind': node.kind, 'data-name': node.name },
    el('div', { class: 'node' }, el('span', { class: 'kind' }, node.kind), name, ready,
      node.executor ? el('span', { class: 'detail' }, node.executor) : null,
      node.detail ? el('span', { class: 'detail' }, node.detail) : null),
    drawList(node.children));
}

function drawList(nodes) {
  if (!nodes || nodes.length === 0) return null;
  return el('ul', {}, nodes.map(drawNode));
}

function cssId(id) {
  return 'release-' + id.replace(/[^A-Za-z0-9_-]/g, '_');
}

function drawTree(snap) {
  const nav = document.getElementById('tree');
  const roots = snap.tree.map((n) => visible(n, false)).filter(Boolean);
  nav.replaceChildren(roots.length ? drawList(roots) : el('p', { class: 'muted' }, snap.synced ? 'No Kubist resources.' : 'Reading the cluster…'));
}

function fillSelect(id, values, current) {
  const select = document.getElementById(id);
  const want = ['', ...values];
  const have = [...select.options].map((o) => o.value);
  if (want.join('\n') !== have.join('\n')) {
    select.replaceChildren(...want.map((v) => el('option', { value: v }, v || 'all')));
  }
  select.value = want.includes(current) ? current : '';
}

async function act(release, action, extra) {
  const card = document.getElementById(cssId(release.id));
  const result = card.querySelector('.result');
  result.className = 'result pending';
  result.textContent = action + '…';
  try {
    const res = await fetch('api/actions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Kubist-Dashboard': '1' },
      body: JSON.stringify({ namespace: release.namespace, kind: release.kind, name: release.name, action, ...extra }),
    });
    const answer = await res.json();
    result.className = 'result ' + (res.ok ? 'ok' : 'refused');
    result.textContent = answer.message;
  } catch (err) {
    result.className = 'result refused';
    result.textContent = 'The dashboard did not answer: ' + err.message;
  }
}

function newCard(r) {
  const card = el('article', { class: 'release', id: cssId(r.id), 'data-release': r.id });
  const weight = el('input', { type: 'number', min: '0', max: '100', value: '100', class: 'approve-weight', 'aria-label': 'approve up to weight' });
  const winner = el('select', { class: 'winner', 'aria-label': 'winner' });
  card.winner = winner;
  const buttons = el('div', { class: 'actions' });
  for (const a of r.actions) {
    const extra = () => {
      if (a.name === 'Approve') return { weight: Number(weight.value) };
      if (a.name === 'Conclude') return { winner: winner.value };
      return {};
    };
    buttons.append(el('button', { type: 'button', 'data-action': a.name, onclick: () => act(card.release, a.name, extra()) }, a.name));
    if (a.name === 'Approve') buttons.append(weight);
    if (a.name === 'Conclude') buttons.append(winner);
  }
  card.append(el('h2'), el('dl', { class: 'facts' }), el('div', { class: 'chart-box' }), buttons,
    el('div', { class: 'result', role: 'status' }),
    el('details', { class: 'steps', open: true }, el('summary', {}, 'History'), el('div')),
    el('details', { class: 'events', open: true }, el('summary', {}, 'Events'), el('div')));
  return card;
}

function facts(r) {
  const rows = [['Weights', r.weights]];
  if (r.served) rows.push(['Served', r.served]);
  if (r.approved !== undefined && r.approved !== null) rows.push(['Approved', 'up to ' + r.approved + '%']);
  rows.push(['Policies', r.policies.join(' → ') || '-']);
  rows.push(['Gates', (r.gates || []).join('; ') || 'none waiting']);
  for (const c of r.conditions || []) {
    if (c.type !== 'Ready') continue;
    rows.push(['Ready', c.status + (c.message ? ' — ' + c.message : '')]);
  }
  return rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', { 'data-fact': k.toLowerCase() }, v)]);
}

function table(head, rows) {
  if (rows.length === 0) return el('p', { class: 'muted' }, 'none');
  return el('table', {}, el('thead', {}, el('tr', {}, head.map((h) => el('th', {}, h)))),
    el('tbody', {}, rows.map((r) => el('tr', { class: r.class || '' }, r.cells.map((c) => el('td', {}, c))))));
}

function updateCard(card, r) {
  card.release = r;
  const h2 = card.querySelector('h2');
  h2.replaceChildren(el('span', { class: 'kind' }, r.kind), r.namespace + '/' + r.name, el('span', { class: 'badge phase ' + r.phase }, r.phase));
  card.querySelector('.facts').replaceChildren(...facts(r));
  const box = card.querySelector('.chart-box');
  if (box.dataset.chart !== r.chart) {
    // Drawn by the server from the release's status, every text in it escaped.
    box.innerHTML = r.chart;
    box.dataset.chart = r.chart;
    const points = r.steps.length;
    if (Number(card.dataset.points || -1) !== points) {
      card.dataset.points = String(points);
      window.kubistRenders.push({ id: r.id, points, at: Date.now() });
    }
  }
  for (const a of r.actions) {
    const button = card.querySelector('button[data-action="' + a.name + '"]');
    button.disabled = Boolean(a.refused);
    button.title = a.refused || a.name + ' ' + r.name;
  }
  const winner = card.winner;
  if (winner.options.length !== r.subsets.length) {
    winner.replaceChildren(...r.subsets.map((s) => el('option', { value: s }, s)));
  }
  const steps = r.steps.slice(-12).reverse();
  card.querySelector('.steps > div').replaceChildren(table(['time', 'weights', 'phase', 'by', 'requests', 'error rate', 'p99', 'message'],
    steps.map((s) => ({ cells: [time(s.time), s.weights, s.phase || '-', s.by, s.requests || '-', s.errorRate || '-', s.p99 || '-', s.message || ''] }))));
  const events = (r.events || []).slice().reverse();
  card.querySelector('.events > div').replaceChildren(table(['time', 'type', 'reason', 'note'],
    events.map((e) => ({ class: e.type, cells: [time(e.time), e.type, e.reason, e.note + (e.count > 1 ? ' (x' + e.count + ')' : '')] }))));
}

function drawReleases(snap) {
  const section = document.getElementById('releases');
  const shown = snap.releases.filter((r) => (!state.project || r.project === state.project) && (!state.namespace || r.namespace === state.namespace));
  const keep = new Set(shown.map((r) => cssId(r.id)));
  for (const card of [...section.children]) {
    if (!keep.has(card.id)) card.remove();
  }
  if (shown.length === 0) {
    section.replaceChildren(el('p', { class: 'muted', id: 'no-releases' }, 'No CanaryRelease or Experiment here.'));
    return;
  }
  document.getElementById('no-releases')?.remove();
  shown.forEach((r, i) => {
    let card = document.getElementById(cssId(r.id));
    if (!card) card = newCard(r);
    if (section.children[i] !== card) section.insertBefore(card, section.children[i] || null);
    updateCard(card, r);
  });
}

// A Route's card: what it is releasing, its stable subsets and the
// releases that ended on it, as kubist get route lists them.
function drawRoutes(snap) {
  const section = document.getElementById('routes');
  const shown = snap.routes.filter((r) => (!state.project || r.project === state.project) && (!state.namespace || r.namespace === state.namespace));
  const rows = (t) => table(t.head.map((h) => h.toLowerCase()), (t.rows || []).map((cells) => ({ cells })));
  const keep = new Set(shown.map((r) => cssId(r.id)));
  for (const card of [...section.children]) {
    if (!keep.has(card.id)) card.remove();
  }
  shown.forEach((r, i) => {
    let card = document.getElementById(cssId(r.id));
    if (!card) {
      card = el('article', { class: 'route', id: cssId(r.id), 'data-route': r.id },
        el('h2', {}, el('span', { class: 'kind' }, 'Route'), r.namespace + '/' + r.name), el('dl', { class: 'facts' }),
        el('details', { class: 'stable', open: true }, el('summary', {}, 'Stable'), el('div')),
        el('details', { class: 'history', open: true }, el('summary', {}, 'Releases'), el('div')));
    }
    if (section.children[i] !== card) section.insertBefore(card, section.children[i] || null);
    card.querySelector('.facts').replaceChildren(el('dt', {}, 'Releasing'), el('dd', { 'data-fact': 'releasing' }, r.releasing));
    card.querySelector('.stable > div').replaceChildren(rows(r.stable));
    card.querySelector('.history > div').replaceChildren(rows(r.releases));
  });
}

// The plans: one card each, its waves as lanes, each VirtualCluster in
// its lane with its releases' charts (the releases' own cards have them).
function drawPlans(snap) {
  const section = document.getElementById('plans');
  const shown = (snap.plans || []).filter((p) => !state.project || p.project === state.project);
  const byId = new Map(snap.releases.map((r) => [r.id, r]));
  const rows = (t) => table(t.head.map((h) => h.toLowerCase()), (t.rows || []).map((cells) => ({ cells })));
  // The answer to the last action stays across redraws.
  const results = new Map([...section.querySelectorAll('article.plan')].map((a) => [a.id, a.querySelector('.result')]));
  const result = (p) => results.get(cssId(p.id)) || el('div', { class: 'result', role: 'status' });
  section.replaceChildren(...shown.map((p) => el('article', { class: 'plan', id: cssId(p.id), 'data-plan': p.id },
    el('h2', {}, el('span', { class: 'kind' }, 'ReleasePlan'), p.name, el('span', { class: 'badge phase ' + p.phase }, p.phase || 'Pending')),
    el('dl', { class: 'facts' }, el('dt', {}, 'Subset'), el('dd', { 'data-fact': 'subset' }, p.subset || '-'),
      el('dt', {}, 'Progress'), el('dd', { 'data-fact': 'progress' }, p.summary || '-')),
    el('div', { class: 'actions' }, (p.actions || []).map((a) => el('button', {
      type: 'button', 'data-action': a.name, disabled: !!a.refused, title: a.refused || '',
      onclick: () => act(p, a.name, {}),
    }, a.name === 'Promote' ? 'Promote wave' : a.name))),
    result(p),
    el('div', { class: 'lanes' }, p.lanes.map((l) => el('section', { class: 'lane', 'data-wave': l.name, 'data-phase': l.phase },
      el('h3', {}, l.name, el('span', { class: 'badge phase ' + l.phase }, l.phase)),
      el('p', { class: 'muted' }, l.started ? 'started ' + time(l.started) + (l.promoted ? ', promoted ' + time(l.promoted) : '') : 'not started'),
      l.members.map((m) => el('div', { class: 'member', 'data-virtualcluster': m.virtualCluster },
        el('strong', {}, m.virtualCluster), ' on ', m.cluster, ' ', el('span', { class: 'badge phase ' + m.phase }, m.phase),
        (m.problems || []).map((pr) => el('p', { class: 'muted' }, pr)),
        m.releases.map((id) => {
          const r = byId.get(id);
          if (!r) return el('p', { class: 'muted' }, id.split('/').pop());
          const box = el('div', { class: 'chart-box', 'data-release': id });
          // Drawn by the server from the release's status, every text in it escaped.
          box.innerHTML = r.chart;
          return el('div', {}, el('p', {}, r.name + ' ', el('span', { class: 'badge phase ' + r.phase }, r.phase), ' ' + r.weights), box);
        })))))),
    el('details', { class: 'metrics', open: true }, el('summary', {}, 'Metrics per wave'), rows(p.metrics)),
    el('details', { class: 'history' }, el('summary', {}, 'History'), rows(p.history)))));
}

function render() {
  const snap = state.snap;
  if (!snap) return;
  fillSelect('project', snap.projects, state.project);
  fillSelect('namespace', snap.namespaces, state.namespace);
  const problems = document.getElementById('problems');
  problems.hidden = !(snap.problems && snap.problems.length);
  problems.replaceChildren(...(snap.problems || []).map((p) => el('p', {}, p)));
  drawTree(snap);
  drawPlans(snap);
  drawReleases(snap);
  drawRoutes(snap);
  document.body.dataset.snapshot = snap.time;
}

function connect() {
  const status = document.getElementById('status');
  const stream = new EventSource('api/stream');
  stream.onopen = () => { status.dataset.state = 'live'; status.textContent = 'live'; };
  stream.onerror = () => { status.dataset.state = 'reconnecting'; status.textContent = 'reconnecting…'; };
  stream.onmessage = (e) => { state.snap = JSON.parse(e.data); render(); };
}

document.getElementById('project').addEventListener('change', (e) => { state.project = e.target.value; render(); });
document.getElementById('namespace').addEventListener('change', (e) => { state.namespace = e.target.value; render(); });
connect();
