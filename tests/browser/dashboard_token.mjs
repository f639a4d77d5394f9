// The dashboard on a host with [auth], in headless Chromium (playwright-core +
// the system's Chromium). Started by tests/browser.rs:
//
//   node tests/browser/dashboard_token.mjs <host-url> <token> <feed-file>
//
// Without a token the page says the host refused it and how to give one; opened as
// /#topics=trades/BTC&token=<jwt> it shows the topic's value and a later update.
// Every wait is for a condition with a generous timeout; nothing is timed.
import { appendFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const [base, token, feed] = process.argv.slice(2);
if (!base || !token || !feed) {
  console.error('usage: dashboard_token.mjs <host-url> <token> <feed-file>');
  process.exit(2);
}
const WAIT = 30_000;
const log = (...a) => console.error('[dashboard_token.mjs]', ...a);
const valueCell = (page, topic, field) => page.locator(`article.card[data-topic="${topic}"] td.v[data-field="${field}"]`);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
let failed = false;
try {
  const anonymous = await browser.newPage();
  await anonymous.goto(base, { waitUntil: 'load' });
  await anonymous.waitForFunction(() => /requires a token.*#token=/.test(document.querySelector('#empty')?.textContent ?? ''), null, { timeout: WAIT });
  log('without a token:', await anonymous.locator('#empty').textContent());

  const page = await browser.newPage();
  await page.goto(`${base}#topics=trades/BTC&token=${token}`, { waitUntil: 'load' });
  await page.locator('#status[data-status="connected"]').waitFor({ timeout: WAIT });
  await page.waitForFunction(() => document.querySelector('article.card[data-topic="trades/BTC"] td.v[data-field="price"]')?.textContent.trim() === '100', null, { timeout: WAIT });
  log('with the token: price', await valueCell(page, 'trades/BTC', 'price').textContent());
  appendFileSync(feed, 'BTC,101,1,1700000000001\n');
  await page.waitForFunction(() => document.querySelector('article.card[data-topic="trades/BTC"] td.v[data-field="price"]')?.textContent.trim() === '101', null, { timeout: WAIT });
  if (!(await page.evaluate(() => location.hash.includes('token=')))) throw new Error('the token left the URL');
  log('and the update');
  console.log('ok');
} catch (e) {
  failed = true;
  console.error(String(e?.stack ?? e));
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
