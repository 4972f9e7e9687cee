// Drives a `vmatrace report --html` page in headless Chromium (Debian's
// /usr/bin/chromium through playwright-core) and checks it against what the
// e2e test knows about the traced workload (tests/e2e/html_e2e_test.cpp
// writes that as EXPECT.json):
//   - the layout the page rebuilds at each checkpoint equals /proc/PID/maps
//     read while the process was stopped there;
//   - the bands of known VMAs are present then, and drawn where the axes put
//     them; the markers of known changes are there, between the right stops;
//   - zoom (both axes, one axis), pan, hover (the tooltip names the VMA),
//     click (the layout panel equals `vmatrace replay --maps --at` then);
//   - the process picker switches processes;
//   - a screenshot that is not blank.
// Prints one "ok"/"not ok" line per check (TAP-like) and exits 1 when any
// check failed.
//
// usage: node check_timeline.mjs MODULES_DIR EXPECT.json
import { execFileSync } from 'node:child_process';
import { check, checkPage, readArgs } from './browser.mjs';

const { modulesDir, expect } = readArgs('check_timeline.mjs');
const near = (a, b, tol = 1.01) => Math.abs(a - b) <= tol;

await checkPage(modulesDir, expect, { recordRequests: true }, async (page, errors) => {
  const T = (fn, arg) => page.evaluate(fn, arg);
  const base = BigInt(await T(() => window.vmatraceTimeline.data.base_ts));
  const rel = (abs) => Number(BigInt(abs) - base);
  const canvas = await page.locator('#timeline').boundingBox();

  async function selectProcess(pid) {
    await page.selectOption('#process', String(pid));
    return T(() => window.vmatraceTimeline.query().pid);
  }

  // ---- layouts at the checkpoints, per process, through the picker ----
  check((await T(() => window.vmatraceTimeline.data.processes.length)) === expect.processes.length,
    'one process in the picker per traced process',
    await T(() => window.vmatraceTimeline.data.processes.map((p) => p.pid).join(',')));
  for (const proc of expect.processes) {
    check((await selectProcess(proc.pid)) === proc.pid, `picker shows pid ${proc.pid}`);
    proc.stops.forEach((s, i) => s.index = i);
    for (const stop of proc.stops) {
      const got = await T((t) => window.vmatraceTimeline.layoutAt(t), rel(stop.ts));
      check(got === stop.maps, `pid ${proc.pid} stop ${stop.index}: the page's layout equals /proc/PID/maps`,
        `\n--- /proc\n${stop.maps}--- page\n${got}`);
    }
  }

  // ---- bands of known VMAs, where the axes put them ----
  for (const b of expect.bands) {
    await selectProcess(b.pid);
    const t = rel(b.ts);
    const q = await T(() => window.vmatraceTimeline.query());
    const band = q.bands.find((x) => x.start === b.start && x.end === b.end && x.t_begin <= t && (x.t_end < 0 || t < x.t_end));
    if (!check(band !== undefined, `band ${b.start}-${b.end} (${b.what}) present at +${t}ns`)) continue;
    check(band.perms === b.perms, `band ${b.start}-${b.end} perms ${b.perms}`, band.perms);
    const x = await T((t) => window.vmatraceTimeline.timeToX(t), t);
    const lo = await T((a) => window.vmatraceTimeline.addrToY(a), parseInt(b.start, 16));
    const hi = await T((a) => window.vmatraceTimeline.addrToY(a), parseInt(b.end, 16));
    check(band.x0 <= x + 0.01 && x <= band.x1 + 0.01, `band ${b.what} spans its moment on the time axis`,
      `x=${x} band ${band.x0}..${band.x1}`);
    check(near(band.y1, lo) && near(band.y0, hi) && band.y0 < band.y1, `band ${b.what} sits at its addresses`,
      `y ${band.y0}..${band.y1}, addresses at ${hi}..${lo}`);
  }

  // ---- markers of known changes, between the right stops ----
  for (const m of expect.markers) {
    await selectProcess(m.pid);
    const lo = parseInt(m.lo, 16), hi = parseInt(m.hi, 16), after = rel(m.after), before = rel(m.before);
    const all = await T((pid) => window.vmatraceTimeline.data.processes.find((p) => p.pid === pid).markers, m.pid);
    const hit = all.filter((k) => m.kinds.includes(k[1]) && k[2] >= lo && k[2] < hi && k[0] > after && k[0] <= before);
    if (!check(hit.length >= (m.min || 1), `${m.what}: ${m.kinds.join('/')} marker at ${m.lo} between the stops`,
      `${hit.length} found; markers of the process: ${JSON.stringify(all.filter((k) => k[2] >= lo && k[2] < hi))}`)) continue;
    // Drawn where it happened: at its moment, inside its VMA's address span.
    const q = await T(() => window.vmatraceTimeline.query());
    const drawn = q.markers.filter((d) => m.kinds.includes(d.kind) && parseInt(d.start, 16) >= lo && parseInt(d.start, 16) < hi &&
      d.t > after && d.t <= before);
    if (!check(drawn.length > 0, `${m.what}: marker drawn`)) continue;
    const d = drawn[0];
    const x = await T((t) => window.vmatraceTimeline.timeToX(t), d.t);
    const ylo = await T((a) => window.vmatraceTimeline.addrToY(a), parseInt(d.start, 16));
    const yhi = await T((a) => window.vmatraceTimeline.addrToY(a), parseInt(d.end, 16));
    check(near(d.x, x) && d.y <= ylo + 0.5 && d.y >= yhi - 0.5, `${m.what}: marker at its time and addresses`,
      `marker ${d.x},${d.y}; expected x ${x}, y in ${yhi}..${ylo}`);
    const text = await T(([x, y]) => window.vmatraceTimeline.hoverText(x, y), [d.x, d.y]);
    check(text !== null && text.includes(`${d.kind} by ${d.cause}`) && text.includes(d.start),
      `${m.what}: marker tooltip names the change`, text);
  }

  // ---- zoom, hover, click on a known band ----
  const h = expect.hover;
  await selectProcess(h.pid);
  const ht = rel(h.ts), hmid = (parseInt(h.start, 16) + parseInt(h.end, 16)) / 2;
  const bandOf = async () => (await T(() => window.vmatraceTimeline.query())).bands.find(
    (x) => x.start === h.start && x.end === h.end && x.t_begin <= ht && (x.t_end < 0 || ht < x.t_end));
  let band = await bandOf();
  if (check(band !== undefined, `hover band ${h.start}-${h.end} present`)) {
    const before = band;
    // Wheel over the band's middle: both axes zoom in around the pointer.
    for (let i = 0; i < 6; i++) {
      band = await bandOf();
      await page.mouse.move(canvas.x + (band.x0 + band.x1) / 2, canvas.y + (band.y0 + band.y1) / 2);
      await page.mouse.wheel(0, -300);
      await page.waitForTimeout(50);
    }
    band = await bandOf();
    check(band.x1 - band.x0 > (before.x1 - before.x0) * 3 && band.y1 - band.y0 > (before.y1 - before.y0) * 3,
      'wheel zooms both axes', `width ${before.x1 - before.x0} -> ${band.x1 - band.x0}, height ${before.y1 - before.y0} -> ${band.y1 - band.y0}`);
    const cx = Math.min(Math.max((band.x0 + band.x1) / 2, 160), 1370), cy = (band.y0 + band.y1) / 2;
    await page.mouse.move(canvas.x + cx, canvas.y + cy);
    await page.waitForTimeout(50);
    const tip = await page.locator('#tip');
    const tipText = (await tip.isVisible()) ? await tip.textContent() : '(no tooltip)';
    check(tipText.includes(`${h.start}-${h.end} ${h.perms}`), 'hover: the tooltip shows the VMA range and perms', tipText);
    check(tipText.includes('made by: '), 'hover: the tooltip names the event that made it', tipText);

    await page.mouse.click(canvas.x + cx, canvas.y + cy);
    const q = await T(() => window.vmatraceTimeline.query());
    if (check(q.selected !== null, 'click selects a moment')) {
      const shown = await page.locator('#layout').textContent();
      const replay = execFileSync(expect.vmatrace, ['replay', expect.recording, '--maps', '--at', `+${q.selected}ns`,
        '--pid', String(h.pid)], { encoding: 'utf8' });
      const truth = replay.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l + '\n').join('');
      check(shown === truth, `click: the layout panel equals \`replay --maps --at +${q.selected}ns\``,
        `\n--- replay\n${truth}--- page\n${shown}`);
      check(shown.includes(band.line), 'click: the layout holds the clicked band', band.line);
      const around = await page.locator('#around').textContent();
      check(around.length > 0 && !around.startsWith('(no changes)'), 'click: the changes around it are listed', around);
    }

    // One axis at a time, and panning.
    const probe = async () => T(([t, a]) => [window.vmatraceTimeline.timeToX(t), window.vmatraceTimeline.addrToY(a)], [ht, hmid]);
    // Away from the probe: zooming keeps the point under the pointer fixed.
    await page.mouse.move(canvas.x + 300, canvas.y + 450);
    let p0 = await probe();
    await page.keyboard.down('Control');
    await page.mouse.wheel(0, -300);
    await page.keyboard.up('Control');
    await page.waitForTimeout(50);
    let p1 = await probe();
    check(!near(p0[0], p1[0], 0.5) && near(p0[1], p1[1], 0.01), 'ctrl+wheel zooms time only', `${p0} -> ${p1}`);
    await page.keyboard.down('Alt');
    await page.mouse.wheel(0, 300);
    await page.keyboard.up('Alt');
    await page.waitForTimeout(50);
    let p2 = await probe();
    check(near(p1[0], p2[0], 0.01) && !near(p1[1], p2[1], 0.5), 'alt+wheel zooms addresses only', `${p1} -> ${p2}`);
    const selectedBefore = (await T(() => window.vmatraceTimeline.query())).selected;
    await page.mouse.move(canvas.x + 700, canvas.y + 300);
    await page.mouse.down();
    await page.mouse.move(canvas.x + 760, canvas.y + 330, { steps: 5 });
    await page.mouse.up();
    let p3 = await probe();
    check(near(p3[0] - p2[0], 60) && near(p3[1] - p2[1], 30), 'drag pans both axes', `${p2} -> ${p3}`);
    check((await T(() => window.vmatraceTimeline.query())).selected === selectedBefore, 'a drag is not a click');
    await page.click('#reset');
  }

  // ---- the fault heat: the hottest cell of the first process, hovered ----
  {
    await selectProcess(expect.processes[0].pid);
    const hot = await T(() => {
      const tl = window.vmatraceTimeline, d = tl.data, p = d.processes.find((x) => x.pid === tl.query().pid);
      const c = p.heat.slice().sort((a, b) => b[2] - a[2])[0];
      if (!c) return null;
      const s = p.segments[c[0]], g = tl.query().bands[c[0]];
      const t0 = Math.max(d.t_first + c[1] * d.bucket_ns, s[2]);
      const t1 = Math.min(d.t_first + (c[1] + 1) * d.bucket_ns, s[3] < 0 ? d.t_end : s[3]);
      const x = tl.timeToX((t0 + t1) / 2), y = g.y1 - (g.y1 - g.y0) / 4;
      return { faults: c[2], total: p.faults, x, y, text: tl.hoverText(x, y), range: g.start + '-' + g.end };
    });
    if (check(hot !== null && hot.faults > 0, 'the faults of the workload are in the heat overlay', JSON.stringify(hot))) {
      check(hot.text !== null && hot.text.includes(hot.range) && hot.text.includes(`here: ${hot.faults} in`),
        'hover on the hottest heat cell: its VMA and its fault count', hot.text);
    }
  }

  // ---- panels ----
  {
    const rows = await page.locator('#hotspots tr').count();
    check(rows > 1, 'the fault hotspot table has rows', String(rows));
    // This workload grows the heap with brk itself (not from an allocator);
    // the panel is shown exactly when the process has malloc growth.
    const sites = await T(() => { const tl = window.vmatraceTimeline;
      return tl.data.processes.find((p) => p.pid === tl.query().pid).malloc_sites.length; });
    const hidden = await page.locator('#malloc-panel').isHidden();
    check(hidden === (sites === 0) && (hidden || await page.locator('#malloc tr').count() === sites + 1),
      'the malloc panel is shown exactly when there are growth call sites, one row each', `${sites} sites, hidden ${hidden}`);
    check(await page.locator('#memory').isVisible(), 'the memory-over-time chart is shown');
  }

  // ---- screenshot, not blank ----
  await selectProcess(expect.processes[0].pid);
  await page.mouse.move(0, 0);
  const png = await page.screenshot({ path: expect.screenshot });
  const stats = await T(async (b64) => {
    const img = new Image();
    img.src = 'data:image/png;base64,' + b64;
    await img.decode();
    const c = document.createElement('canvas');
    c.width = img.width; c.height = img.height;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const px = g.getImageData(0, 0, c.width, c.height).data;
    const colours = new Map();
    let nonWhite = 0;
    for (let i = 0; i < px.length; i += 4) {
      const key = (px[i] >> 3) << 10 | (px[i + 1] >> 3) << 5 | (px[i + 2] >> 3);
      colours.set(key, (colours.get(key) || 0) + 1);
      if (px[i] < 240 || px[i + 1] < 240 || px[i + 2] < 240) nonWhite++;
    }
    // colours covering at least 0.1% of the picture each
    let big = 0;
    for (const n of colours.values()) if (n * 1000 >= px.length / 4) big++;
    return { big, nonWhite: nonWhite / (px.length / 4), w: c.width, h: c.height };
  }, png.toString('base64'));
  check(stats.big >= 6 && stats.nonWhite > 0.1, 'screenshot is not blank (distinct colours, ink)', JSON.stringify(stats));
  check(errors.length === 0, 'no page errors, no network requests', errors.join('; '));
});
