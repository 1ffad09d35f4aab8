import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BulwarkError, Rng, argmaxRows, type Samples } from '../../src/core/index.js';
import { ensembleModel, fgsm, pgd, square, hopSkipJump, summarizeEvasion } from '../../src/evasion/index.js';
import { accuracyOf, chaosModel, l2Diff, linearModel, maxAbsDiff, predictOnly, randomLinear, uniformSamples } from './toy.js';

const D = 64;
const N = 40;

/** Inputs with many values on the edges of [0, 1], where clipping matters most. */
function edgyInputs(n: number, seed: number): Samples {
  const x = uniformSamples(n, [D], seed);
  for (let j = 0; j < x.data.length; j += 3) x.data[j] = j % 2 ? 1 : 0;
  return x;
}

function assertWithin(x: Samples, adv: Samples, eps: number, norm: 'linf' | 'l2', lo = 0, hi = 1): void {
  assert.deepEqual(adv.shape, x.shape);
  const d = adv.data.length / adv.shape[0];
  for (let i = 0; i < adv.shape[0]; i++) {
    const size = norm === 'linf' ? maxAbsDiff(adv.data, x.data, i * d, d) : l2Diff(adv.data, x.data, i * d, d);
    assert.ok(size <= eps, `sample ${i}: ${norm} perturbation ${size} exceeds eps ${eps}`);
  }
  for (const v of adv.data) assert.ok(v >= lo && v <= hi, `value ${v} left the valid range [${lo}, ${hi}]`);
}

test('PGD never leaves the eps-ball or the valid range, whatever the gradient says (L∞ and L2)', async () => {
  const y = new Int32Array(N); // the chaos model always answers 0: never fooled, so every step is taken
  for (const eps of [0.003, 0.1, 0.3]) {
    const x = edgyInputs(N, 7);
    const r = await pgd(chaosModel(D, 3, 1), x, y, { eps, steps: 12, restarts: 2, seed: 3 });
    assertWithin(x, r.adversarial, eps, 'linf');
    assert.ok(Math.max(...r.norms) > 0.9 * eps, 'the random steps reach the edge of the ball');
  }
  for (const eps of [0.05, 1, 3]) {
    const x = edgyInputs(N, 8);
    const r = await pgd(chaosModel(D, 3, 2), x, y, { eps, norm: 'l2', steps: 12, restarts: 2, seed: 4 });
    assertWithin(x, r.adversarial, eps, 'l2');
    r.norms.forEach((v, i) => assert.ok(Math.abs(v - l2Diff(r.adversarial.data, x.data, i * D, D)) < 1e-9));
  }
  // Another valid range, and none at all.
  const wide = uniformSamples(N, [D], 9, -1, 2);
  const r = await pgd(chaosModel(D, 3, 3), wide, y, { eps: 0.5, steps: 5, clip: [-1, 2] });
  assertWithin(wide, r.adversarial, 0.5, 'linf', -1, 2);
  const free = await pgd(chaosModel(D, 3, 3), wide, y, { eps: 0.5, steps: 5, clip: null, randomStart: false });
  assertWithin(wide, free.adversarial, 0.5, 'linf', -Infinity, Infinity);
});

test('FGSM moves every free coordinate by exactly eps and respects the range', async () => {
  const model = randomLinear(D, 3, 11);
  const x = edgyInputs(N, 12);
  const y = argmaxRows(await model.predict(x));
  const r = await fgsm(model, x, y, { eps: 0.05 });
  assertWithin(x, r.adversarial, 0.05, 'linf');
  let exact = 0;
  let interior = 0;
  for (let j = 0; j < x.data.length; j++) {
    if (x.data[j] < 0.05 || x.data[j] > 0.95) continue;
    interior++;
    if (Math.abs(Math.abs(r.adversarial.data[j] - x.data[j]) - 0.05) < 1e-7) exact++;
  }
  assert.equal(exact, interior, 'interior coordinates move by eps');
  const l2 = await fgsm(model, x, y, { eps: 0.7, norm: 'l2' });
  assertWithin(x, l2.adversarial, 0.7, 'l2');
});

test('PGD beats the linear model, and its targeted form reaches the target', async () => {
  const model = randomLinear(D, 3, 21);
  const x = uniformSamples(200, [D], 22);
  const y = argmaxRows(await model.predict(x));
  const r = await pgd(model, x, y, { eps: 0.1, steps: 20 });
  const s = summarizeEvasion(r, y);
  assert.equal(s.cleanAccuracy, 1);
  assert.ok(s.robustAccuracy < 0.5, `robust accuracy ${s.robustAccuracy}`);
  assert.equal(accuracyOf(r.predicted, y), s.robustAccuracy);
  r.success.forEach((ok, i) => assert.equal(ok, r.predicted[i] !== y[i]));

  const targets = Int32Array.from(y, (c) => (c + 1) % 3);
  const t = await pgd(model, x, y, { eps: 0.3, steps: 30, targets });
  const hit = t.predicted.filter((c, i) => c === targets[i]).length / targets.length;
  assert.ok(hit > 0.9, `targeted success ${hit}`);
  assert.ok(t.targeted);
});

test('gradient attacks on a predict-only model fail at once, naming the attack, the model and what would work', async () => {
  const blackBox = predictOnly(randomLinear(D, 3, 1), 'http://example/v2/models/digits');
  const x = uniformSamples(2, [D], 1);
  for (const [name, run] of [
    ['FGSM', () => fgsm(blackBox, x, new Int32Array(2), { eps: 0.1 })],
    ['PGD', () => pgd(blackBox, x, new Int32Array(2), { eps: 0.1 })],
  ] as const) {
    await assert.rejects(run, (e: unknown) => {
      assert.ok(e instanceof BulwarkError);
      assert.equal(e.code, 'E_MODEL_CAPABILITY');
      assert.match(e.message, new RegExp(`^${name} needs the 'lossGradient' capability`));
      assert.match(e.message, /http:\/\/example\/v2\/models\/digits/);
      assert.match(e.message, /offers only: predict/);
      assert.match(e.message, /square.*hsj/);
      return true;
    });
  }
});

