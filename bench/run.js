#!/usr/bin/env node
// Runs benchmarks: `node bench/run.js [name…]` runs bench/<name>.js for each name, or every
// bench when none is given. Each bench runs in its own process so one bench's TF.js state
// (backend, tensors) cannot colour another's figures. Figures go to stdout as JSON lines.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(benchDir);

const known = readdirSync(benchDir)
  .filter((f) => f.endsWith('.js') && f !== 'run.js')
  .map((f) => f.slice(0, -'.js'.length))
  .sort();

const asked = process.argv.slice(2);
const unknown = asked.filter((n) => !known.includes(n));
if (unknown.length > 0) {
  process.stderr.write(`unknown bench${unknown.length > 1 ? 'es' : ''}: ${unknown.join(', ')}\nknown benches: ${known.join(', ')}\nusage: npm run bench -- [name…]\n`);
  process.exit(2);
}
const names = asked.length > 0 ? asked : known;

// Benches import the built library; a fresh clone has no dist/ yet.
if (!existsSync(path.join(root, 'dist'))) {
  process.stderr.write('dist/ is missing: building with tsc…\n');
  const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) {
    process.stderr.write(`build failed (tsc exit ${r.status ?? r.signal}); fix it and run again\n`);
    process.exit(1);
  }
}

let failed = 0;
for (const name of names) {
  process.stderr.write(`== bench ${name}\n`);
  const code = await new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(benchDir, `${name}.js`)], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', (e) => {
      process.stderr.write(`bench ${name} could not start: ${e.message}\n`);
      resolve(1);
    });
    child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
  });
  if (code !== 0) {
    failed++;
    process.stderr.write(`bench ${name} crashed (exit ${code})\n`);
  }
}
// A missed target is a figure with pass:false, not a failure; only a crash fails the run.
process.exit(failed > 0 ? 1 : 0);
