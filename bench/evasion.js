// Evasion figures on the built-in digits: robust accuracy of the MLP under PGD, undefended (with
// no dropout, and the zoo's default dropout 0.3) and adversarially trained; Square and
// HopSkipJump query costs; the feature-squeezing detector; randomized-smoothing certificates;
// FGSM/PGD beside PyTorch on the same weights.
// Undefended PGD runs with both losses (cross-entropy, the default, and the CW margin); the fast
// (FGSM-RS, Wong et al. 2020) adversarially trained MLP sits beside the PGD-10 trained one.
// One JSON line per figure on stdout; progress on stderr. A missed target is `pass:false`,
// not a failed run. Takes several minutes (adversarial training dominates).
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { argmaxRows, subset } from '../dist/core/index.js';
import { loadDigitsSplit, writeNpy } from '../dist/data/index.js';
import { initTfjs } from '../dist/engines/index.js';
import { createZooModel, defaultEpochs } from '../dist/zoo/index.js';
import {
  FeatureSqueezingDetector,
  adversarialTrain,
  adversarialTransform,
  certifiedAccuracy,
  certify,
  fgsm,
  gaussianNoiseTransform,
  hopSkipJump,
  normPpf,
  pgd,
  square,
  summarizeEvasion,
} from '../dist/evasion/index.js';

const BENCH = 'evasion';
const SEED = 42;
const EPS = 0.1;
const TORCH_MISSING = 'python3-torch not installed (npm run bench:peers installs it)';
const peerScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'peers', 'torch_evasion.py');
const peerPython = process.env.BULWARK_PEER_PYTHON || '/usr/bin/python3';

const log = (msg) => process.stderr.write(`[bench evasion] ${msg}\n`);
const round = (x, d = 4) => (typeof x === 'number' && Number.isFinite(x) ? Number(x.toFixed(d)) : x);
const load1m = () => round(os.loadavg()[0], 2);

function figure(name, value, target, extra = {}) {
  let pass = null;
  if (target !== null && value !== null && value !== undefined) {
    const [op, bound] = [target.slice(0, 2), Number(target.slice(2))];
    pass = op === '>=' ? value >= bound : op === '<=' ? value <= bound : value === bound;
  }
  process.stdout.write(`${JSON.stringify({ bench: BENCH, figure: name, value, target, pass, ...extra })}\n`);
}

const quiet = { start: () => {}, advance: () => {}, done: () => {}, log: (m) => log(m) };
function epochLog(label) {
  let phase = '';
  return { start: (l) => (phase = l), advance: () => {}, done: () => log(`${label} ${phase} done`), log: (m) => log(m) };
}

async function accuracy(model, ds) {
  const pred = argmaxRows(await model.predict(ds.x));
  let hits = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === ds.y[i]) hits++;
  return hits / pred.length;
}

function median(v) {
  if (v.length === 0) return null;
  const s = [...v].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const range = (n, from = 0) => Array.from({ length: n }, (_, i) => from + i);

async function trainMlp(label, data, transformBatch, dropout) {
  const epochs = defaultEpochs.mlp;
  log(`training ${label}: mlp, ${epochs} epochs, seed ${SEED}${dropout === undefined ? '' : `, dropout ${dropout}`}`);
  const model = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: SEED, dropout });
  const fit = await model.fit(data.train, { epochs, seed: SEED, transformBatch, progress: epochLog(label) });
  log(`${label}: ${fit.seconds.toFixed(1)} s`);
  return { model, fit };
}

/** Runs the PyTorch peer; resolves to its JSON answer, `{skipped}` or `{error}`. */
async function runPeer(dir, steps, loss = 'ce') {
  const args = [peerScript, '--dir', dir, '--eps', String(EPS), '--steps', String(steps), '--seed', String(SEED), '--loss', loss];
  log(`running the PyTorch peer: ${peerPython} ${path.relative(process.cwd(), peerScript)}`);
  return new Promise((resolve) => {
    const child = spawn(peerPython, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => resolve(e.code === 'ENOENT' ? { skipped: `${peerPython} not found; ${TORCH_MISSING}` } : { error: e.message }));
    child.on('close', (code) => {
      let answer = null;
      try {
        answer = JSON.parse(out.trim().split('\n').at(-1) ?? '');
      } catch {
        // reported below
      }
      if (code === 3 && answer?.skipped) resolve({ skipped: TORCH_MISSING });
      else if (code === 0 && answer) resolve(answer);
      else resolve({ error: `peer exited ${code}: ${(err || out).trim().split('\n').slice(-3).join(' | ')}` });
    });
  });
}

