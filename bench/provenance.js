// Provenance figures: manifest hashing beside coreutils sha256sum on 1 GiB, record-level
// manifests and verification on a million-row CSV, and the SQLite ledger's durable append
// rate and verification time. One JSON line per figure on stdout; progress on stderr.
// A missed target is `pass:false`, not a failed run. Everything lives in one temp dir that
// is removed at the end, on failure and on Ctrl-C.
import { spawn, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, fdatasyncSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  createManifest,
  loadPrivateKey,
  loadPublicKey,
  openSqliteLedger,
  signPath,
  verifyLedger,
  verifyPath,
  writeKeyPair,
  writeSignature,
} from '../dist/provenance/index.js';

const BENCH = 'provenance';
const GIB = 1 << 30;
const BLOCK = 64 << 20;
const CSV_ROWS = 1_000_000;
const EDITS_PER_KIND = 10;
const LEDGER_SECONDS = 3;
const IN_FLIGHT = 64;
const LEDGER_ENTRIES = 1_000_000;
const LEDGER_BATCH = 10_000;
// What the SQLite store promises (src/provenance/ledger/sqlite-store.ts): each commit fsyncs the WAL before the call resolves.
const DURABILITY = 'WAL + synchronous=FULL: the WAL is fsynced before each append/appendMany resolves';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const provenanceUrl = pathToFileURL(path.join(root, 'dist', 'provenance', 'index.js')).href;

const log = (msg) => process.stderr.write(`[bench provenance] ${msg}\n`);
const round = (x, d = 4) => (Number.isFinite(x) ? Number(x.toFixed(d)) : x);
const seconds = (t0) => (performance.now() - t0) / 1000;
// Other jobs on a small machine skew timings; the 1-minute load beside a figure says so.
const load1m = () => round(os.loadavg()[0], 2);

/** `target` is an operator and a JSON value: ">=0.8", "<150", "==true". */
function figure(name, value, target, extra = {}) {
  const [, op, text] = /^(>=|<=|==|<|>)(.*)$/.exec(target);
  const bound = JSON.parse(text);
  const checks = { '>=': (v) => v >= bound, '<=': (v) => v <= bound, '<': (v) => v < bound, '>': (v) => v > bound, '==': (v) => v === bound };
  const pass = value === null || value === undefined ? null : checks[op](value);
  process.stdout.write(`${JSON.stringify({ bench: BENCH, figure: name, value, target, pass, ...extra })}\n`);
}

// ---------------------------------------------------------------- 1 GiB manifest vs sha256sum

function writeBigFile(file) {
  const block = randomFillSync(Buffer.allocUnsafe(BLOCK));
  const fd = openSync(file, 'w');
  try {
    for (let done = 0; done < GIB; done += BLOCK) writeSync(fd, block);
  } finally {
    closeSync(fd);
  }
}

/** The tools or child node process running now, stopped by the Ctrl-C handler along with us. */
const running = new Set();
function track(child) {
  running.add(child);
  child.on('close', () => running.delete(child));
  return child;
}

/** Runs a digest tool on `file`; resolves to wall seconds (process start included) and the hex digest. */
function timeTool(cmd, args, file) {
  // Not spawnSync: a blocked event loop would hold off the Ctrl-C handler that removes the 1 GiB file.
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = track(spawn(cmd, [...args, file], { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => resolve({ error: e.code === 'ENOENT' ? `${cmd} not found` : e.message }));
    child.on('close', (code) => {
      const s = seconds(t0);
      if (code !== 0) resolve({ error: `${cmd} exited ${code}: ${err.trim()}` });
      else resolve({ seconds: s, hex: /[0-9a-f]{64}/.exec(out)?.[0] });
    });
  });
}

async function timeManifest(file) {
  const t0 = performance.now();
  const m = await createManifest([file]);
  return { seconds: seconds(t0), hex: m.predicate.resources[0].digest };
}

