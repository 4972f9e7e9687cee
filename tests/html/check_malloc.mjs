// Drives a `vmatrace report --html` page of the mallocgrowth workload in
// headless Chromium (as check_timeline.mjs does) and checks the malloc
// growth view against what the workload wrote about its own growth steps
// (tests/e2e/html_e2e_test.cpp writes EXPECT.json):
//   - the "malloc growth by call site" panel is shown and lists every
//     step's call-site function with its allocator, ranked by bytes;
//   - every step has a growth marker with its allocator, mechanism and call
//     site, whose VMA holds the step's pointer, drawn at that VMA's place
//     on the address axis and at its moment, and whose tooltip (the hook's
//     hoverText and the real one under the mouse) names the call site.
// Prints one "ok"/"not ok" line per check and exits 1 when any failed.
//
// usage: node check_malloc.mjs MODULES_DIR EXPECT.json
import { check, checkPage, readArgs } from './browser.mjs';

const { modulesDir, expect } = readArgs('check_malloc.mjs');

await checkPage(modulesDir, expect, {}, async (page, errors) => {
  const T = (fn, arg) => page.evaluate(fn, arg);
  const pid = await T((comm) => (window.vmatraceTimeline.data.processes.find((p) => p.comm === comm) || {}).pid, expect.comm);
  if (!check(pid !== undefined, `the page has the ${expect.comm} process`)) process.exitCode = 1;
  await page.selectOption('#process', String(pid));
  const q = await T(() => window.vmatraceTimeline.query());
  check(q.pid === pid, `the workload's process ${pid} is shown`, String(q.pid));

  // ---- the panel: shown, every step's call site, ranked by bytes ----
  check(await page.locator('#malloc-panel').isVisible(), 'the malloc growth panel is shown');
  const rows = await page.locator('#malloc tr').allTextContents();
  const sites = q.malloc_panel || [];
  check(rows.length === sites.length + 1 && sites.length > 0, 'one table row per call site (and a header)',
    `${rows.length} rows, ${sites.length} sites`);
  check(sites.every((s, i) => i === 0 || sites[i - 1].bytes >= s.bytes), 'call sites ranked by bytes, most first',
    JSON.stringify(sites.map((s) => s.bytes)));
  for (const st of expect.steps) {
    const alloc = st.allocator === '-' ? '(none)' : st.allocator;
    const row = rows.findIndex((r) => r.startsWith(alloc) && r.includes(st.function + ' (mallocgrowth.c:'));
    check(row > 0, `panel lists ${alloc} from ${st.function}`, rows.join(' | '));
  }
  const rank = (fn, alloc) => sites.findIndex((s) => s.function === fn && s.allocator === alloc);
  check(rank('realloc_to_8mib', 'realloc') < rank('large_calloc', 'calloc') &&
        rank('large_calloc', 'calloc') < rank('large_posix_memalign', 'posix_memalign') &&
        rank('large_posix_memalign', 'posix_memalign') < rank('small_mallocs_grow_heap', 'malloc') &&
        rank('realloc_to_8mib', 'realloc') >= 0,
    'realloc (6 MiB) before calloc (4 MiB) before posix_memalign (3 MiB) before the heap growth',
    JSON.stringify(sites.map((s) => s.allocator + ' ' + s.function)));

  // ---- a marker per step, where its VMA is, naming its call site ----
  const growth = q.growth;
  check(growth.length >= expect.steps.length, 'growth markers drawn', String(growth.length));
  const canvas = await page.locator('#timeline').boundingBox();
  let hovered = false;
  for (const st of expect.steps) {
    const ptr = parseInt(st.ptr, 16);
    const alloc = st.allocator === '-' ? '' : st.allocator;
    const hits = growth.filter((g) => g.allocator === alloc && g.via === st.via &&
      g.site.includes(` from ${st.function} (mallocgrowth.c:`));
    if (!check(hits.length === 1, `one ${st.allocator} via ${st.via} marker from ${st.function}`,
      JSON.stringify(growth.map((g) => g.site)))) continue;
    const g = hits[0], lo = parseInt(g.vma_start, 16), hi = parseInt(g.vma_end, 16);
    check(lo <= ptr && ptr < hi, `${st.function}: the marker's VMA ${g.vma_start}-${g.vma_end} holds ${st.ptr}`);
    const band = q.bands.find((b) => b.start === g.vma_start && b.end === g.vma_end && b.t_begin <= g.t &&
      (b.t_end < 0 || g.t < b.t_end));
    check(band !== undefined, `${st.function}: the grown VMA is a band at the marker's moment`);
    const x = await T((t) => window.vmatraceTimeline.timeToX(t), g.t);
    const ylo = await T((a) => window.vmatraceTimeline.addrToY(a), lo);
    const yhi = await T((a) => window.vmatraceTimeline.addrToY(a), hi);
    check(Math.abs(g.x - x) <= 1 && g.y <= ylo + 0.5 && g.y >= yhi - 0.5,
      `${st.function}: marker drawn at its moment, inside its VMA on the address axis`,
      `marker ${g.x},${g.y}; expected x ${x}, y in ${yhi}..${ylo}`);
    const text = await T(([x, y]) => window.vmatraceTimeline.hoverText(x, y), [g.x, g.y]);
    check(text !== null && text.includes('malloc growth: ') && text.includes(g.site),
      `${st.function}: the marker's tooltip names the call site`, text);
    if (!hovered && st.function === 'large_calloc') {
      hovered = true;
      await page.mouse.move(canvas.x + g.x, canvas.y + g.y);
      await page.waitForTimeout(50);
      const tip = (await page.locator('#tip').isVisible()) ? await page.locator('#tip').textContent() : '(no tooltip)';
      check(tip.includes('calloc via mmap from large_calloc (mallocgrowth.c:'), 'hovering the calloc marker shows its call site', tip);
    }
  }
  check(hovered, 'the calloc marker was hovered');
  check(errors.length === 0, 'no page errors', errors.join('; '));
});