const backend = await initTfjs();
log(`TF.js backend: ${backend}`);
const data = await loadDigitsSplit();
const eval1000 = subset(data.test, range(1000));
const tensorsBefore = tf.memory().numTensors;

// --- Undefended MLP: PGD-40 at a few ε. The plain MLP (no dropout) carries the target; the zoo's
// default MLP (dropout 0.3) is measured beside it, because dropout alone keeps a few more digits
// (mostly 0s, 2s and 6s with large margins) correct at ε = 0.1, and every attack we have (CE,
// margin, APGD, multi-targeted, 200 steps × 10 restarts, PyTorch on the same weights) agrees.
const bare = await trainMlp('undefended, no dropout', data, undefined, 0);
figure('digits_mlp_nodropout_clean_accuracy', round(await accuracy(bare.model, data.test)), '>=0.95', { samples: data.test.y.length, dropout: 0 });
{
  const s = summarizeEvasion(await pgd(bare.model, eval1000.x, eval1000.y, { eps: EPS, steps: 40, seed: SEED, progress: quiet }), eval1000.y);
  log(`undefended (no dropout) PGD-40 eps ${EPS}: robust ${s.robustAccuracy}`);
  figure(`undefended_nodropout_pgd40_linf_eps${EPS}_robust_accuracy`, round(s.robustAccuracy), '<=0.05', { clean_accuracy: round(s.cleanAccuracy), samples: s.samples, dropout: 0 });
}
bare.model.dispose();

const plain = await trainMlp('undefended', data);
figure('digits_mlp_clean_accuracy', round(await accuracy(plain.model, data.test)), '>=0.95', { samples: data.test.y.length, dropout: 0.3 });
for (const eps of [0.05, 0.1, 0.2]) {
  const s = summarizeEvasion(await pgd(plain.model, eval1000.x, eval1000.y, { eps, steps: 40, seed: SEED, progress: quiet }), eval1000.y);
  log(`undefended PGD-40 eps ${eps}: robust ${s.robustAccuracy} (${s.seconds.toFixed(1)} s)`);
  figure(`undefended_pgd40_linf_eps${eps}_robust_accuracy`, round(s.robustAccuracy), null, {
    clean_accuracy: round(s.cleanAccuracy),
    samples: s.samples,
    dropout: 0.3,
  });
}

{
  // Restarts find what one run misses near the target.
  const s = summarizeEvasion(await pgd(plain.model, eval1000.x, eval1000.y, { eps: EPS, steps: 40, restarts: 5, seed: SEED, progress: quiet }), eval1000.y);
  figure(`undefended_pgd40x5_linf_eps${EPS}_robust_accuracy`, round(s.robustAccuracy), null, { restarts: 5, samples: s.samples });
  // The margin (difference of logits) loss, alone and with restarts, and the union of both
  // losses: a sample counts as robust only when neither attack turned it.
  const m1 = await pgd(plain.model, eval1000.x, eval1000.y, { eps: EPS, steps: 40, seed: SEED, loss: 'margin', progress: quiet });
  figure(`undefended_pgd40_margin_linf_eps${EPS}_robust_accuracy`, round(summarizeEvasion(m1, eval1000.y).robustAccuracy), null, { loss: 'margin', samples: 1000 });
  const m5 = await pgd(plain.model, eval1000.x, eval1000.y, { eps: EPS, steps: 40, restarts: 5, seed: SEED, loss: 'margin', progress: quiet });
  const ce5 = await pgd(plain.model, eval1000.x, eval1000.y, { eps: EPS, steps: 40, restarts: 5, seed: SEED, progress: quiet });
  figure(`undefended_pgd40x5_margin_linf_eps${EPS}_robust_accuracy`, round(summarizeEvasion(m5, eval1000.y).robustAccuracy), null, { loss: 'margin', restarts: 5, samples: 1000 });
  const survive = range(1000).filter((i) => ce5.cleanPredicted[i] === eval1000.y[i] && !ce5.success[i] && !m5.success[i]).length / 1000;
  figure(`undefended_pgd40x5_ce_or_margin_linf_eps${EPS}_robust_accuracy`, round(survive), null, { losses: ['ce', 'margin'], restarts: 5, samples: 1000 });
}

