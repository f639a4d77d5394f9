// Drives the dashboard in headless Chromium (playwright-core + the system's Chromium).
// Started by tests/browser.rs:
//
//   node tests/browser/dashboard.mjs <base-url> <feed-file> <screenshot.png>
//
// Protocol with the Rust side over stdio: this script prints `restart` and waits for a
// line `restarted` on stdin (the host was stopped and started again on the same port).
// It appends CSV lines (`symbol,price,qty,ts`) to <feed-file> itself. Every wait is for
// a condition with a generous timeout; nothing is timed.
import { appendFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const [base, feed, screenshot] = process.argv.slice(2);
if (!base || !feed || !screenshot) {
  console.error('usage: dashboard.mjs <base-url> <feed-file> <screenshot.png>');
  process.exit(2);
}
const WAIT = 30_000;
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const lines = createInterface({ input: process.stdin });
const inbox = [];
let waiter = null;
lines.on('line', (l) => (waiter ? (waiter(l), (waiter = null)) : inbox.push(l)));
const nextLine = () => (inbox.length ? Promise.resolve(inbox.shift()) : new Promise((r) => (waiter = r)));
const log = (...a) => console.error('[dashboard.mjs]', ...a);

const append = (symbol, price, ts) => appendFileSync(feed, `${symbol},${price},1,${ts}\n`);
const valueCell = (page, topic, field) => page.locator(`article.card[data-topic="${topic}"] td.v[data-field="${field}"]`);

const browser = await chromium.launch({
  executablePath,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
let failed = false;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 820 }, colorScheme: 'dark' });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => m.type() === 'error' && !/Failed to load resource|WebSocket/.test(m.text()) && errors.push(m.text()));

  await page.goto(base, { waitUntil: 'load' });
  await page.locator('#status[data-status="connected"]').waitFor({ timeout: WAIT });
  log('connected');

  // The topics the host already has are listed and watched without configuration.
  await page.locator('#topics li[data-topic="trades/BTC"]').waitFor({ timeout: WAIT });
  await page.locator('article.card[data-topic="trades/BTC"]').waitFor({ timeout: WAIT });
  // The plugins table lists the host's real plugin instances with their health:
  // `plugins: unavailable` (or `none`) is a failure, not an acceptable page.
  const pluginRow = (name) => page.locator(`#plugins table tr[data-plugin="${name}"]`);
  for (const [name, role] of [['csv', 'collector'], ['delta', 'delta']]) {
    const row = pluginRow(name);
    await row.locator('span.badge.active', { hasText: 'active' }).waitFor({ timeout: WAIT });
    const cells = await row.locator('td').allTextContents();
    if (cells[0] !== name || cells[1] !== 'trades' || cells[2] !== role) {
      throw new Error(`plugin row ${name}: expected [${name}, trades, ${role}, ...], got ${JSON.stringify(cells)}`);
    }
  }
  // The collector has already read the two lines the test wrote before the page.
  await page.waitForFunction(() => {
    const calls = document.querySelector('#plugins tr[data-plugin="csv"] td:nth-child(6)');
    return calls && Number(calls.textContent.replace(/[^0-9.]/g, '')) >= 1;
  }, null, { timeout: WAIT });
  if (await page.getByText('plugins: unavailable').count()) throw new Error('plugins: unavailable shown');
  log('plugins table:', (await pluginRow('csv').locator('td').allTextContents()).join(' | '));

  // Filtering the list.
  await page.fill('#filter', 'trades/ETH');
  await page.waitForFunction(() => [...document.querySelectorAll('#topics li')].map((l) => l.dataset.topic).join() === 'trades/ETH', null, { timeout: WAIT });
  await page.fill('#filter', '');
  // Selecting a topic by clicking it in the list.
  await page.locator('#topics li[data-topic="trades/ETH"]').click();
  await page.locator('article.card[data-topic="trades/ETH"]').waitFor({ timeout: WAIT });

  // A line appended to the watched file changes the value on the page.
  append('BTC', '101.25', 1700000000100);
  await valueCell(page, 'trades/BTC', 'price').filter({ hasText: '101.2500' }).waitFor({ timeout: WAIT });
  log('value updated live');
  append('BTC', '102.5', 1700000000200);
  append('BTC', '99.75', 1700000000300);
  await valueCell(page, 'trades/BTC', 'price').filter({ hasText: '99.7500' }).waitFor({ timeout: WAIT });
  await page.locator('article.card[data-topic="trades/BTC"] .chart[data-field="price"] canvas').waitFor({ timeout: WAIT });

  // The host restarts on the same port: the page reconnects and shows new values.
  // Every status the badge shows from now on is recorded, however briefly it shows.
  await page.evaluate(() => {
    window.seenStatus = [];
    window.seenOffline = [];
    const node = document.getElementById('status');
    new MutationObserver(() => {
      window.seenStatus.push(node.dataset.status);
      window.seenOffline.push(document.body.classList.contains('offline'));
    }).observe(node, { attributes: true });
  });
  console.log('restart');
  const reply = await nextLine();
  if (reply !== 'restarted') throw new Error(`expected 'restarted' on stdin, got ${JSON.stringify(reply)}`);
  await page.waitForFunction(() => window.seenStatus.includes('reconnecting'), null, { timeout: WAIT });
  log('saw reconnecting');
  await page.locator('#status[data-status="connected"]').waitFor({ timeout: WAIT });
  log('reconnected:', await page.locator('#status').textContent());
  // The cards were dimmed while the host was away, and are not any more.
  if (!(await page.evaluate(() => window.seenOffline.includes(true)))) throw new Error('cards not dimmed while disconnected');
  await page.waitForFunction(() => !document.body.classList.contains('offline'), null, { timeout: WAIT });
  append('BTC', '123.5', 1700000000400);
  await valueCell(page, 'trades/BTC', 'price').filter({ hasText: '123.5000' }).waitFor({ timeout: WAIT });
  append('BTC', '120.125', 1700000000500);
  append('ETH', '3001.5', 1700000000600);
  await valueCell(page, 'trades/BTC', 'price').filter({ hasText: '120.1250' }).waitFor({ timeout: WAIT });
  await valueCell(page, 'trades/ETH', 'price').filter({ hasText: '3001.50' }).waitFor({ timeout: WAIT });
  log('values after restart:', await page.locator('#status').textContent());

  // A reload does not start the charts empty: a topic's chart is filled with its
  // recent changes, a sample series' with its history (a trade stamped now, so
  // that the series has a sample in the range), then they go on live. The range
  // picker reloads them.
  append('BTC', '125.25', Date.now() - 2000);
  await valueCell(page, 'trades/BTC', 'price').filter({ hasText: '125.2500' }).waitFor({ timeout: WAIT });
  await page.reload();
  const seriesChart = 'article.card[data-topic="metrics/trade_price/BTC"] .chart[data-field="value"]';
  await page.waitForFunction((sel) => {
    const c = document.querySelector(sel);
    return c && c.dataset.source === 'history' && Number(c.dataset.points) >= 1;
  }, seriesChart, { timeout: WAIT });
  log('series chart from the history:', await page.locator(seriesChart).getAttribute('data-points'), 'points');
  const priceChart = 'article.card[data-topic="trades/BTC"] .chart[data-field="price"]';
  await page.waitForFunction((sel) => {
    const c = document.querySelector(sel);
    return c && c.dataset.source === 'changes' && Number(c.dataset.points) >= 4;
  }, priceChart, { timeout: WAIT });
  log('chart after reload:', await page.locator(priceChart).getAttribute('data-points'), 'points');
  await page.selectOption('#range', '1h');
  await page.waitForFunction((sel) => document.querySelector(sel)?.dataset.range === '1h', priceChart, { timeout: WAIT });
  if (!page.url().includes('range=1h')) throw new Error(`range not kept in the URL: ${page.url()}`);
  append('BTC', '121.5', Date.now());
  await valueCell(page, 'trades/BTC', 'price').filter({ hasText: '121.5000' }).waitFor({ timeout: WAIT });
  await page.waitForFunction((sel) => Number(document.querySelector(sel)?.dataset.points) >= 5, priceChart, { timeout: WAIT });

  // A watched topic the host does not have says so.
  await page.evaluate(() => { location.hash = '#topics=trades/BTC,no/such&range=1h'; });
  await page.reload();
  await page.locator('article.card[data-topic="no/such"] .note').filter({ hasText: 'no such topic' }).waitFor({ timeout: WAIT });
  // A phone-sized window does not scroll sideways.
  await page.setViewportSize({ width: 420, height: 800 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) throw new Error(`sideways scrolling at 420 px: ${overflow} px too wide`);
  await page.setViewportSize({ width: 1280, height: 800 });

  if (errors.length) throw new Error(`errors on the page:\n${errors.join('\n')}`);
  // Let the highlight animation settle so the screenshot shows the steady state.
  await page.waitForFunction(() => document.getAnimations().length === 0, null, { timeout: WAIT });
  await page.screenshot({ path: screenshot, fullPage: true });
  log('screenshot', screenshot);
  console.log('ok');
} catch (e) {
  failed = true;
  console.error('[dashboard.mjs] FAILED:', e);
  try {
    const pages = browser.contexts().flatMap((c) => c.pages());
    if (pages[0]) await pages[0].screenshot({ path: screenshot.replace(/\.png$/, '-failed.png'), fullPage: true });
  } catch {}
} finally {
  await browser.close();
  lines.close();
}
process.exit(failed ? 1 : 0);
