// Privacy figures on the built-in digits: DP-SGD accuracy at ε = 1, 3, 8 (δ = 1e-5), the
// time of a DP-SGD epoch against a non-private one (same model, batch size and engine, in
// this run), LiRA against the loss-threshold attack on the undefended MLP, the empirical ε
// LiRA proves against each DP model beside the accounted ε, and how long LiRA's 16 shadow
// models take. One JSON line per figure on stdout; progress on stderr. A missed target is
// `pass:false`, not a failed run.
//
// Peers: Opacus is not installed on this machine (and not in Debian), so no DP-SGD peer
// runs here; the issue quotes 20–40× its non-private time for Opacus's per-sample-gradient
// modes on the same MLP. The ratio below is ours against our own non-private loop.
import os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { argmaxRows } from '../dist/core/index.js';
import { loadDigitsSplit } from '../dist/data/index.js';
import { initTfjs } from '../dist/engines/index.js';
import { createZooModel, defaultEpochs } from '../dist/zoo/index.js';
import { liraScore, lossThresholdAttack, membershipSample, trainDpSgd, trainShadowSet } from '../dist/privacy/index.js';

const BENCH = 'privacy';
const SEED = 42;
const DELTA = 1e-5;
// DP-SGD settings for the digits MLP (8,000 examples): expected batch 512 (sample rate 0.064), Adam.
const DP = { batchSize: 512, epochs: 20, learningRate: 3e-3, maxGradNorm: 1 };
const SHADOWS = 16;

const log = (msg) => process.stderr.write(`[bench privacy] ${msg}\n`);
const round = (x, d = 4) => (Number.isFinite(x) ? Number(x.toFixed(d)) : x);
const load1m = () => round(os.loadavg()[0], 2);

function figure(name, value, target, extra = {}) {
  let pass = null;
  if (target && value !== null && value !== undefined) {
    const m = /^(>=|<=|>|<)(-?[\d.e+-]+)$/.exec(target);
    const bound = Number(m[2]);
    pass = m[1] === '>=' ? value >= bound : m[1] === '<=' ? value <= bound : m[1] === '>' ? value > bound : value < bound;
  }
  process.stdout.write(`${JSON.stringify({ bench: BENCH, figure: name, value, target, pass, ...extra })}\n`);
}

const quiet = (label) => ({ start: () => {}, advance: () => {}, done: () => {}, log: (m) => log(`${label}: ${m}`) });

async function accuracy(model, test) {
  const p = argmaxRows(await model.predict(test.x));
  let hits = 0;
  for (let i = 0; i < p.length; i++) if (p[i] === test.y[i]) hits++;
  return hits / p.length;
}

const backend = await initTfjs();
log(`TF.js backend: ${backend}; ${os.availableParallelism?.() ?? os.cpus().length} cores; load ${load1m()}`);
const { train, test } = await loadDigitsSplit();
const mlp = (seed = SEED) => createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, classNames: train.classNames, seed });

// 1. DP-SGD accuracy at ε = 1, 3, 8.
const dpModels = [];
for (const [eps, target] of [[1, '>=0.80'], [3, '>=0.88'], [8, null]]) {
  log(`DP-SGD at ε = ${eps}: ${DP.epochs} epochs, expected batch ${DP.batchSize}, Adam ${DP.learningRate}, C = ${DP.maxGradNorm}`);
  const model = mlp();
  const r = await trainDpSgd(model, train, { targetEpsilon: eps, delta: DELTA, ...DP, seed: SEED, progress: quiet(`ε=${eps}`) });
  const acc = await accuracy(model, test);
  figure(`dp_mlp_test_accuracy_eps${eps}`, round(acc), target, {
    epsilon: round(r.epsilon), delta: DELTA, noise_multiplier: round(r.noiseMultiplier), steps: r.steps, sample_rate: round(r.sampleRate),
    epochs: DP.epochs, batch_size: DP.batchSize, learning_rate: DP.learningRate, max_grad_norm: DP.maxGradNorm, accountant: r.accountant,
    train_seconds: round(r.seconds, 1), load: load1m(),
  });
  dpModels.push({ eps, model, accounted: r.epsilon });
}