// --- Same attack in PyTorch on the same weights: robust accuracy and speed.
{
  const steps = 40;
  const dense = (name) => plain.model.net.getLayer(name).getWeights().map((t) => t.dataSync());
  const [w1, b1] = dense('dense1');
  const [w2, b2] = dense('output');
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'bulwark-bench-evasion-'));
  let peer;
  let peerMargin;
  let peerLoad = null;
  try {
    await writeNpy(path.join(tmp, 'w1.npy'), Float32Array.from(w1), [784, 256]);
    await writeNpy(path.join(tmp, 'b1.npy'), Float32Array.from(b1), [256]);
    await writeNpy(path.join(tmp, 'w2.npy'), Float32Array.from(w2), [256, 10]);
    await writeNpy(path.join(tmp, 'b2.npy'), Float32Array.from(b2), [10]);
    await writeNpy(path.join(tmp, 'x.npy'), eval1000.x.data, [...eval1000.x.shape]);
    await writeNpy(path.join(tmp, 'y.npy'), eval1000.y, [1000]);
    peerLoad = load1m();
    peer = await runPeer(tmp, steps);
    peerMargin = await runPeer(tmp, steps, 'margin');
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  // Like for like: one batch of 1,000, random start, no early stop, all 40 steps.
  const ourLoad = load1m();
  const t0 = performance.now();
  const r = await pgd(plain.model, eval1000.x, eval1000.y, { eps: EPS, steps, seed: SEED, earlyStop: false, batchSize: 1000 });
  const seconds = (performance.now() - t0) / 1000;
  const ours = summarizeEvasion(r, eval1000.y);
  const oursMargin = summarizeEvasion(await pgd(plain.model, eval1000.x, eval1000.y, { eps: EPS, steps, seed: SEED, earlyStop: false, batchSize: 1000, loss: 'margin' }), eval1000.y);
  const f = summarizeEvasion(await fgsm(plain.model, eval1000.x, eval1000.y, { eps: EPS }), eval1000.y);
  const common = { eps: EPS, steps, samples: 1000, bulwark_seconds: round(seconds, 3), bulwark_backend: backend, bulwark_load_1m: ourLoad, cpus: os.availableParallelism() };
  if (peer.skipped || peer.error) {
    if (peer.error) log(`the PyTorch peer failed: ${peer.error}`);
    figure('pgd40_seconds_vs_pytorch', null, '<=3.0', { ...common, peer: null, ...(peer.skipped ? { skipped: peer.skipped } : { error: peer.error }) });
    figure('fgsm_robust_accuracy_vs_pytorch', round(f.robustAccuracy), null, { eps: EPS, peer: null });
    figure('pgd40_robust_accuracy_vs_pytorch', round(ours.robustAccuracy), null, { eps: EPS, peer: null });
    figure('pgd40_margin_robust_accuracy_vs_pytorch', round(oursMargin.robustAccuracy), null, { eps: EPS, loss: 'margin', peer: null });
  } else {
    log(`pytorch ${peer.torch}: PGD-40 ${peer.pgd_seconds.toFixed(2)} s on ${peer.threads} thread(s); ours ${seconds.toFixed(2)} s`);
    figure('pgd40_seconds_vs_pytorch', round(seconds / peer.pgd_seconds, 3), '<=3.0', {
      ...common,
      peer_seconds: round(peer.pgd_seconds, 3),
      peer: `pytorch ${peer.torch}`,
      peer_threads: peer.threads,
      peer_load_1m: peerLoad,
    });
    figure('fgsm_robust_accuracy_vs_pytorch', round(f.robustAccuracy), null, { eps: EPS, peer_value: round(peer.fgsm_robust_accuracy), clean: round(f.cleanAccuracy), peer_clean: round(peer.clean_accuracy) });
    figure('pgd40_robust_accuracy_vs_pytorch', round(ours.robustAccuracy), null, { eps: EPS, peer_value: round(peer.pgd_robust_accuracy), early_stop: false });
    figure('pgd40_margin_robust_accuracy_vs_pytorch', round(oursMargin.robustAccuracy), null, {
      eps: EPS,
      loss: 'margin',
      peer_value: peerMargin.skipped || peerMargin.error ? null : round(peerMargin.pgd_robust_accuracy),
      early_stop: false,
    });
  }
}

