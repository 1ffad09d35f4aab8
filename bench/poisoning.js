// Poisoning figures: robust outlier detection against scikit-learn's MinCovDet, a streamed
// scan of a 1,000,000-row CSV, label-flip detection on digits, and BadNets / blended
// backdoors on the digits MLP against every detector. One JSON line per figure on stdout,
// progress on stderr; a missed target is `pass:false`, not a failed run.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng, subset } from '../dist/core/index.js';
import { loadDigits, loadDigitsSplit, writeNpy } from '../dist/data/index.js';
import { initTfjs } from '../dist/engines/index.js';
import { createZooModel, defaultEpochs } from '../dist/zoo/index.js';
import {
  activationClustering,
  applyTrigger,
  clusteredOutliers,
  backdoorMetrics,
  cleanAccuracy,
  detectionRates,
  fastMcd,
  neuralCleanse,
  poison,
  rocAuc,
  scanDataset,
  scanInputOf,
  spectralSignatures,
  StripDetector,
} from '../dist/poisoning/index.js';

const BENCH = 'poisoning';
const SEED = 42;
const here = path.dirname(fileURLToPath(import.meta.url));
const peerPython = process.env.BULWARK_PEER_PYTHON || '/usr/bin/python3';
const log = (msg) => process.stderr.write(`[bench poisoning] ${msg}\n`);
const round = (x, d = 4) => (Number.isFinite(x) ? Number(x.toFixed(d)) : x);

function figure(name, value, target, extra = {}) {
  let pass = null;
  if (target && value !== null && value !== undefined && Number.isFinite(value)) {
    const [op, bound] = [target.slice(0, 2), Number(target.slice(2))];
    pass = op === '>=' ? value >= bound : op === '<=' ? value <= bound : value === bound;
  }
  process.stdout.write(`${JSON.stringify({ bench: BENCH, figure: name, value: round(value), target, pass, ...extra })}\n`);
}

function run(cmd, args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => resolve({ code: -1, out, err: e.message }));
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

/** n standard-normal rows in 30 dimensions plus `bad` rows shifted by +3 in the first 5. */
function shifted(n, bad, seed) {
  const d = 30;
  const rng = new Rng(seed);
  const x = new Float64Array((n + bad) * d);
  const truth = new Int32Array(n + bad);
  for (let i = 0; i < n + bad; i++) {
    for (let j = 0; j < d; j++) x[i * d + j] = rng.normal();
    if (i >= n) {
      truth[i] = 1;
      for (let j = 0; j < 5; j++) x[i * d + j] += 3;
    }
  }
  return { x, truth, rows: n + bad, d };
}

