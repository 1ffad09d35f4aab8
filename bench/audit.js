// The audit adds orchestration, not different numbers (issue 9): runs the full default audit
// in-process (the built-in digits MLP, seed 42, no ledger, nothing written), then recomputes each
// section's key figures by calling the areas' public functions directly, with the settings the
// section uses, the same seed and the same model, the way each area's bench calls them. One JSON
// line per figure: the audit's value, the direct one as `peer_value`, target '==' (exact equality
// of the unrounded numbers, or of the text where the report states a figure only in its evidence).
// Where an area's bench measures the same quantity at a larger size (or with stronger settings),
// a second line `sizes_differ: true` puts the bench's figure beside the audit's, with both sizes.
//
// The audit runs against a fresh cache directory, so it trains its target the way the area benches
// train theirs; whether the user's own cached model (~/.cache/bulwark) is that same model is
// reported as a figure of its own, since a stale cache would make `bulwark audit` disagree.
//
// BULWARK_BENCH_AUDIT_BENCH_SIZES=0 leaves out the bench-size lines (about a third of the run
// time); BULWARK_BENCH_AUDIT_RERUN=0 leaves out the second audit, from the cached target.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Rng, argmaxRows, modelAccuracy, subset } from '../dist/core/index.js';
import { loadDigitsSplit } from '../dist/data/index.js';
import { initTfjs, loadTfjsModel } from '../dist/engines/index.js';
import { createZooModel, defaultEpochs } from '../dist/zoo/index.js';
import { cacheDir, runAudit } from '../dist/audit/index.js';
import { sha256Bytes, sha256File } from '../dist/provenance/index.js';
import { FeatureSqueezingDetector, certifiedAccuracy, certify, fgsm, pgd, square, summarizeEvasion } from '../dist/evasion/index.js';
import { freshCopy, lossThresholdAttack, membershipSample, trainDpSgd } from '../dist/privacy/index.js';
import { backdoorMetrics, cleanAccuracy, detectionRates, neuralCleanse, poison, rocAuc, spectralSignatures } from '../dist/poisoning/index.js';
import { extract } from '../dist/extraction/index.js';

const BENCH = 'audit';
const SEED = 42;
const BENCH_SIZES = process.env.BULWARK_BENCH_AUDIT_BENCH_SIZES !== '0';
const RERUN = process.env.BULWARK_BENCH_AUDIT_RERUN !== '0';

// The settings each section uses on the built-in example (full run, MLP target), mirrored from
// src/audit/sections/*.ts. Should a section change them, its figures below stop matching: the
// line then says which settings to bring over.
const EVASION = { samples: 200, steps: 20, grid: [0.02, 0.05, 0.1, 0.15, 0.2, 0.3], headline: 0.1, squareSamples: 50, squareBudget: 1000, fpr: 0.05, smoothSamples: 60, sigma: 0.25, n: 500, n0: 50, alpha: 0.001 };
const POISONING = { trainRows: 4000, testRows: 1000, epochs: 8, rate: 0.1, target: 0, ncSteps: 200, ncBatch: 16 };
const PRIVACY = { epsilons: [3, 1, 8], delta: 1e-5, trainSubset: 4000, epochs: 10, evaluate: 1000 };
const EXTRACTION = { budget: 5000, holdout: 1000, checkpoints: [500, 2000] };

const log = (msg) => process.stderr.write(`[bench audit] ${msg}\n`);
const range = (n) => Array.from({ length: n }, (_, i) => i);
const quiet = { start() {}, advance() {}, done() {}, log() {} };

function equal(a, b) {
  if (typeof a === 'number' && typeof b === 'number') return a === b || (Number.isNaN(a) && Number.isNaN(b));
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A long curve is shown by its length and digest; it is compared point by point all the same. */
const shown = (v) =>
  Array.isArray(v) && v.length > 12 ? { points: v.length, sha256: createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 16) } : v;