// --- Score-based and label-only black-box attacks on the undefended MLP.
{
  const few = subset(data.test, range(100));
  const budget = 10000;
  const r = await square(plain.model, few.x, few.y, { eps: EPS, budget, seed: SEED, progress: quiet });
  const s = summarizeEvasion(r, few.y);
  log(`Square eps ${EPS}: success ${s.successRate}, ${s.seconds.toFixed(1)} s`);
  figure('square_linf_eps0.1_success_rate', round(s.successRate), '>=0.90', {
    budget,
    samples: s.samples,
    median_queries_successful: s.medianQueriesSuccessful,
    mean_queries: round(s.meanQueries, 1),
    seconds: round(s.seconds, 1),
  });
  const hsjSet = subset(data.test, range(50));
  for (const q of [1000, 5000]) {
    const h = await hopSkipJump(plain.model, hsjSet.x, hsjSet.y, { budget: q, seed: SEED, progress: quiet });
    const correct = range(50).filter((i) => h.cleanPredicted[i] === hsjSet.y[i]);
    const m = median(correct.map((i) => h.norms[i]));
    log(`HopSkipJump ${q} queries: median L2 ${m} (${h.seconds.toFixed(1)} s)`);
    figure(`hsj_median_l2_at_${q}_queries`, round(m), null, { samples: correct.length, found: correct.filter((i) => h.success[i]).length, seconds: round(h.seconds, 1) });
  }
}

// --- Feature squeezing: PGD examples detected at 5% false positives on clean digits.
{
  const detector = new FeatureSqueezingDetector(plain.model);
  const calibration = subset(data.test, range(1000, 1000));
  const threshold = await detector.calibrate(calibration.x, 0.05);
  const r = await pgd(plain.model, eval1000.x, eval1000.y, { eps: EPS, steps: 40, seed: SEED });
  const flagged = await detector.detect(r.adversarial);
  const clean = await detector.detect(eval1000.x);
  const turned = range(1000).filter((i) => r.success[i] && r.cleanPredicted[i] === eval1000.y[i]);
  const rate = turned.filter((i) => flagged.flagged[i]).length / turned.length;
  figure('squeezing_pgd_detection_rate_at_5pct_fpr', round(rate), null, {
    eps: EPS,
    adversarial: turned.length,
    threshold: round(threshold),
    clean_false_positive_rate: round(clean.flagged.filter(Boolean).length / 1000),
    squeezers: detector.squeezers.map((s) => s.name),
  });
}
plain.model.dispose();

// --- Randomized smoothing: a base MLP trained on σ = 0.25 noise, certified on 100 digits.
{
  const sigma = 0.25;
  const noisy = await trainMlp(`noise-trained (σ ${sigma})`, data, gaussianNoiseTransform(sigma, SEED));
  const few = subset(data.test, range(100));
  const n = 10000;
  const r = await certify(noisy.model, few.x, { sigma, n, n0: 100, alpha: 0.001, seed: SEED, batchSize: 1000, progress: quiet });
  log(`certified 100 digits with n = ${n} in ${r.seconds.toFixed(1)} s`);
  for (const radius of [0.25, 0.5, 1.0]) {
    figure(`smoothing_sigma0.25_certified_accuracy_r${radius}`, round(certifiedAccuracy(r, few.y, radius)), null, {
      samples: 100,
      n,
      alpha: 0.001,
      smoothed_accuracy: round(certifiedAccuracy(r, few.y, 0)),
      // n votes cannot certify beyond σ·Φ⁻¹(alpha^(1/n)), whatever the model.
      max_certifiable_radius: round(sigma * normPpf(Math.pow(0.001, 1 / n))),
    });
  }
  noisy.model.dispose();
}

