// Dashboard in a real browser: the page served by cor_http (serve_fixture) shows
// the numbers /api/kpi returns, filters by operator, loads nothing from outside,
// and leaves screenshots in $PASBAN_E2E_OUT.
//
// Env: PASBAN_FIXTURE_SERVER (serve_fixture), PASBAN_WEB_ROOT (build/share/pasban/web),
// PASBAN_E2E_OUT (where screenshots go), PASBAN_CHROMIUM (default /usr/bin/chromium).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const server = process.env.PASBAN_FIXTURE_SERVER;
const webRoot = process.env.PASBAN_WEB_ROOT;
const out = process.env.PASBAN_E2E_OUT || 'e2e-out';
const PERIOD = '2026-11';
const REGULATOR = 'e2e-regulator';
mkdirSync(out, { recursive: true });

// The page's formats, stated independently: percentages with 2 decimals,
// durations as h:mm:ss rounded to the second, empty when there is no value.
const pct = (v) => (v === null ? '' : v.toFixed(2));
const hms = (v) => {
  if (v === null) return '';
  const s = Math.round(v);
  return `${Math.floor(s / 3600)}:${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
};

function startServer() {
  return new Promise((resolve, reject) => {
    const p = spawn(server, [webRoot, '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    p.stdout.on('data', (d) => {
      buf += d;
      const m = buf.match(/PORT (\d+)/);
      if (m) resolve({ proc: p, base: `http://127.0.0.1:${m[1]}` });
    });
    p.on('exit', (code) => reject(new Error(`serve_fixture exited with ${code}`)));
  });
}

async function apiJson(base, p, token = REGULATOR) {
  const r = await fetch(base + p, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(r.status, 200, `${p}: ${r.status}`);
  return r.json();
}

async function rowCells(page, table, op) {
  return page.$$eval(`#${table} tbody tr[data-operator="${op}"] td[data-kpi]`, (tds) =>
    Object.fromEntries(tds.map((td) => [td.dataset.kpi, td.firstChild ? td.firstChild.textContent : ''])));
}

async function checkKpiRow(page, rec) {
  const cells = await rowCells(page, 'kpi-table', rec.operator);
  const k = rec.kpi;
  assert.equal(cells.operator, rec.operator);
  assert.equal(cells.coverage_pct, pct(k.coverage_pct), `${rec.operator} coverage`);
  for (const s of ['info', 'low', 'medium', 'high', 'critical'])
    assert.equal(cells[`incidents_${s}`], String(k[`incidents_${s}`]), `${rec.operator} ${s}`);
  for (const m of ['mttd_s', 'mtta_s', 'mttr_s']) assert.equal(cells[m], hms(k[m]), `${rec.operator} ${m}`);
  assert.equal(cells.resolved_within_sla_pct, pct(k.resolved_within_sla_pct), `${rec.operator} SLA`);
  assert.equal(cells.reported_in_time_pct, pct(k.reported_in_time_pct), `${rec.operator} reported`);
  const ts = Object.values(rec.targets);
  assert.equal(cells.targets_met, `${ts.filter((t) => t.met === true).length}/${ts.length}`);
}

const { proc, base } = await startServer();
const browser = await chromium.launch({
  executablePath: process.env.PASBAN_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--no-first-run'],
});
let failed = false;
try {
  const all = await apiJson(base, `/api/kpi?period=${PERIOD}`);
  assert.equal(all.records.length, 3);
  // The fixture must give the table something to show in every column.
  assert.ok(all.records.some((r) => r.kpi.coverage_pct < 100 && r.kpi.mttr_s !== null));

  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const outside = [], errors = [];
  page.on('request', (req) => { if (!req.url().startsWith(base)) outside.push(req.url()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });

  await page.goto(`${base}/#token=${REGULATOR}&period=${PERIOD}`);
  await page.waitForSelector(`body[data-loaded="${PERIOD}"]`, { timeout: 20000 });
  assert.equal(await page.$$eval('#kpi-table tbody tr', (r) => r.length), 3);
  for (const rec of all.records) await checkKpiRow(page, rec);
  // Charts drawn by the vendored Chart.js, served by the correlator itself.
  assert.ok(await page.evaluate(() => typeof Chart !== 'undefined' && !!Chart.getChart('chart-incidents')));
  const openAll = await apiJson(base, '/api/incidents?status=open&limit=1000');
  assert.ok(openAll.total > 0, 'fixture has open incidents');
  assert.equal(await page.$$eval('#open-table tbody tr', (r) => r.length), openAll.total);
  await page.screenshot({ path: path.join(out, 'dashboard.png'), fullPage: true });

  // The CSV button hands over the same sheet as /api/kpi.csv.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#csv')]);
  assert.equal(download.suggestedFilename(), `pasban-kpi-${PERIOD}.csv`);
  const sheet = readFileSync(await download.path(), 'utf8');
  const direct = await (await fetch(`${base}/api/kpi.csv?period=${PERIOD}`,
    { headers: { Authorization: `Bearer ${REGULATOR}` } })).text();
  assert.equal(sheet, direct);
  assert.equal(sheet.split('\r\n').filter((l) => l).length, 1 + all.records.length);

  // Filter by operator.
  await page.selectOption('#operator', 'op-b');
  await page.waitForSelector(`body[data-loaded="${PERIOD}/op-b"]`, { timeout: 20000 });
  assert.deepEqual(await page.$$eval('#kpi-table tbody tr', (r) => r.map((x) => x.dataset.operator)), ['op-b']);
  await checkKpiRow(page, all.records.find((r) => r.operator === 'op-b'));
  const openB = await apiJson(base, '/api/incidents?status=open&operator=op-b&limit=1000');
  const shownOps = await page.$$eval('#open-table tbody tr', (r) => r.map((x) => x.dataset.operator));
  assert.equal(shownOps.length, openB.total);
  assert.ok(shownOps.every((o) => o === 'op-b'));
  assert.match(await page.textContent('#trend-label'), /op-b/);
  await page.screenshot({ path: path.join(out, 'dashboard-op-b.png'), fullPage: true });

  // An operator's token shows that operator alone.
  const pa = await browser.newPage();
  await pa.goto(`${base}/#token=e2e-op-a&period=${PERIOD}`);
  await pa.waitForSelector(`body[data-loaded="${PERIOD}"]`, { timeout: 20000 });
  assert.deepEqual(await pa.$$eval('#kpi-table tbody tr', (r) => r.map((x) => x.dataset.operator)), ['op-a']);
  await checkKpiRow(pa, await apiJson(base, `/api/kpi?operator=op-a&period=${PERIOD}`, 'e2e-op-a'));

  // A wrong token is told so, on the page.
  const pw = await browser.newPage();
  await pw.goto(`${base}/#token=wrong&period=${PERIOD}`);
  await pw.waitForSelector('#error:not([hidden])', { timeout: 20000 });
  assert.match(await pw.textContent('#error'), /bearer token/);

  assert.deepEqual(outside, [], 'the page fetched nothing but the correlator');
  assert.deepEqual(errors.filter((e) => !/401/.test(e)), [], 'no script errors');
  console.log(`ok: dashboard matches /api/kpi for ${all.records.length} operators; screenshots in ${out}`);
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  await browser.close();
  proc.kill('SIGTERM');
}
process.exit(failed ? 1 : 0);
