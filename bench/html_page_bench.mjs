// How a `vmatrace report --html` page behaves in the browser: time to parse
// and first draw, time per redraw (what every zoom/pan step costs), and a
// layout lookup (a click), in headless Chromium. Prints numbers, asserts
// nothing. Pair it with the time `report --html` took against `replay
// --stats` (bench/html_report_bench.sh prints both as ratios).
//
// usage: node bench/html_page_bench.mjs MODULES_DIR PAGE.html
import { createRequire } from 'node:module';
import { statSync } from 'node:fs';
import path from 'node:path';

const [modulesDir, html] = process.argv.slice(2);
const { chromium } = createRequire(path.join(path.resolve(modulesDir), 'noop.js'))('playwright-core');
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const t0 = Date.now();
  await page.goto('file://' + path.resolve(html));
  await page.waitForFunction(() => window.vmatraceTimeline !== undefined, null, { timeout: 120000 });
  const load = Date.now() - t0;
  const r = await page.evaluate(() => {
    const tl = window.vmatraceTimeline, d = tl.data, p = tl.query();
    const n = 20;
    let t = performance.now();
    for (let i = 0; i < n; i++) tl.draw();
    const draw = (performance.now() - t) / n;
    t = performance.now();
    tl.selectTime(Math.round((d.t_first + d.t_end) / 2));
    const click = performance.now() - t;
    return { segments: p.bands.length, markers_drawn: p.markers.length, markers: p.markers_total, draw, click };
  });
  const mb = statSync(html).size / 1048576;
  console.log(`page ${mb.toFixed(1)} MiB, ${r.segments} segments, ${r.markers} markers (${r.markers_drawn} drawn): ` +
    `load+first draw ${load} ms, redraw ${r.draw.toFixed(1)} ms (${(1000 / r.draw).toFixed(0)} frames/s), click ${r.click.toFixed(1)} ms`);
} finally {
  await browser.close();
}