test('bad attack options are refused with the reason', async () => {
  const model = randomLinear(D, 3, 1);
  const x = uniformSamples(4, [D], 1);
  const y = new Int32Array(4);
  const bad: [() => Promise<unknown>, string, RegExp][] = [
    [() => pgd(model, x, y, { eps: 0 }), 'E_USAGE', /eps must be a positive number/],
    [() => pgd(model, x, y, { eps: Number.NaN }), 'E_USAGE', /eps must be a positive number/],
    [() => fgsm(model, x, y, { eps: 1.5 }), 'E_USAGE', /eps 1\.5 \(linf\) is larger than the whole input range \[0, 1\]/],
    [() => pgd(model, x, y, { eps: 9, norm: 'l2' }), 'E_USAGE', /eps 9 \(l2\) is larger/],
    [() => pgd(model, { data: x.data.map((v) => v * 255), shape: x.shape }, y, { eps: 0.1 }), 'E_DATA_VALUE', /outside the valid range \[0, 1\].*--clip MIN,MAX/],
    [() => pgd(model, x, y, { eps: 0.1, steps: 0 }), 'E_USAGE', /steps must be a positive integer/],
    [() => pgd(model, x, y, { eps: 0.1, targets: new Int32Array(4) }), 'E_USAGE', /its own class/],
    [() => pgd(model, x, new Int32Array(3), { eps: 0.1 }), 'E_DATA_SHAPE', /4 samples but 3 labels/],
    [() => pgd(model, x, Int32Array.from([0, 0, 0, 7]), { eps: 0.1 }), 'E_DATA_VALUE', /label 7 of sample 3/],
    [() => square(model, x, y, { eps: 0.1, budget: 0 }), 'E_USAGE', /query budget must be a positive integer/],
    [() => hopSkipJump(model, x, y, { budget: 0 }), 'E_USAGE', /query budget must be a positive integer/],
    [() => hopSkipJump(model, x, y, { clip: null }), 'E_USAGE', /needs the valid input range/],
    [() => pgd(model, uniformSamples(2, [D + 1], 1), new Int32Array(2), { eps: 0.1 }), 'E_DATA_SHAPE', /expects samples of shape \[64\]/],
  ];
  for (const [run, code, message] of bad) {
    await assert.rejects(run, (e: unknown) => e instanceof BulwarkError && e.code === code && message.test(e.message));
  }
});

test('an ensemble averages probabilities and its loss gradient is the exact one, so PGD attacks it whole', async () => {
  const a = randomLinear(D, 3, 31);
  const b = randomLinear(D, 3, 32);
  const ens = ensembleModel([a, b], { weights: [1, 3] });
  const x = uniformSamples(5, [D], 33);
  const [pa, pb, pe] = [await a.predict(x), await b.predict(x), await ens.predict(x)];
  pe.data.forEach((v, j) => assert.ok(Math.abs(v - (0.25 * pa.data[j] + 0.75 * pb.data[j])) < 1e-6));

  // Central differences of −log P_y against the analytic gradient.
  const y = Int32Array.from([0, 1, 2, 0, 1]);
  const g = await ens.lossGradient!(x, y);
  const loss = async (v: Samples, i: number) => -Math.log((await ens.predict(v)).data[i * 3 + y[i]]);
  const rng = new Rng(5);
  for (let t = 0; t < 10; t++) {
    const i = rng.int(5);
    const j = rng.int(D);
    const h = 1e-3;
    const up = new Float32Array(x.data);
    const down = new Float32Array(x.data);
    up[i * D + j] += h;
    down[i * D + j] -= h;
    const numeric = ((await loss({ data: up, shape: x.shape }, i)) - (await loss({ data: down, shape: x.shape }, i))) / (2 * h);
    assert.ok(Math.abs(numeric - g.data[i * D + j]) < 2e-3 * Math.max(1, Math.abs(numeric)), `d/dx[${i},${j}]: numeric ${numeric} vs ${g.data[i * D + j]}`);
  }

  const xs = uniformSamples(100, [D], 34);
  const ys = argmaxRows(await ens.predict(xs));
  const r = await pgd(ens, xs, ys, { eps: 0.1, steps: 20 });
  assert.ok(summarizeEvasion(r, ys).robustAccuracy < 0.5);
  assert.equal(ensembleModel([predictOnly(a), b]).lossGradient, undefined, 'no gradients when a member has none');
  assert.throws(() => ensembleModel([a, randomLinear(D, 4, 1)]), /ensemble members disagree/);
});

test('FGSM needs only lossGradient: a hand-written model works like any other', async () => {
  // Class 1 wins when the first feature is large: FGSM at eps 0.3 flips points near the boundary.
  const w = Array.from({ length: 4 }, (_, f) => (f === 0 ? [-5, 5] : [0, 0]));
  const model = linearModel(w, [2.5, -2.5], [4]);
  const x: Samples = { data: Float32Array.from([0.6, 0, 0, 0, 0.9, 0, 0, 0]), shape: [2, 4] };
  const y = Int32Array.from([1, 1]);
  const r = await fgsm(model, x, y, { eps: 0.3 });
  assert.deepEqual(Array.from(r.predicted), [0, 1]);
  assert.deepEqual(r.success, [true, false]);
  assert.ok(Math.abs(r.adversarial.data[0] - 0.3) < 1e-6);
});
