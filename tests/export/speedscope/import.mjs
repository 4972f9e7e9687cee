// Reads folded-stack files with speedscope's own importer, in Debian's
// headless Chromium, and prints what speedscope understood:
//
//   node import.mjs MODULES_DIR FILE...
//
// For each FILE, speedscope (the npm package, installed with playwright-core
// by `npm ci` into MODULES_DIR) opens it the way its command line does
// (#localProfilePath= a script that calls speedscope.loadFileFromBase64), and
// the profile is taken back through its Export button: speedscope's own JSON
// (an "evented" profile of open/close events). The events are folded again
// into stacks, and one JSON object per FILE is printed:
//   {"file": FILE, "importer": "...", "stacks": {"a;b;c": weight, ...}}
// Exit status 1 when speedscope cannot read a file, 2 on usage.
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const [modulesDir, ...files] = process.argv.slice(2);
if (!modulesDir || files.length === 0) {
  console.error('usage: node import.mjs MODULES_DIR FILE...');
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(modulesDir), 'noop.js'));
const { chromium } = require('playwright-core');
const index = path.join(path.dirname(require.resolve('speedscope/package.json')), 'dist/release/index.html');

// speedscope's evented profile back to folded stacks: the weight between two
// events belongs to the frames open at the first of them.
function fold(exported) {
  const frames = exported.shared.frames.map((f) => f.name);
  const stacks = {};
  for (const profile of exported.profiles) {
    if (profile.type !== 'evented') throw new Error(`speedscope exported a ${profile.type} profile`);
    const open = [];
    let at = profile.startValue;
    for (const e of profile.events) {
      if (e.at > at && open.length) {
        const key = open.map((i) => frames[i]).join(';');
        stacks[key] = (stacks[key] || 0) + (e.at - at);
      }
      at = e.at;
      if (e.type === 'O') open.push(e.frame);
      else if (open.pop() !== e.frame) throw new Error('speedscope closed a frame it had not opened');
    }
  }
  return stacks;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
let status = 0;
try {
  for (const file of files) {
    const loader = path.resolve(file) + '.load.js';
    const b64 = readFileSync(file).toString('base64');
    writeFileSync(loader, `speedscope.loadFileFromBase64(${JSON.stringify(path.basename(file))}, "${b64}")\n`);
    const page = await browser.newPage({ acceptDownloads: true });
    const logs = [];
    page.on('console', (m) => logs.push(m.text()));
    page.on('pageerror', (e) => logs.push('error: ' + e.message));
    await page.goto('file://' + index + '#localProfilePath=' + loader);
    try {
      await page.waitForFunction(() => document.title.endsWith(' - speedscope'), null, { timeout: 30000 });
    } catch {
      console.error(`speedscope did not read ${file}: ${logs.join(' | ')}`);
      status = 1;
      await page.close();
      continue;
    }
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByText('Export').click()]);
    const exported = JSON.parse(readFileSync(await download.path(), 'utf8'));
    const importer = logs.find((l) => l.startsWith('Importing as')) || '';
    console.log(JSON.stringify({ file, importer, stacks: fold(exported) }));
    await page.close();
  }
} finally {
  await browser.close();
}
process.exit(status);