let mismatches = 0;
/** A figure the audit reports beside the same figure computed directly: they must be identical. */
function same(figure, value, peerValue, extra = {}) {
  const pass = value !== undefined && equal(value, peerValue);
  if (!pass) mismatches++;
  process.stdout.write(`${JSON.stringify({ bench: BENCH, figure, value: shown(value), peer_value: shown(peerValue), target: '==', pass, ...extra })}\n`);
}
/** The audit's figure beside the area bench's figure for the same quantity at the bench's size. */
function beside(figure, value, benchValue, auditSize, benchSize, extra = {}) {
  process.stdout.write(
    `${JSON.stringify({ bench: BENCH, figure, value, peer_value: benchValue, target: null, pass: null, sizes_differ: true, audit_size: auditSize, bench_size: benchSize, ...extra })}\n`,
  );
}

async function timed(label, body) {
  const t0 = performance.now();
  const r = await body();
  log(`${label}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return r;
}

// --- The report, read the way a user reads report.json.
function finding(report, id) {
  for (const s of report.sections) {
    const f = s.findings.find((x) => x.id === id);
    if (f) return f;
  }
  const section = report.sections.find((s) => id.startsWith(`${s.id}.`));
  throw new Error(`the audit's report has no finding '${id}'${section ? ` (section '${section.id}' ${section.status}${section.reason ? `: ${section.reason}` : ''})` : ''}`);
}
const series = (f, name) => f.chart.series.find((s) => s.name === name || s.name.startsWith(name)).points;
const evidence = (f, re) => {
  for (const line of f.evidence) {
    const m = re.exec(line);
    if (m) return m;
  }
  throw new Error(`finding '${f.id}': no evidence line matches ${re}`);
};
const pct1 = (v) => `${(v * 100).toFixed(1)}%`;
const pct2 = (v) => `${(v * 100).toFixed(2)}%`;
const sig3 = (x) => Number(x.toPrecision(3));

function weightsOf(model) {
  return model.net.getWeights().map((w) => w.dataSync());
}
function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i].length !== b[i].length) return Infinity;
    for (let j = 0; j < a[i].length; j++) m = Math.max(m, Math.abs(a[i][j] - b[i][j]));
  }
  return m;
}

const backend = await initTfjs();
const defaultCache = path.join(cacheDir(), `digits-mlp-seed${SEED}`);
const tmpCache = await mkdtemp(path.join(os.tmpdir(), 'bulwark-bench-audit-'));
process.env.BULWARK_CACHE_DIR = tmpCache;
log(`TF.js backend ${backend}; the audit trains its target in ${tmpCache}; load ${os.loadavg()[0].toFixed(2)}`);
const tensorsBefore = tf.memory().numTensors;
const t0 = performance.now();