async function outliers(dir, n, bad, label) {
  const { x, truth, rows, d } = shifted(n, bad, SEED);
  const oracle = rocAuc(Float64Array.from({ length: rows }, (_, i) => x.subarray(i * d, i * d + d).reduce((s, v) => s + v * v, 0)), truth);
  log(`${label}: FastMCD on ${rows} × ${d}`);
  const t0 = performance.now();
  const mcd = fastMcd(x, rows, d, { seed: SEED });
  const ours = (performance.now() - t0) / 1000;
  const mcdAuc = rocAuc(mcd.distances, truth);
  // The outlier score `bulwark data scan` reports: the robust distance, raised where a row
  // sits far along a direction the outlying rows share (timed apart from the MCD fit).
  const t1 = performance.now();
  const group = clusteredOutliers(x, rows, d, mcd, { seed: SEED });
  const groupSeconds = (performance.now() - t1) / 1000;
  const auc = rocAuc(group.combined, truth);
  const xf = path.join(dir, `x-${label}.npy`);
  const tf = path.join(dir, `t-${label}.npy`);
  await writeNpy(xf, x, [rows, d]);
  await writeNpy(tf, truth, [rows]);
  log(`${label}: scikit-learn MinCovDet (single thread)`);
  const threads = { OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
  const r = await run(peerPython, [path.join(here, 'peers', 'sklearn_mcd.py'), '--x', xf, '--truth', tf], threads);
  let peer = null;
  try {
    peer = JSON.parse(r.out.trim().split('\n').at(-1));
  } catch {
    peer = { error: (r.err || r.out).trim().split('\n').slice(-2).join(' | ') || `exit ${r.code}` };
  }
  const common = { rows, dims: d, outliers: bad, bulwark_seconds: round(ours, 3), bulwark_auc: round(auc, 5), mcd_distance_auc: round(mcdAuc, 5), shared_direction_auc: group.detected ? round(rocAuc(group.projection, truth), 5) : null, shared_direction_p: group.pValue, shared_direction_seconds: round(groupSeconds, 3), oracle_auc: round(oracle, 5), load_1m: round(os.loadavg()[0], 2) };
  const peerInfo = peer?.seconds ? { peer: `scikit-learn ${peer.sklearn} MinCovDet`, peer_seconds: round(peer.seconds, 3), peer_auc: round(peer.auc, 5), peer_threads: peer.threads } : { peer: null, peer_error: peer?.error ?? peer?.skipped };
  log(`${label}: ours ${ours.toFixed(2)} s AUC ${auc.toFixed(5)} (MCD distance alone ${mcdAuc.toFixed(5)}); peer ${peer?.seconds?.toFixed(2) ?? '—'} s AUC ${peer?.auc?.toFixed(5) ?? '—'}; oracle AUC ${oracle.toFixed(5)}`);
  return { ours, auc, peer, common, peerInfo };
}

async function streamScan(dir) {
  const file = path.join(dir, 'big.csv');
  const rows = 1_000_000;
  log(`writing a ${rows} × 30 CSV (1% of rows shifted) to ${file}`);
  const out = createWriteStream(file);
  const rng = new Rng(SEED);
  out.write(Array.from({ length: 30 }, (_, j) => `x${j}`).join(',') + ',label\n');
  let buf = '';
  for (let i = 0; i < rows; i++) {
    const bad = i % 100 === 7;
    const v = Array.from({ length: 30 }, (_, j) => rng.normal() + (bad && j < 5 ? 3 : 0));
    buf += v.map((x) => x.toFixed(4)).join(',') + `,${v[10] + v[11] > 0 ? 1 : 0}\n`;
    if (buf.length > 1 << 20) {
      if (!out.write(buf)) await once(out, 'drain');
      buf = '';
    }
  }
  out.end(buf);
  await once(out, 'finish');
  const bytes = (await stat(file)).size;
  log(`scanning it in passes (a child process, so its peak memory is its own)`);
  const script = `
    import { scanCsvStream } from ${JSON.stringify(path.join(here, '..', 'dist', 'poisoning', 'index.js'))};
    const t0 = performance.now();
    const r = await scanCsvStream(${JSON.stringify(file)}, { label: 'label', scoresFile: ${JSON.stringify(path.join(dir, 'scores.csv'))}, seed: ${SEED} });
    process.stdout.write(JSON.stringify({ seconds: (performance.now() - t0) / 1000, maxRssKb: process.resourceUsage().maxRSS, counts: r.counts }) + '\\n');`;
  const r = await run(process.execPath, ['--input-type=module', '-e', script]);
  let res;
  try {
    res = JSON.parse(r.out.trim().split('\n').at(-1));
  } catch {
    figure('stream_scan_1m_x_30_peak_rss_mb', null, '<=1024', { error: (r.err || r.out).slice(-400) });
    return;
  }
  figure('stream_scan_1m_x_30_peak_rss_mb', res.maxRssKb / 1024, '<=1024', { rows, file_mb: round(bytes / 2 ** 20, 1), seconds: round(res.seconds, 1), flagged: res.counts.flagged, load_1m: round(os.loadavg()[0], 2) });
}

async function labelFlips() {
  const ds = await loadDigits();
  const p = await poison(ds, { kind: 'label-flip', rate: 0.1, seed: SEED });
  const truth = new Uint8Array(ds.y.length);
  for (const i of p.poisonedIndices) truth[i] = 1;
  log(`label flips: scanning ${ds.y.length} digits with ${p.poisonedIndices.length} flipped labels`);
  const t0 = performance.now();
  const r = scanDataset(scanInputOf(p.dataset), { seed: SEED });
  const seconds = (performance.now() - t0) / 1000;
  const flagged = Uint8Array.from({ length: ds.y.length }, (_, i) => (r.reasons.get(i)?.some((x) => x.kind === 'likely mislabeled') ? 1 : 0));
  const rates = detectionRates(flagged, truth);
  const extra = { rows: ds.y.length, flipped: p.poisonedIndices.length, scan_seconds: round(seconds, 1) };
  figure('label_flip_10pct_auc', rocAuc(r.scores.labelIssue, truth), '>=0.98', extra);
  figure('label_flip_10pct_precision', rates.precision, '>=0.85', { ...extra, flagged: rates.tp + rates.fp });
  figure('label_flip_10pct_recall', rates.recall, '>=0.85', extra);
}

async function backdoors() {
  const { train, test } = await loadDigitsSplit();
  const epochs = defaultEpochs.mlp;
  const fit = async (ds, seed = SEED) => {
    const m = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed });
    await m.fit(ds, { epochs, seed });
    return m;
  };
  log(`clean reference: MLP, ${epochs} epochs on ${train.y.length} digits`);
  const clean = await fit(train);
  const cleanAcc = await cleanAccuracy(clean, test);
  clean.dispose();
  figure('digits_mlp_clean_accuracy', cleanAcc, null, { epochs });
  const half = Math.floor(test.y.length / 2);
  const calib = subset(test, [...Array(half).keys()]);
  const held = subset(test, [...Array(test.y.length - half).keys()].map((i) => i + half));
  for (const sc of [
    { name: 'badnets_10pct', opts: { kind: 'badnets', rate: 0.1, target: 0 } },
    { name: 'badnets_1pct', opts: { kind: 'badnets', rate: 0.01, target: 0 } },
    { name: 'blended_10pct', opts: { kind: 'blended', rate: 0.1, target: 0, blend: { alpha: 0.2 } } },
  ]) {
    const p = await poison(train, { ...sc.opts, seed: SEED });
    const truth = new Uint8Array(train.y.length);
    for (const i of p.poisonedIndices) truth[i] = 1;
    log(`${sc.name}: ${p.description}; training`);
    const model = await fit(p.dataset);
    const before = await backdoorMetrics(model, test, p.trigger, p.targetOf);
    const extra = { scenario: sc.name, poisoned_rows: p.poisonedIndices.length, epochs };
    figure(`${sc.name}_asr_no_defence`, before.asr, '>=0.9', { ...extra, clean_accuracy: round(await cleanAccuracy(model, test)) });

    log(`${sc.name}: spectral signatures`);
    const spec = await spectralSignatures(model, p.dataset, { seed: SEED });
    const sr = detectionRates(spec.flagged, truth);
    figure(`${sc.name}_spectral_recall`, sr.recall, '>=0.9', { ...extra, fpr: round(sr.fpr), auroc: round(rocAuc(spec.score, truth)), infected: spec.infectedClasses });
    const keep = [...spec.flagged.keys()].filter((i) => !spec.flagged[i]);
    const retrained = await fit(subset(p.dataset, keep));
    const after = await backdoorMetrics(retrained, test, p.trigger, p.targetOf);
    const accAfter = await cleanAccuracy(retrained, test);
    retrained.dispose();
    figure(`${sc.name}_asr_after_spectral_retrain`, after.asr, '<=0.05', { ...extra, rows_kept: keep.length });
    figure(`${sc.name}_clean_accuracy_drop_after_retrain`, cleanAcc - accAfter, '<=0.015', { ...extra, clean_model: round(cleanAcc), retrained: round(accAfter) });

    log(`${sc.name}: activation clustering`);
    const ac = await activationClustering(model, p.dataset, { seed: SEED });
    const ar = detectionRates(ac.flagged, truth);
    figure(`${sc.name}_activation_clustering_recall`, ar.recall, '>=0.8', { ...extra, fpr: round(ar.fpr), auroc: round(rocAuc(ac.score, truth)), infected: ac.infectedClasses, silhouette_target: round(ac.classes[0]?.silhouette ?? NaN, 3) });

    log(`${sc.name}: STRIP`);
    const strip = await StripDetector.calibrate(model, calib, { frr: 0.05, seed: SEED });
    const others = [...held.y.keys()].filter((i) => held.y[i] !== 0);
    const caught = await strip.detect(applyTrigger(subset(held, others).x, p.trigger));
    const falseRej = await strip.detect(held.x);
    figure(`${sc.name}_strip_caught_at_5pct_frr`, caught.flagged.reduce((a, b) => a + b, 0) / others.length, '>=0.9', { ...extra, clean_rejected: round(falseRej.flagged.reduce((a, b) => a + b, 0) / held.y.length) });

    log(`${sc.name}: Neural Cleanse (300 steps)`);
    const nc = await neuralCleanse(model, calib, { steps: 300, seed: SEED });
    const onlyTarget = nc.flagged.length === 1 && nc.flagged[0] === 0 ? 1 : 0;
    // Where the MAD test stays under 2, whether the target's trigger is still the smallest.
    const targetRank = 1 + nc.triggers.filter((t) => t.maskL1 < nc.triggers[0].maskL1).length;
    figure(`${sc.name}_neural_cleanse_names_target_only`, onlyTarget, '==1', { ...extra, flagged: nc.flagged, target_norm_rank: targetRank, anomaly_index: nc.triggers.map((t) => round(t.anomalyIndex, 2)), mask_l1: nc.triggers.map((t) => round(t.maskL1, 1)) });
    model.dispose();
  }
}

// BULWARK_BENCH_PARTS=outliers,stream,labels,backdoors runs only those parts (default all).
const parts = new Set((process.env.BULWARK_BENCH_PARTS || 'outliers,stream,labels,backdoors').split(','));
const dir = await mkdtemp(path.join(os.tmpdir(), 'bulwark-bench-poisoning-'));
try {
  if (parts.has('outliers')) {
    const small = await outliers(dir, 5000, 100, '5k');
    figure('mcd_outlier_auc_5000x30', small.auc, '>=0.999', { ...small.common, ...small.peerInfo });
    figure('mcd_seconds_vs_sklearn_5000x30', small.peer?.seconds ? small.ours / small.peer.seconds : null, '<=1.0', { ...small.common, ...small.peerInfo });
    const big = await outliers(dir, 100000, 2000, '100k');
    figure('mcd_seconds_vs_sklearn_100000x30', big.peer?.seconds ? big.ours / big.peer.seconds : null, '<=1.0', { ...big.common, ...big.peerInfo });
  }
  if (parts.has('stream')) await streamScan(dir);
  await initTfjs();
  if (parts.has('labels')) await labelFlips();
  if (parts.has('backdoors')) await backdoors();
} finally {
  await rm(dir, { recursive: true, force: true });
}
