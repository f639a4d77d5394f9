// A page of another origin imports the host's client and subscribes, in headless
// Chromium (playwright-core + the system's Chromium). Started by tests/browser.rs:
//
//   node tests/browser/cross_origin.mjs <allowed-page-url> <refused-page-url> <feed-file>
//
// Both URLs serve the same page (tests/browser.rs serves it) from origins the host
// does or does not list in `[server] allowed_origins`. The page imports
// http://<host>/client/wasmeter.js, connects, subscribes to trades/BTC and shows
// the price in its title (`price <p>`), or the import's error (`blocked ...`).
// Every wait is for a condition with a generous timeout; nothing is timed.
import { appendFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const [allowedUrl, refusedUrl, feed] = process.argv.slice(2);
if (!allowedUrl || !refusedUrl || !feed) {
  console.error('usage: cross_origin.mjs <allowed-page-url> <refused-page-url> <feed-file>');
  process.exit(2);
}
const WAIT = 30_000;
const log = (...a) => console.error('[cross_origin.mjs]', ...a);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
let failed = false;
try {
  const page = await browser.newPage();
  await page.goto(allowedUrl, { waitUntil: 'load' });
  await page.waitForFunction(() => document.title === 'price 100', null, { timeout: WAIT });
  log('the allowed page got the snapshot');
  appendFileSync(feed, 'BTC,101,1,1700000000001\n');
  await page.waitForFunction(() => document.title === 'price 101', null, { timeout: WAIT });
  log('and the update');

  const refused = await browser.newPage();
  await refused.goto(refusedUrl, { waitUntil: 'load' });
  await refused.waitForFunction(() => document.title.startsWith('blocked'), null, { timeout: WAIT });
  log('the other page could not import the client:', await refused.title());
  console.log('ok');
} catch (e) {
  failed = true;
  console.error(String(e?.stack ?? e));
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
