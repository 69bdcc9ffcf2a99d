// Pasban dashboard: reads /api/kpi, /api/kpi/days and /api/incidents with the
// user's bearer token and draws the month's table, daily trends and open incidents.
// Everything it loads comes from the correlator itself (no network beyond it).
'use strict';

const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'];
const SEV_COLORS = { info: '#98a2b3', low: '#53b1fd', medium: '#fdb022', high: '#f97066', critical: '#b42318' };
const LINE_COLORS = ['#1570ef', '#e04f16', '#079455', '#7a5af8', '#c11574', '#0e9384', '#ca8504'];

const state = { token: '', charts: {}, records: [] };
const $ = (id) => document.getElementById(id);

function pct(v) { return v === null || v === undefined ? '' : Number(v).toFixed(2); }

// Seconds as h:mm:ss, rounded to the second.
function hms(v) {
  if (v === null || v === undefined) return '';
  const s = Math.round(Number(v));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return `${h}:${String(m).padStart(2, '0')}:${String(r).padStart(2, '0')}`;
}

function age(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${m}m` : `${m}m`;
}

async function api(path) {
  const r = await fetch(path, { headers: { Authorization: `Bearer ${state.token}` }, cache: 'no-store' });
  if (!r.ok) {
    let msg = `${r.status}`;
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(`${path}: ${msg}`);
  }
  return r;
}

function showError(e) {
  const el = $('error');
  el.textContent = e ? String(e.message || e) : '';
  el.hidden = !e;
}

function cell(tr, text, cls, kpi, value) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  if (kpi) {
    td.dataset.kpi = kpi;
    td.dataset.value = value === null || value === undefined ? '' : String(value);
  }
  tr.appendChild(td);
  return td;
}

function delta(td, change, fmt) {
  if (change === null || change === undefined || Number(change) === 0) return;
  const s = document.createElement('span');
  s.className = 'delta';
  s.textContent = (change > 0 ? '▲' : '▼') + fmt(Math.abs(change));
  s.title = 'change since the previous month';
  td.appendChild(s);
}

function targetClass(rec, kpi) {
  const t = rec.targets && rec.targets[kpi];
  if (!t || t.met === null) return '';
  return t.met ? 'met' : 'missed';
}

function renderTable(records) {
  const body = $('kpi-table').tBodies[0];
  body.replaceChildren();
  for (const rec of records) {
    const k = rec.kpi, c = rec.change || {};
    const tr = document.createElement('tr');
    tr.dataset.operator = rec.operator;
    cell(tr, rec.operator, 'text', 'operator', rec.operator);
    delta(cell(tr, pct(k.coverage_pct), targetClass(rec, 'coverage_pct'), 'coverage_pct', k.coverage_pct), c.coverage_pct, pct);
    for (const s of SEVERITIES) cell(tr, String(k[`incidents_${s}`]), '', `incidents_${s}`, k[`incidents_${s}`]);
    for (const m of ['mttd_s', 'mtta_s', 'mttr_s']) delta(cell(tr, hms(k[m]), targetClass(rec, m), m, k[m]), c[m], hms);
    cell(tr, pct(k.resolved_within_sla_pct), targetClass(rec, 'resolved_within_sla_pct'), 'resolved_within_sla_pct', k.resolved_within_sla_pct);
    cell(tr, pct(k.reported_in_time_pct), targetClass(rec, 'reported_in_time_pct'), 'reported_in_time_pct', k.reported_in_time_pct);
    const ts = Object.entries(rec.targets || {});
    const met = ts.filter(([, t]) => t.met === true).length;
    const td = cell(tr, ts.length ? `${met}/${ts.length}` : '', ts.length ? (met === ts.length ? 'met' : 'missed') : '', 'targets_met', met);
    td.title = ts.map(([n, t]) => `${n} ${t.target}: ${t.actual === null ? 'no data' : t.actual} (${t.met ? 'met' : 'not met'})`).join('\n');
    body.appendChild(tr);
  }
}

function chart(id, config) {
  if (typeof Chart === 'undefined') { $('chart-missing').hidden = false; return; }
  if (state.charts[id]) state.charts[id].destroy();
  config.options = Object.assign({ animation: false, responsive: true, maintainAspectRatio: false }, config.options || {});
  state.charts[id] = new Chart($(id), config);
}

async function renderTrends(period, ops) {
  const series = await Promise.all(ops.map(async (op) =>
    (await api(`/api/kpi/days?operator=${encodeURIComponent(op)}&period=${period}`)).json()));
  if (!series.length) return;
  const labels = series[0].days.map((d) => d.period.slice(8));
  const bySev = SEVERITIES.map((s) => ({
    label: s, backgroundColor: SEV_COLORS[s], stack: 'incidents',
    data: labels.map((_, i) => series.reduce((a, x) => a + (x.days[i].kpi[`incidents_${s}`] || 0), 0)),
  }));
  chart('chart-incidents', {
    type: 'bar', data: { labels, datasets: bySev },
    options: { plugins: { title: { display: true, text: 'Incidents per day, by severity' } },
               scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
  });
  const lines = [];
  series.forEach((x, n) => {
    const color = LINE_COLORS[n % LINE_COLORS.length];
    lines.push({ label: `${x.operator} coverage %`, yAxisID: 'pct', borderColor: color, backgroundColor: color,
                 data: x.days.map((d) => d.kpi.coverage_pct), spanGaps: true });
    lines.push({ label: `${x.operator} MTTD min`, yAxisID: 'min', borderColor: color, backgroundColor: color,
                 borderDash: [4, 4], data: x.days.map((d) => d.kpi.mttd_s === null ? null : d.kpi.mttd_s / 60),
                 spanGaps: true });
  });
  chart('chart-times', {
    type: 'line', data: { labels, datasets: lines },
    options: { plugins: { title: { display: true, text: 'Coverage % and MTTD (minutes) per day' } },
               scales: { pct: { position: 'left', min: 0, max: 100 },
                         min: { position: 'right', beginAtZero: true, grid: { drawOnChartArea: false } } } },
  });
}

async function renderOpen(op) {
  const q = new URLSearchParams({ status: 'open', limit: '1000' });
  if (op) q.set('operator', op);
  const page = await (await api(`/api/incidents?${q}`)).json();
  const now = Date.now();
  const rows = page.incidents.map((inc) => ({ inc, since: Date.parse(inc.detected_at) }))
    .sort((a, b) => a.since - b.since);
  const body = $('open-table').tBodies[0];
  body.replaceChildren();
  for (const { inc, since } of rows) {
    const tr = document.createElement('tr');
    tr.dataset.operator = inc.organization.id;
    cell(tr, age(now - since), '', 'age', now - since);
    cell(tr, inc.organization.id, 'text');
    cell(tr, inc.severity, `text sev-${inc.severity}`);
    cell(tr, inc.rule.id, 'text').title = inc.rule.title || '';
    cell(tr, inc.category || '', 'text');
    cell(tr, inc.status, 'text');
    cell(tr, inc.first_seen, 'text');
    cell(tr, inc.id.slice(0, 12), 'text').title = inc.id;
    body.appendChild(tr);
  }
  $('open-count').textContent = page.total > rows.length ? `(${rows.length} of ${page.total})` : `(${page.total})`;
}

function fillOperators(records) {
  const sel = $('operator'), keep = sel.value;
  const names = records.map((r) => r.operator);
  sel.replaceChildren(new Option('All operators', ''));
  for (const n of names) sel.add(new Option(n, n));
  sel.value = names.includes(keep) ? keep : '';
}

async function load() {
  showError(null);
  try {
    const who = await (await api('/api/whoami')).json();
    $('who').textContent = who.role === 'regulator' ? 'Signed in as the regulator (read only)' : `Signed in as operator ${who.operator}`;
    const period = $('period').value;
    const all = await (await api(`/api/kpi${period ? `?period=${period}` : ''}`)).json();
    if (!period) $('period').value = all.period;
    state.records = all.records;
    fillOperators(all.records);
    const op = $('operator').value;
    const shown = op ? all.records.filter((r) => r.operator === op) : all.records;
    $('period-label').textContent = `(${all.period})`;
    $('trend-label').textContent = op ? `(${op})` : '(all operators)';
    renderTable(shown);
    await Promise.all([renderTrends(all.period, shown.map((r) => r.operator)), renderOpen(op)]);
    document.body.dataset.loaded = all.period + (op ? `/${op}` : '');
  } catch (e) {
    showError(e);
  }
}

async function downloadCsv() {
  try {
    const period = $('period').value;
    const blob = await (await api(`/api/kpi.csv?period=${period}`)).blob();
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `pasban-kpi-${period}.csv`;
    a.click();
    URL.revokeObjectURL(a.href);
  } catch (e) {
    showError(e);
  }
}

function init() {
  // A token in the fragment (#token=...) never reaches a server log; keep it for the tab.
  const h = new URLSearchParams(location.hash.slice(1));
  if (h.get('token')) sessionStorage.setItem('pasban-token', h.get('token'));
  if (h.get('period')) $('period').value = h.get('period');
  state.token = sessionStorage.getItem('pasban-token') || '';
  $('token').value = state.token;
  $('controls').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.token = $('token').value.trim();
    sessionStorage.setItem('pasban-token', state.token);
    load();
  });
  $('operator').addEventListener('change', load);
  $('period').addEventListener('change', load);
  $('csv').addEventListener('click', downloadCsv);
  if (state.token) load();
}

document.addEventListener('DOMContentLoaded', init);
