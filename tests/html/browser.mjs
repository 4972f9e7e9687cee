// What check_timeline.mjs and check_malloc.mjs share: their arguments, the
// TAP-like check lines, and the page of EXPECT.json opened in headless
// Chromium (Debian's /usr/bin/chromium through playwright-core, installed by
// `npm ci` into MODULES_DIR) with its timeline hook ready.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import path from 'node:path';

// MODULES_DIR and the parsed EXPECT.json, or the usage and exit 2.
export function readArgs(script) {
  const [modulesDir, expectPath] = process.argv.slice(2);
  if (!modulesDir || !expectPath) {
    console.error(`usage: node ${script} MODULES_DIR EXPECT.json`);
    process.exit(2);
  }
  return { modulesDir, expect: JSON.parse(readFileSync(expectPath, 'utf8')) };
}

let failures = 0;
// Prints one "ok"/"not ok" line; returns ok.
export function check(ok, name, detail) {
  console.log(`${ok ? 'ok' : 'not ok'} - ${name}${ok || detail === undefined ? '' : ': ' + detail}`);
  if (!ok) failures++;
  return ok;
}

// Runs body(page, errors) on expect.html once window.vmatraceTimeline is
// there, errors collecting the page's errors (and with recordRequests, any
// request that is not file: or data:), then prints the summary and exits 1
// when any check failed.
export async function checkPage(modulesDir, expect, { recordRequests = false } = {}, body) {
  const { chromium } = createRequire(path.join(path.resolve(modulesDir), 'noop.js'))('playwright-core');
  const browser = await chromium.launch({
    executablePath: expect.chromium || '/usr/bin/chromium',
    // root in CI containers: Chromium refuses its sandbox there
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    if (recordRequests) {
      page.on('request', (r) => { if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) errors.push('network: ' + r.url()); });
    }
    await page.goto('file://' + path.resolve(expect.html));
    await page.waitForFunction(() => window.vmatraceTimeline !== undefined, null, { timeout: 10000 });
    await body(page, errors);
  } finally {
    await browser.close();
  }
  console.log(failures ? `${failures} checks failed` : 'all checks passed');
  process.exit(failures ? 1 : 0);
}