/** Peak RSS of a fresh process that imports the library and builds the manifest, nothing else. */
function manifestChildRss(file) {
  const code = `
    const before = process.resourceUsage().maxRSS;
    const { createManifest } = await import(process.env.BULWARK_PROVENANCE_URL);
    const t0 = performance.now();
    const m = await createManifest([process.env.BULWARK_BENCH_FILE]);
    const seconds = (performance.now() - t0) / 1000;
    process.stdout.write(JSON.stringify({ before_kb: before, max_rss_kb: process.resourceUsage().maxRSS, seconds, hex: m.predicate.resources[0].digest }) + '\\n');`;
  return new Promise((resolve) => {
    const child = track(
      spawn(process.execPath, ['--input-type=module', '-e', code], {
        env: { ...process.env, BULWARK_PROVENANCE_URL: provenanceUrl, BULWARK_BENCH_FILE: file },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => resolve({ error: e.message }));
    child.on('close', (code) => {
      try {
        if (code === 0) return resolve(JSON.parse(out.trim().split('\n').at(-1)));
      } catch {
        // reported below
      }
      resolve({ error: `child exited ${code}: ${(err || out).trim().split('\n').slice(-3).join(' | ')}` });
    });
  });
}

async function benchBigManifest(dir) {
  const file = path.join(dir, 'model.bin');
  try {
    log('writing a 1 GiB file (a 64 MiB random block repeated; SHA-256 speed does not depend on content)');
    writeBigFile(file);
    // Best of 2 each, alternating who goes first so neither side always inherits a warmer cache.
    const runs = { ours: [], sha256sum: [], openssl: [] };
    const hexes = new Set();
    for (let r = 0; r < 2; r++) {
      const order = r === 0 ? ['ours', 'sha256sum', 'openssl'] : ['openssl', 'sha256sum', 'ours'];
      for (const who of order) {
        const res = who === 'ours' ? await timeManifest(file) : who === 'sha256sum' ? await timeTool('sha256sum', ['-b'], file) : await timeTool('openssl', ['dgst', '-sha256', '-r'], file);
        if (res.error) log(`${who}: ${res.error}`);
        else log(`${who}: ${res.seconds.toFixed(3)} s`);
        runs[who].push(res);
        if (res.hex) hexes.add(res.hex);
      }
    }
    const best = (list) => {
      const ok = list.filter((x) => x.error === undefined).map((x) => x.seconds);
      return ok.length > 0 ? Math.min(...ok) : null;
    };
    const ours = best(runs.ours);
    const peer = best(runs.sha256sum);
    const ssl = best(runs.openssl);
    const mbps = (s) => (s === null ? null : round(GIB / (1 << 20) / s, 1));
    const coreutils = spawnSync('sha256sum', ['--version'], { encoding: 'utf8' }).stdout?.split('\n')[0] ?? null;
    const extra = {
      bytes: GIB,
      timing: 'best of 2 each, alternating order, same run, file in page cache',
      bulwark_seconds: round(ours, 3),
      bulwark_mib_per_s: mbps(ours),
      peer: coreutils,
      peer_seconds: round(peer, 3),
      peer_mib_per_s: mbps(peer),
      // Debian's coreutils sha256sum is gnulib's portable C (no OpenSSL, so no SHA-NI); openssl dgst is the fast peer.
      openssl_seconds: round(ssl, 3),
      openssl_mib_per_s: mbps(ssl),
      ratio_vs_openssl: ours !== null && ssl !== null ? round(ssl / ours, 3) : null,
      digests_agree: hexes.size === 1,
      cpus: os.availableParallelism(),
      load_1m: load1m(),
    };
    if (runs.sha256sum.every((x) => x.error)) extra.skipped = runs.sha256sum[0].error;
    figure('manifest_1gib_throughput_vs_sha256sum', ours !== null && peer !== null ? round(peer / ours, 3) : null, '>=0.8', extra);

    log('peak RSS: a fresh node process that only builds the manifest of the 1 GiB file');
    const child = await manifestChildRss(file);
    if (child.error) {
      log(`manifest child failed: ${child.error}`);
      figure('manifest_1gib_peak_rss_mb', null, '<150', { pass: false, error: child.error });
      process.exitCode = 1;
    } else {
      figure('manifest_1gib_peak_rss_mb', round(child.max_rss_kb / 1024, 1), '<150', {
        measure: 'process.resourceUsage().maxRSS of a child that imports dist and runs createManifest only',
        rss_after_import_mb: round(child.before_kb / 1024, 1),
        child_seconds: round(child.seconds, 3),
        digest_agrees: hexes.has(child.hex),
      });
    }
  } finally {
    rmSync(file, { force: true });
  }
}

// ---------------------------------------------------------------- million-row CSV records

/** mulberry32: a seeded generator, so the CSV (and its edits) are the same every run. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const LABELS = ['cat', 'dog', 'bird', '"fish, small"', 'horse', '"deer, red"', 'frog', 'truck'];

/**
 * Writes the signed CSV and a copy with 10 changed, 10 inserted and 10 deleted rows, spread
 * ~33k rows apart so no two edits share a stretch (the diff pairs a removal and an insertion
 * in one stretch as "changed"). Returns the rows verification must name: changed and removed
 * counted in the old file, added in the new one.
 */
function writeCsvPair(oldFile, newFile) {
  const rand = rng(1234);
  const kinds = ['change', 'insert', 'delete'];
  const edits = new Map();
  const total = 3 * EDITS_PER_KIND;
  for (let k = 0; k < total; k++) {
    const pos = Math.floor(((k + 0.5) * CSV_ROWS) / total) + Math.floor(rand() * 1000) - 500;
    edits.set(pos, kinds[k % 3]);
  }
  const expected = { changed: [], added: [], removed: [] };
  const header = 'id,user,score,count,label,ts\n';
  const fdOld = openSync(oldFile, 'w');
  const fdNew = openSync(newFile, 'w');
  try {
    writeSync(fdOld, header);
    writeSync(fdNew, header);
    let newRows = 0;
    let bufOld = [];
    let bufNew = [];
    const row = (id, i) => `${id},u${Math.floor(rand() * 100000)},${(rand() * 1000).toFixed(3)},${Math.floor(rand() * 5000)},${LABELS[i % LABELS.length]},${1700000000 + i * 7}\n`;
    for (let i = 1; i <= CSV_ROWS; i++) {
      const line = row(i, i);
      bufOld.push(line);
      const edit = edits.get(i);
      if (edit === 'change') {
        bufNew.push(line.replace(/,u\d+,/, ',tampered,'));
        newRows++;
        expected.changed.push(i);
      } else if (edit === 'insert') {
        bufNew.push(row(`new${i}`, i));
        newRows++;
        expected.added.push(newRows);
        bufNew.push(line);
        newRows++;
      } else if (edit === 'delete') {
        expected.removed.push(i);
      } else {
        bufNew.push(line);
        newRows++;
      }
      if (bufOld.length === 10_000) {
        writeSync(fdOld, bufOld.join(''));
        writeSync(fdNew, bufNew.join(''));
        bufOld = [];
        bufNew = [];
      }
    }
    writeSync(fdOld, bufOld.join(''));
    writeSync(fdNew, bufNew.join(''));
    expected.newRows = newRows;
  } finally {
    closeSync(fdOld);
    closeSync(fdNew);
  }
  return expected;
}

const sameList = (a, b) => Array.isArray(a) && a.length === b.length && a.every((x, i) => x === b[i]);

async function benchRecords(dir) {
  mkdirSync(path.join(dir, 'signed'));
  mkdirSync(path.join(dir, 'edited'));
  // Same base name in both places: a single-file manifest names its file ".", shown by base name.
  const oldCsv = path.join(dir, 'signed', 'data.csv');
  const newCsv = path.join(dir, 'edited', 'data.csv');
  try {
    log(`writing a ${CSV_ROWS.toLocaleString('en')}-row CSV and an edited copy`);
    const expected = writeCsvPair(oldCsv, newCsv);
    const { size } = statSync(oldCsv);

    let t0 = performance.now();
    const manifest = await createManifest([oldCsv], { records: true });
    const manifestSeconds = seconds(t0);
    const rec = manifest.predicate.bulwark?.records?.[0];
    log(`records manifest: ${manifestSeconds.toFixed(2)} s, ${rec?.count} records`);
    figure('records_manifest_1m_rows_seconds', round(manifestSeconds, 3), '<20', {
      rows: CSV_ROWS,
      records_counted: rec?.count ?? null,
      bytes: size,
      mib_per_s: round(size / (1 << 20) / manifestSeconds, 1),
      load_1m: load1m(),
    });

    const keys = await writeKeyPair('ed25519', path.join(dir, 'bench-key'));
    const key = await loadPrivateKey(keys.privateFile);
    const pub = await loadPublicKey(keys.publicFile);
    const sigFile = path.join(dir, 'data.csv.sig');
    t0 = performance.now();
    await writeSignature(await signPath(oldCsv, key, { records: true, signatureFile: sigFile }), sigFile);
    const signSeconds = seconds(t0);
    log(`signed with records in ${signSeconds.toFixed(2)} s`);

    t0 = performance.now();
    const result = await verifyPath(newCsv, sigFile, pub);
    const verifySeconds = seconds(t0);
    const change = result.changes[0];
    const got = change?.records ?? {};
    const exact =
      result.valid === false &&
      result.changes.length === 1 &&
      change.kind === 'modified' &&
      !got.headerChanged &&
      sameList(got.changed, expected.changed) &&
      sameList(got.added, expected.added) &&
      sameList(got.removed, expected.removed);
    log(`verify: ${verifySeconds.toFixed(2)} s, rows named ${exact ? 'exactly' : 'WRONGLY'}`);
    const extra = {
      verify_seconds: round(verifySeconds, 3),
      sign_seconds: round(signSeconds, 3),
      key: 'ed25519',
      edits: `${EDITS_PER_KIND} changed, ${EDITS_PER_KIND} inserted, ${EDITS_PER_KIND} deleted, ~33k rows apart`,
      numbering: 'changed/removed: rows of the signed file; added: rows of the edited file',
    };
    if (!exact) {
      Object.assign(extra, {
        expected: { changed: expected.changed, added: expected.added, removed: expected.removed },
        got: result.changes.map((c) => ({ path: c.path, kind: c.kind, records: c.records })),
        valid: result.valid,
        reason: result.reason,
      });
    }
    figure('records_verify_names_exact_rows', exact, '==true', extra);
  } finally {
    rmSync(oldCsv, { force: true });
    rmSync(newCsv, { force: true });
  }
}

// ---------------------------------------------------------------- ledger

/** How many write+fdatasync pairs this disk does per second: the ceiling for one-at-a-time durable appends. */
function diskSyncsPerSecond(dir) {
  const file = path.join(dir, 'fsync-probe');
  const fd = openSync(file, 'w');
  const page = Buffer.alloc(4096, 1);
  let n = 0;
  const t0 = performance.now();
  try {
    while (performance.now() - t0 < 1000) {
      writeSync(fd, page, 0, page.length, (n % 256) * 4096);
      fdatasyncSync(fd);
      n++;
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  return n / seconds(t0);
}

const draft = (i) => ({ kind: 'inference', payload: { i, model: 'digits-mlp', input_sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', label: i % 10 } });

async function benchLedgerAppends(dir) {
  const fsyncs = diskSyncsPerSecond(dir);
  log(`disk: ${fsyncs.toFixed(0)} write+fdatasync per second`);

  const file = path.join(dir, 'appends.sqlite');
  const store = await openSqliteLedger(file, { create: true });
  try {
    let n = 0;
    let t0 = performance.now();
    while (performance.now() - t0 < LEDGER_SECONDS * 1000) await store.append(draft(n++));
    const single = n / seconds(t0);
    log(`sequential awaited appends: ${single.toFixed(0)}/s`);
    figure('ledger_single_appends_per_second', round(single, 0), '>=5000', {
      pattern: 'one append at a time, each awaited before the next',
      appends: n,
      seconds: LEDGER_SECONDS,
      durability: DURABILITY,
      disk_fdatasyncs_per_second: round(fsyncs, 0),
      load_1m: load1m(),
    });

    let m = 0;
    let rounds = 0;
    t0 = performance.now();
    while (performance.now() - t0 < LEDGER_SECONDS * 1000) {
      await Promise.all(Array.from({ length: IN_FLIGHT }, () => store.append(draft(m++))));
      rounds++;
    }
    const concurrent = m / seconds(t0);
    log(`${IN_FLIGHT} in flight: ${concurrent.toFixed(0)}/s`);
    figure('ledger_concurrent_appends_per_second', round(concurrent, 0), '>=5000', {
      pattern: `rounds of ${IN_FLIGHT} append() calls started together in one process, each round awaited with Promise.all`,
      in_flight: IN_FLIGHT,
      appends: m,
      rounds,
      seconds: LEDGER_SECONDS,
      durability: DURABILITY,
      load_1m: load1m(),
    });
  } finally {
    await store.close();
    for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
  }
}

async function benchLedgerVerify(dir) {
  const file = path.join(dir, 'million.sqlite');
  try {
    const store = await openSqliteLedger(file, { create: true });
    let buildSeconds;
    try {
      log(`building a ${LEDGER_ENTRIES.toLocaleString('en')}-entry ledger with appendMany(${LEDGER_BATCH.toLocaleString('en')})`);
      const t0 = performance.now();
      for (let at = 0; at < LEDGER_ENTRIES; at += LEDGER_BATCH) {
        await store.appendMany(Array.from({ length: LEDGER_BATCH }, (_, k) => draft(at + k)));
      }
      buildSeconds = seconds(t0);
      log(`built in ${buildSeconds.toFixed(2)} s`);
    } finally {
      await store.close();
    }
    // Verification opens the file as a reader would (`bulwark ledger verify`).
    const reader = await openSqliteLedger(file, { readonly: true });
    try {
      const t0 = performance.now();
      const result = await verifyLedger(reader);
      const verifySeconds = seconds(t0);
      log(`verified ${result.entries} entries in ${verifySeconds.toFixed(2)} s (valid: ${result.valid})`);
      const ok = result.valid && result.entries === LEDGER_ENTRIES;
      figure('ledger_verify_1m_seconds', ok ? round(verifySeconds, 3) : null, '<30', {
        ...(ok ? {} : { pass: false, error: `verifyLedger said valid=${result.valid}, entries=${result.entries}: ${result.firstBad?.message ?? ''}` }),
        entries: result.entries,
        valid: result.valid,
        entries_per_second: round(result.entries / verifySeconds, 0),
        build_seconds: round(buildSeconds, 3),
        build_appends_per_second: round(LEDGER_ENTRIES / buildSeconds, 0),
        build: `appendMany in batches of ${LEDGER_BATCH}, one durable transaction each`,
        load_1m: load1m(),
      });
      if (!ok) process.exitCode = 1;
    } finally {
      await reader.close();
    }
  } finally {
    for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
  }
}

// ---------------------------------------------------------------- main

const dir = mkdtempSync(path.join(os.tmpdir(), 'bulwark-bench-provenance-'));
// try/finally does not run on a signal; a leftover 1 GiB file would.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    for (const child of running) child.kill();
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  });
}
const started = performance.now();
try {
  log(`temp dir ${dir}`);
  await benchBigManifest(dir);
  await benchRecords(dir);
  await benchLedgerAppends(dir);
  await benchLedgerVerify(dir);
  log(`done in ${seconds(started).toFixed(1)} s`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