// 2. A DP-SGD epoch against a non-private one: same model, batch size and engine; median of rounds taking turns.
const rounds = Math.max(1, Number(process.env.BULWARK_BENCH_ROUNDS ?? 3) || 1);
const median = (a) => [...a].sort((x, y) => x - y)[(a.length - 1) >> 1];
const pairs = [];
const timingEpochs = 3;
for (let r = 0; r < rounds; r++) {
  const plain = mlp(SEED + r);
  const priv = mlp(SEED + r);
  const once = async (which) => {
    if (which === 'plain') {
      const f = await plain.fit(train, { epochs: timingEpochs, batchSize: DP.batchSize, learningRate: DP.learningRate, seed: SEED + r });
      return median(f.epochs.map((e) => e.seconds));
    }
    const d = await trainDpSgd(priv, train, { noiseMultiplier: 1, epochs: timingEpochs, batchSize: DP.batchSize, learningRate: DP.learningRate, accountant: 'rdp', seed: SEED + r });
    return median(d.epochs.map((e) => e.seconds));
  };
  const first = r % 2 === 0 ? 'plain' : 'dp';
  const a = await once(first);
  const b = await once(first === 'plain' ? 'dp' : 'plain');
  const [plainSec, dpSec] = first === 'plain' ? [a, b] : [b, a];
  log(`timing round ${r + 1}/${rounds}: non-private ${plainSec.toFixed(3)} s/epoch, DP-SGD ${dpSec.toFixed(3)} s/epoch`);
  pairs.push({ plainSec, dpSec });
  plain.dispose();
  priv.dispose();
}
const ratio = median(pairs.map((p) => p.dpSec / p.plainSec));
figure('dp_epoch_time_ratio', round(ratio, 3), '<=1.5', {
  dp_epoch_seconds: round(median(pairs.map((p) => p.dpSec)), 3), nonprivate_epoch_seconds: round(median(pairs.map((p) => p.plainSec)), 3),
  batch_size: DP.batchSize, rounds, backend, load: load1m(),
  peer: 'Opacus not installed here (no DP-SGD peer runs); the issue quotes 20–40× non-private time for its per-sample-gradient modes on this MLP',
});

// 3–5. LiRA (16 shadows, reused against every target) beside the loss-threshold attack.
log('training the undefended MLP (the audit\'s default target)');
const undefended = mlp();
await undefended.fit(train, { epochs: defaultEpochs.mlp, seed: SEED });
const t0 = performance.now();
log(`LiRA: training ${SHADOWS} shadow models (mlp, ${defaultEpochs.mlp} epochs each) in worker threads`);
let done = 0;
const shadows = await trainShadowSet({ train, test }, {
  shadows: SHADOWS,
  architecture: { kind: 'zoo', architecture: 'mlp', standardize: false },
  training: { epochs: defaultEpochs.mlp, batchSize: 128, learningRate: 1e-3 },
  evaluate: 1000,
  seed: SEED,
  progress: { start: () => {}, advance: () => log(`shadow ${++done}/${SHADOWS} done (${((performance.now() - t0) / 1000).toFixed(0)} s)`), done: () => {}, log },
});
const liraSeconds = (performance.now() - t0) / 1000;
figure('lira_16_shadows_seconds', round(liraSeconds, 1), '<=600', { shadows: SHADOWS, workers: shadows.workers, notes: shadows.notes, load: load1m() });

const pool = { members: { ...train, x: { data: shadows.poolX.data.subarray(0, 1000 * 784), shape: [1000, 28, 28, 1] }, y: shadows.poolY.subarray(0, 1000) } };
pool.nonMembers = { ...test, x: { data: shadows.poolX.data.subarray(1000 * 784), shape: [1000, 28, 28, 1] }, y: shadows.poolY.subarray(1000) };
const lossU = await lossThresholdAttack(undefended, pool);
const liraU = await liraScore(undefended, shadows);
figure('lira_minus_loss_tpr_at_0.1pct_fpr_undefended', round(liraU.online.tprAt0_1Fpr - lossU.tprAt0_1Fpr), '>0', {
  lira_online_tpr: round(liraU.online.tprAt0_1Fpr), lira_offline_tpr: round(liraU.offline.tprAt0_1Fpr), loss_tpr: round(lossU.tprAt0_1Fpr),
  lira_online_auc: round(liraU.online.auc), loss_auc: round(lossU.auc), lira_empirical_epsilon: round(liraU.online.empiricalEpsilon),
  members: 1000, non_members: 1000,
});
for (const { eps, model, accounted } of dpModels) {
  const l = await liraScore(model, shadows);
  const loss = await lossThresholdAttack(model, pool);
  const empirical = Math.max(l.online.empiricalEpsilon, l.offline.empiricalEpsilon, loss.empiricalEpsilon);
  figure(`empirical_eps_dp_eps${eps}`, round(empirical), `<=${round(accounted)}`, {
    accounted_epsilon: round(accounted), lira_online_auc: round(l.online.auc), lira_online_tpr_at_0_1pct_fpr: round(l.online.tprAt0_1Fpr), loss_auc: round(loss.auc),
    confidence: 0.95, delta: DELTA,
  });
  model.dispose();
}
undefended.dispose();
log(`done; ${tf.memory().numTensors} tensors alive`);