// --- Adversarially trained MLP (Madry PGD-10 at ε = 0.1): clean and PGD-40 × 5 restarts.
const hardenedModel = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: SEED });
{
  log(`adversarial training: mlp, ${defaultEpochs.mlp} epochs, PGD-10 at eps ${EPS}`);
  const fit = await hardenedModel.fit(data.train, {
    epochs: defaultEpochs.mlp,
    seed: SEED,
    transformBatch: adversarialTransform(hardenedModel, { eps: EPS, steps: 10, seed: SEED }),
    progress: epochLog('adversarial'),
  });
  const clean = await accuracy(hardenedModel, data.test);
  figure('adv_trained_mlp_clean_accuracy', round(clean), '>=0.92', { train_seconds: round(fit.seconds, 1), attack: 'pgd-10', eps: EPS });
  for (const eps of [0.05, 0.1, 0.2]) {
    const s = summarizeEvasion(await pgd(hardenedModel, eval1000.x, eval1000.y, { eps, steps: 40, restarts: 5, seed: SEED, progress: quiet }), eval1000.y);
    log(`adversarially trained PGD-40x5 eps ${eps}: robust ${s.robustAccuracy}`);
    figure(`adv_trained_pgd40x5_linf_eps${eps}_robust_accuracy`, round(s.robustAccuracy), eps === EPS ? '>=0.70' : null, { samples: 1000, restarts: 5 });
  }
}
hardenedModel.dispose();

// --- Fast adversarial training (FGSM from a random start, step 1.25·ε, per-epoch PGD-10 check
// on 256 held-out training digits against catastrophic overfitting): same MLP, same epochs.
{
  const fast = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: SEED });
  log(`fast adversarial training: mlp, ${defaultEpochs.mlp} epochs, FGSM-RS at eps ${EPS}`);
  const ourLoad = load1m();
  const fit = await adversarialTrain(fast, data.train, { attack: 'fgsm-rs', eps: EPS, seed: SEED, fit: { epochs: defaultEpochs.mlp, seed: SEED, progress: epochLog('fast adversarial') } });
  const clean = await accuracy(fast, data.test);
  const extra = { attack: 'fgsm-rs', eps: EPS, epochs: fit.epochs.length, collapsed: fit.collapsed, best_epoch: fit.bestEpoch, load_1m: ourLoad };
  figure('fast_adv_trained_mlp_train_seconds', round(fit.seconds, 1), '<=60', { ...extra, check_robust_accuracy: fit.checks?.map((c) => round(c.robustAccuracy, 3)) });
  figure('fast_adv_trained_mlp_clean_accuracy', round(clean), '>=0.92', extra);
  for (const eps of [0.05, 0.1, 0.2]) {
    const s = summarizeEvasion(await pgd(fast, eval1000.x, eval1000.y, { eps, steps: 40, restarts: 5, seed: SEED, progress: quiet }), eval1000.y);
    log(`fast adversarially trained PGD-40x5 eps ${eps}: robust ${s.robustAccuracy}`);
    figure(`fast_adv_trained_pgd40x5_linf_eps${eps}_robust_accuracy`, round(s.robustAccuracy), eps === EPS ? '>=0.70' : null, { samples: 1000, restarts: 5 });
  }
  const m = summarizeEvasion(await pgd(fast, eval1000.x, eval1000.y, { eps: EPS, steps: 40, restarts: 5, seed: SEED, loss: 'margin', progress: quiet }), eval1000.y);
  figure(`fast_adv_trained_pgd40x5_margin_linf_eps${EPS}_robust_accuracy`, round(m.robustAccuracy), null, { samples: 1000, restarts: 5, loss: 'margin' });
  fast.dispose();
}
figure('tensors_leaked', tf.memory().numTensors - tensorsBefore, '==0', { during: 'every attack and defence above, models disposed' });