try {
  // ---------------------------------------------------------------- the audit
  const { report } = await timed('full audit (training its target included)', () => runAudit({ seed: SEED, ledger: null }));
  const auditSeconds = report.sections.reduce((s, x) => s + x.seconds, 0);
  for (const s of report.sections) log(`  section ${s.id}: ${s.status} ${s.seconds.toFixed(1)} s${s.reason ? ` (${s.reason})` : ''}`);

  // ---------------------------------------------------------------- the audit again, from its cache
  // `bulwark audit` nearly always runs on the cached target (loaded from disk, not the model
  // just trained): every finding's value and chart must come out the same.
  if (RERUN) {
    const { report: again } = await timed('full audit again, its target loaded from the cache', () => runAudit({ seed: SEED, ledger: null }));
    const strip = (r) => new Map(r.sections.flatMap((s) => s.findings.map((f) => [f.id, JSON.stringify({ value: f.value, evidence: f.evidence, chart: f.chart })])));
    const [a, b] = [strip(report), strip(again)];
    const differ = [...new Set([...a.keys(), ...b.keys()])].filter((id) => a.get(id) !== b.get(id));
    same('rerun_from_cache.findings_differing', differ.length, 0, {
      findings: a.size,
      differing: differ,
      what: 'every finding (value, evidence, chart) of an audit whose target was trained, against one whose target was loaded from the cache it had just written',
    });
  }

  // ---------------------------------------------------------------- the model, as the area benches train it
  const { train, test } = await loadDigitsSplit();
  const model = await timed('direct: training the MLP as bench/evasion.js does', async () => {
    const m = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: SEED });
    await m.fit(train, { epochs: defaultEpochs.mlp, seed: SEED });
    return m;
  });
  const direct = weightsOf(model);
  {
    const { model: audited } = await loadTfjsModel(path.join(tmpCache, `digits-mlp-seed${SEED}`));
    same('model.weights_max_abs_diff', maxAbsDiff(weightsOf(audited), direct), 0, { what: "the audit's trained target (as saved to its cache) against the MLP trained directly" });
    audited.dispose();
    const cached = (await stat(path.join(defaultCache, 'model.json')).catch(() => null)) ? await loadTfjsModel(defaultCache).catch(() => null) : null;
    if (cached) {
      const meta = JSON.parse(await readFile(path.join(defaultCache, 'bulwark.json'), 'utf8').catch(() => '{}'));
      same('default_cache_model.weights_max_abs_diff', maxAbsDiff(weightsOf(cached.model), direct), 0, {
        what: `the model 'bulwark audit' would audit (${defaultCache}, created ${meta.createdAt ?? '?'}) against the MLP trained directly; non-zero: that cache is stale and the CLI's audit reports another model's figures`,
      });
      cached.model.dispose();
    } else {
      process.stdout.write(`${JSON.stringify({ bench: BENCH, figure: 'default_cache_model.weights_max_abs_diff', value: null, peer_value: 0, target: '==', pass: null, note: `no cached model in ${defaultCache}` })}\n`);
    }
  }
  // The model's fingerprint, file by file, against the same files of the user's cached target
  // (trained earlier, by another process): the weights and topology repeat bit for bit; the
  // metadata file records when it was trained and how long it took, so its digest cannot.
  if (await stat(path.join(defaultCache, 'model.json')).catch(() => null)) {
    for (const line of finding(report, 'provenance.model-fingerprint').evidence) {
      const m = /^sha256 ([0-9a-f]{64})\s+\d+ bytes\s+(.*)$/.exec(line);
      if (!m) continue;
      const name = path.basename(m[2]);
      const other = await sha256File(path.join(defaultCache, name)).catch(() => null);
      if (name === 'bulwark.json') {
        process.stdout.write(
          `${JSON.stringify({ bench: BENCH, figure: `provenance.model_file_sha256 ${name}`, value: m[1], peer_value: other?.sha256 ?? null, target: null, pass: null, note: 'holds createdAt and metrics.trainSeconds, so a fresh training of the same seed fingerprints differently; the figures do not depend on it' })}\n`,
        );
      } else {
        same(`provenance.model_file_sha256 ${name}`, m[1], other?.sha256 ?? null, { against: path.join(defaultCache, name) });
      }
    }
  }
  same('provenance.test_split_sha256', evidence(finding(report, 'provenance.data-fingerprint'), /^sha256 ([0-9a-f]{64})\s+test split/)[1], sha256Bytes(test.x.data, test.y), {
    what: 'the held-out split the audit evaluated against loadDigitsSplit().test, which every area bench uses',
  });

  // ---------------------------------------------------------------- model card
  {
    const probs = await model.predict(test.x);
    const pred = argmaxRows(probs);
    const perClass = range(10).map((c) => {
      const rows = range(test.y.length).filter((i) => test.y[i] === c);
      return rows.filter((i) => pred[i] === c).length / rows.length;
    });
    const wrong = range(test.y.length).filter((i) => pred[i] !== test.y[i]).length;
    const acc = await modelAccuracy(model, test);
    same('model.test_accuracy', finding(report, 'model.test-accuracy').value, acc, { samples: test.y.length, same_as: 'bench/evasion.js digits_mlp_clean_accuracy, bench/train.js mlp accuracy (same data, model and size)' });
    same('model.lowest_class_accuracy', finding(report, 'model.per-class-accuracy').value, Math.min(...perClass));
    same('model.misclassified', finding(report, 'model.confusion').value, wrong);
  }

  // ---------------------------------------------------------------- evasion (white-box section)
  await timed('direct: evasion', async () => {
    const E = EVASION;
    const rng = new Rng(SEED);
    const order = rng.permutation(test.y.length);
    const data = subset(test, order.subarray(0, E.samples));
    const spare = subset(test, order.subarray(E.samples, 2 * E.samples));
    const f = finding(report, 'evasion.pgd-robust-accuracy');
    const fgsmPts = series(f, 'FGSM');
    const pgdPts = series(f, 'PGD-');
    const size = { samples: E.samples, steps: E.steps, sample_order: 'seeded permutation of the test split' };
    let headline;
    for (const eps of E.grid) {
      const fr = summarizeEvasion(await fgsm(model, data.x, data.y, { eps, seed: SEED }), data.y);
      const r = await pgd(model, data.x, data.y, { eps, steps: E.steps, seed: SEED });
      const pr = summarizeEvasion(r, data.y);
      if (eps === E.headline) headline = r;
      same(`evasion.fgsm_robust_accuracy_eps${eps}`, fgsmPts.find(([e]) => e === eps)?.[1], fr.robustAccuracy, { samples: E.samples });
      same(`evasion.pgd${E.steps}_robust_accuracy_eps${eps}`, pgdPts.find(([e]) => e === eps)?.[1], pr.robustAccuracy, size);
      if (eps === E.headline) same('evasion.clean_accuracy_on_subset', pgdPts[0][1], pr.cleanAccuracy, { samples: E.samples });
    }
    same('evasion.pgd_robust_accuracy (headline finding)', f.value, summarizeEvasion(headline, data.y).robustAccuracy, { eps: E.headline, ...size });

    // Median L2 of a successful perturbation, rounded as the report rounds it.
    const d = 784;
    const sizes = range(E.samples)
      .filter((i) => headline.success[i])
      .map((i) => Math.sqrt(range(d).reduce((s, j) => s + (headline.adversarial.data[i * d + j] - data.x.data[i * d + j]) ** 2, 0)))
      .sort((a, b) => a - b);
    same('evasion.median_l2_of_successful_pgd', finding(report, 'evasion.adversarial-examples').value, sig3(sizes[Math.floor(sizes.length / 2)]), { rounding: '3 significant digits, as reported' });

    // Square: its seed is the next draw of the section's generator, after the sample order.
    const few = subset(data, range(E.squareSamples));
    const sq = summarizeEvasion(await square(model, few.x, few.y, { eps: E.headline, budget: E.squareBudget, seed: rng.nextUint32() >>> 1 }), few.y);
    same('evasion.square_success_rate', finding(report, 'evasion.square-success-rate').value, sq.successRate, { samples: E.squareSamples, budget: E.squareBudget });

    const detector = new FeatureSqueezingDetector(model);
    await detector.calibrate(spare.x, E.fpr);
    const onAdv = await detector.detect(headline.adversarial);
    const turned = range(E.samples).filter((i) => headline.success[i] && headline.cleanPredicted[i] === data.y[i]);
    const detection = turned.filter((i) => onAdv.flagged[i]).length / turned.length;
    same('evasion.squeezing_detection_rate', finding(report, 'evasion.feature-squeezing').value, detection, { calibration: E.samples, adversarial: turned.length });

    const smooth = subset(data, range(E.smoothSamples));
    const cert = await certify(model, smooth.x, { sigma: E.sigma, n: E.n, n0: E.n0, alpha: E.alpha, seed: SEED });
    same('evasion.certified_accuracy_r0.25', finding(report, 'evasion.certified-accuracy').value, certifiedAccuracy(cert, smooth.y, 0.25), { samples: E.smoothSamples, n: E.n });

    if (!BENCH_SIZES) return;
    // bench/evasion.js: the first 1,000 test digits, PGD-40, FGSM, squeezing calibrated on the other 1,000.
    const eval1000 = subset(test, range(1000));
    const benchSize = { samples: 1000, steps: 40, sample_order: 'first 1,000 of the test split' };
    let pgd40;
    for (const eps of [0.05, 0.1, 0.2]) {
      const r = await pgd(model, eval1000.x, eval1000.y, { eps, steps: 40, seed: SEED });
      if (eps === E.headline) pgd40 = r;
      beside(`evasion.pgd_robust_accuracy_eps${eps}`, pgdPts.find(([e]) => e === eps)[1], summarizeEvasion(r, eval1000.y).robustAccuracy, size, benchSize, {
        bench_figure: `evasion undefended_pgd40_linf_eps${eps}_robust_accuracy`,
      });
    }
    const f1000 = summarizeEvasion(await fgsm(model, eval1000.x, eval1000.y, { eps: E.headline }), eval1000.y);
    beside('evasion.fgsm_robust_accuracy_eps0.1', fgsmPts.find(([e]) => e === E.headline)[1], f1000.robustAccuracy, { samples: E.samples }, { samples: 1000 }, {
      bench_figure: 'evasion fgsm_robust_accuracy_vs_pytorch',
    });
    const det1000 = new FeatureSqueezingDetector(model);
    await det1000.calibrate(subset(test, range(1000).map((i) => i + 1000)).x, E.fpr);
    const flagged = await det1000.detect(pgd40.adversarial);
    const turned1000 = range(1000).filter((i) => pgd40.success[i] && pgd40.cleanPredicted[i] === eval1000.y[i]);
    beside('evasion.squeezing_detection_rate', detection, turned1000.filter((i) => flagged.flagged[i]).length / turned1000.length, { calibration: E.samples, adversarial: turned.length, pgd_steps: E.steps }, { calibration: 1000, adversarial: turned1000.length, pgd_steps: 40 }, {
      bench_figure: 'evasion squeezing_pgd_detection_rate_at_5pct_fpr',
    });
    const few100 = subset(test, range(100));
    const sq100 = summarizeEvasion(await square(model, few100.x, few100.y, { eps: E.headline, budget: 10000, seed: SEED }), few100.y);
    beside('evasion.square_success_rate', finding(report, 'evasion.square-success-rate').value, sq100.successRate, { samples: E.squareSamples, budget: E.squareBudget }, { samples: 100, budget: 10000 }, {
      bench_figure: 'evasion square_linf_eps0.1_success_rate',
    });
    process.stdout.write(
      `${JSON.stringify({ bench: BENCH, figure: 'evasion.certified_accuracy_r0.25', value: finding(report, 'evasion.certified-accuracy').value, peer_value: null, target: null, pass: null, sizes_differ: true, not_comparable: "bench/evasion.js certifies a separate MLP trained on σ = 0.25 noise (n = 10,000, 100 digits); the audit certifies the audited model itself (n = 500, 60 digits): not the same quantity, so not recomputed here" })}\n`,
    );
  });

  // ---------------------------------------------------------------- poisoning
  await timed('direct: poisoning', async () => {
    const P = POISONING;
    const rng = new Rng(SEED);
    const ds = subset(train, rng.permutation(train.y.length).subarray(0, P.trainRows));
    const testP = subset(test, rng.permutation(test.y.length).subarray(0, P.testRows));
    const p = await poison(ds, { kind: 'badnets', rate: P.rate, target: P.target, seed: SEED });
    const truth = new Uint8Array(ds.y.length);
    for (const i of p.poisonedIndices) truth[i] = 1;
    const poisoned = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: SEED });
    await poisoned.fit(p.dataset, { epochs: P.epochs, seed: SEED });
    const before = { cacc: await cleanAccuracy(poisoned, testP), ...(await backdoorMetrics(poisoned, testP, p.trigger, p.targetOf)) };
    const spectral = await spectralSignatures(poisoned, p.dataset, { seed: SEED });
    const rates = detectionRates(spectral.flagged, truth);
    const keep = [...spectral.flagged.keys()].filter((i) => !spectral.flagged[i]);
    const retrained = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: SEED });
    await retrained.fit(subset(p.dataset, keep), { epochs: P.epochs, seed: SEED });
    const after = { cacc: await cleanAccuracy(retrained, testP), ...(await backdoorMetrics(retrained, testP, p.trigger, p.targetOf)) };
    retrained.dispose();
    const size = { train_rows: P.trainRows, test_rows: P.testRows, epochs: P.epochs };

    const planted = finding(report, 'poisoning.backdoor-planted');
    const recall = finding(report, 'poisoning.detection-recall');
    const defended = finding(report, 'poisoning.asr-after-defence');
    const [caccB, caccA, asrB, asrA] = defended.chart.values;
    same('poisoning.poisoned_rows', Number(evidence(planted, /, (\d+) poisoned \(/)[1]), p.poisonedIndices.length);
    same('poisoning.asr_no_defence', planted.value, before.asr, size);
    same('poisoning.clean_accuracy_poisoned_model', caccB, before.cacc, size);
    same('poisoning.asr_chart_matches_finding', asrB, planted.value);
    same('poisoning.spectral_recall', recall.value, rates.recall, size);
    same('poisoning.spectral_false_positives', Number(evidence(recall, /FPR [\d.]+% \((\d+) of/)[1]), rates.fp);
    same('poisoning.spectral_auroc (3 decimals, as reported)', evidence(recall, /AUROC ([\d.]+)/)[1], rocAuc(spectral.score, truth).toFixed(3));
    same('poisoning.rows_kept', Number(evidence(defended, /^(\d+) of \d+ rows kept/)[1]), keep.length);
    same('poisoning.asr_after_spectral_retrain', defended.value, after.asr, size);
    same('poisoning.asr_after_chart_matches_finding', asrA, defended.value);
    same('poisoning.clean_accuracy_after_retrain', caccA, after.cacc, size);

    const nc = await neuralCleanse(poisoned, testP, { steps: P.ncSteps, batchSize: P.ncBatch, seed: SEED });
    const ncF = finding(report, 'poisoning.neural-cleanse');
    same('poisoning.neural_cleanse_flagged', ncF.value, nc.flagged.map((c) => ds.classNames[c]).join(', ') || 'none', { steps: P.ncSteps, batch: P.ncBatch });
    same(
      'poisoning.neural_cleanse_mask_l1 (1 decimal, as reported)',
      evidence(ncF, /^mask L1 per class: (.*)$/)[1],
      nc.triggers.map((t) => `'${t.className}' ${t.maskL1.toFixed(1)} (index ${t.anomalyIndex.toFixed(2)})`).join(', '),
    );
    poisoned.dispose();

    if (!BENCH_SIZES) return;
    // bench/poisoning.js backdoors(), scenario badnets_10pct: the whole training split, the zoo's epochs, the whole test split.
    const fit = async (d) => {
      const m = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: SEED });
      await m.fit(d, { epochs: defaultEpochs.mlp, seed: SEED });
      return m;
    };
    const pb = await poison(train, { kind: 'badnets', rate: 0.1, target: 0, seed: SEED });
    const truthB = new Uint8Array(train.y.length);
    for (const i of pb.poisonedIndices) truthB[i] = 1;
    const mb = await fit(pb.dataset);
    const beforeB = await backdoorMetrics(mb, test, pb.trigger, pb.targetOf);
    const specB = await spectralSignatures(mb, pb.dataset, { seed: SEED });
    mb.dispose();
    const keepB = [...specB.flagged.keys()].filter((i) => !specB.flagged[i]);
    const rb = await fit(subset(pb.dataset, keepB));
    const afterB = await backdoorMetrics(rb, test, pb.trigger, pb.targetOf);
    rb.dispose();
    const benchSize = { train_rows: train.y.length, test_rows: test.y.length, epochs: defaultEpochs.mlp };
    beside('poisoning.asr_no_defence', planted.value, beforeB.asr, size, benchSize, { bench_figure: 'poisoning badnets_10pct_asr_no_defence' });
    beside('poisoning.spectral_recall', recall.value, detectionRates(specB.flagged, truthB).recall, size, benchSize, { bench_figure: 'poisoning badnets_10pct_spectral_recall' });
    beside('poisoning.asr_after_spectral_retrain', defended.value, afterB.asr, size, benchSize, { bench_figure: 'poisoning badnets_10pct_asr_after_spectral_retrain' });
  });

  // ---------------------------------------------------------------- privacy
  await timed('direct: privacy', async () => {
    const V = PRIVACY;
    const auc = finding(report, 'privacy.membership-auc');
    const base = await lossThresholdAttack(model, membershipSample(train, test, V.evaluate, SEED));
    same('privacy.membership_auc', auc.value, base.auc, { members: V.evaluate, non_members: V.evaluate });
    same('privacy.membership_tpr_at_0.1pct_fpr', finding(report, 'privacy.membership-tpr-low-fpr').value, base.tprAt0_1Fpr);
    same('privacy.membership_roc_undefended', series(auc, 'undefended'), base.roc, { what: 'every point of the ROC curve' });

    const dpF = finding(report, 'privacy.dp-sgd');
    const accounting = finding(report, 'privacy.dp-accounting');
    same('privacy.undefended_test_accuracy', dpF.chart.values[0], await modelAccuracy(model, test));
    const n = Math.min(train.y.length, V.trainSubset);
    const dpTrain = subset(train, new Rng(SEED).permutation(train.y.length).slice(0, n));
    const batchSize = Math.min(256, Math.max(16, Math.floor(n / 16)));
    for (const [k, eps] of V.epsilons.entries()) {
      // As the section does: a fresh copy of the audited model's architecture, seeded seed + 1.
      const candidate = await freshCopy(model, SEED + 1, 'dp-candidate');
      const r = await trainDpSgd(candidate, dpTrain, { targetEpsilon: eps, delta: V.delta, epochs: V.epochs, batchSize, seed: SEED });
      const attack = await lossThresholdAttack(candidate, membershipSample(dpTrain, test, V.evaluate, SEED));
      const acc = await modelAccuracy(candidate, test);
      candidate.dispose();
      const label = `DP ε=${eps}`;
      const size = { train_rows: n, epochs: V.epochs, batch: batchSize };
      same(`privacy.dp_eps${eps}_test_accuracy`, dpF.chart.values[k + 1], acc, size);
      if (k === 0) same('privacy.dp_sgd (headline finding)', dpF.value, acc, size);
      same(`privacy.dp_eps${eps}_membership_roc`, series(auc, label), attack.roc, { what: 'every point of the ROC curve' });
      same(`privacy.dp_eps${eps}_accounted_epsilon (3 decimals, as reported)`, evidence(accounting, new RegExp(`^${label}: accounted ε ([\\d.]+)`))[1], r.epsilon.toFixed(3));
      same(`privacy.dp_eps${eps}_empirical_epsilon (3 decimals, as reported)`, evidence(accounting, new RegExp(`^${label}: .*lower bound ([\\d.]+)`))[1], attack.empiricalEpsilon.toFixed(3));
      if (k === 0 && BENCH_SIZES) {
        // bench/privacy.js: DP-SGD on the whole training split, 20 epochs, expected batch 512, Adam 3e-3, C = 1.
        const m = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, classNames: train.classNames, seed: SEED });
        const rb = await trainDpSgd(m, train, { targetEpsilon: eps, delta: V.delta, batchSize: 512, epochs: 20, learningRate: 3e-3, maxGradNorm: 1, seed: SEED });
        beside(`privacy.dp_eps${eps}_test_accuracy`, acc, await modelAccuracy(m, test), { ...size, accounted_epsilon: Number(r.epsilon.toFixed(3)) }, { train_rows: train.y.length, epochs: 20, batch: 512, learning_rate: 3e-3, accounted_epsilon: Number(rb.epsilon.toFixed(3)) }, {
          bench_figure: `privacy dp_mlp_test_accuracy_eps${eps}`,
        });
        m.dispose();
      }
    }
    if (BENCH_SIZES) {
      process.stdout.write(
        `${JSON.stringify({ bench: BENCH, figure: 'privacy.membership_auc', value: auc.value, peer_value: null, target: null, pass: null, sizes_differ: true, not_comparable: "bench/privacy.js measures the loss attack on LiRA's shadow pool (16 shadow models, minutes), not on a seeded member/non-member sample; the audit's own setting is recomputed above" })}\n`,
      );
    }
  });

  // ---------------------------------------------------------------- extraction
  await timed('direct: extraction', async () => {
    const X = EXTRACTION;
    const order = new Rng(SEED).permutation(test.y.length);
    const holdout = subset(test, order.subarray(0, X.holdout));
    const r = await extract(model, { budget: X.budget, holdout, pool: train.x, strategy: 'natural', checkpoints: X.checkpoints, seed: SEED, progress: quiet });
    r.surrogate.dispose();
    const f = finding(report, 'extraction.fidelity');
    const size = { budget: X.budget, holdout: X.holdout, pool: 'the training split, unlabelled' };
    same('extraction.fidelity', f.value, r.fidelity, size);
    same('extraction.fidelity_curve', series(f, 'fidelity'), r.curve.map((p) => [p.queries, p.fidelity]), size);
    same('extraction.surrogate_accuracy_curve', series(f, 'accuracy of the copy'), r.curve.map((p) => [p.queries, p.accuracy]), size);
    same('extraction.target_accuracy_on_holdout', series(f, "the model's accuracy")[0][1], r.targetAccuracy, size);

    if (!BENCH_SIZES) return;
    // bench/extraction.js fidelity_10k_full: 10,000 natural queries, the whole test split as holdout,
    // the target as reference; the bench asks through the gateway ('full' tier), this asks in-process.
    const rb = await extract(model, { budget: 10_000, strategy: 'natural', pool: train.x, holdout: test, reference: model, seed: SEED, progress: quiet });
    rb.surrogate.dispose();
    beside('extraction.fidelity', f.value, rb.fidelity, size, { budget: 10_000, holdout: test.y.length, pool: 'the training split, unlabelled' }, {
      bench_figure: 'extraction fidelity_10k_full',
      note: "asked in-process; the bench asks through the gateway's 'full' tier, which answers the same probabilities",
      bench_curve: rb.curve.map((p) => [p.queries, Number(p.fidelity.toFixed(4))]),
    });
  });

  model.dispose();
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(
    `${JSON.stringify({ bench: BENCH, figure: 'mismatches', value: mismatches, target: '==0', pass: mismatches === 0, seconds: Number(seconds.toFixed(1)), audit_sections_seconds: Number(auditSeconds.toFixed(1)), backend, load_1m: Number(os.loadavg()[0].toFixed(2)) })}\n`,
  );
  process.stdout.write(`${JSON.stringify({ bench: BENCH, figure: 'tensors_leaked', value: tf.memory().numTensors - tensorsBefore, target: '==0', pass: tf.memory().numTensors === tensorsBefore })}\n`);
} finally {
  await rm(tmpCache, { recursive: true, force: true });
}
