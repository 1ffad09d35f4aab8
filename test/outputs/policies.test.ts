import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BulwarkError } from '../../src/core/errors.js';
import { hasCapability, type Predictor } from '../../src/core/model.js';
import type { Samples } from '../../src/core/samples.js';
import { applyOutputPolicy, checkOutputPolicy, cryptoNormal, misinformRow, withOutputPolicy, type OutputPolicy } from '../../src/outputs/index.js';

function rows(...r: number[][]): Samples {
  return { data: Float32Array.from(r.flat()), shape: [r.length, r[0].length] };
}

function close(actual: Samples, expected: number[][], tol = 1e-6): void {
  assert.deepEqual(actual.shape, [expected.length, expected[0].length]);
  const flat = expected.flat();
  for (let i = 0; i < flat.length; i++) {
    assert.ok(Math.abs(actual.data[i] - flat[i]) <= tol, `value ${i}: got ${actual.data[i]}, want ${flat[i]} (±${tol})\n  got ${Array.from(actual.data).join(', ')}`);
  }
}

function rowSums(s: Samples): number[] {
  const [n, k] = s.shape;
  return Array.from({ length: n }, (_, i) => s.data.subarray(i * k, (i + 1) * k).reduce((a, b) => a + b, 0));
}

const P = rows([0.1, 0.5, 0.15, 0.25], [0.25, 0.25, 0.25, 0.25]);

test('full returns the probabilities unchanged, as a copy', () => {
  const out = applyOutputPolicy(P, { kind: 'full' });
  assert.deepEqual(Array.from(out.data), Array.from(P.data));
  assert.notEqual(out.data, P.data);
});

test('round uses largest remainders: multiples of 10^-k that sum to exactly 1', () => {
  // Plain rounding of four quarters to one decimal gives 1.2 (or 0.8); largest remainder gives 0.3+0.3+0.2+0.2.
  close(applyOutputPolicy(P, { kind: 'round', decimals: 1 }), [
    [0.1, 0.5, 0.2, 0.2],
    [0.3, 0.3, 0.2, 0.2],
  ]);
  // 55.4 + 33.3 + 11.3 units: the floors give 99, the missing unit goes to the largest remainder (plain rounding: 0.99).
  close(applyOutputPolicy(rows([0.554, 0.333, 0.113]), { kind: 'round', decimals: 2 }), [[0.56, 0.33, 0.11]]);
  close(applyOutputPolicy(rows([0.554, 0.333, 0.113]), { kind: 'round', decimals: 0 }), [[1, 0, 0]]);
  for (const s of rowSums(applyOutputPolicy(P, { kind: 'round', decimals: 3 }))) assert.ok(Math.abs(s - 1) < 1e-6);
});

test('top-k keeps the k largest, rescaled by default and raw on request', () => {
  close(applyOutputPolicy(P, { kind: 'top-k', k: 2 }), [
    [0, 2 / 3, 0, 1 / 3],
    [0.5, 0.5, 0, 0], // ties go to the lower class index
  ]);
  close(applyOutputPolicy(P, { kind: 'top-k', k: 2, renormalize: false }), [
    [0, 0.5, 0, 0.25],
    [0.25, 0.25, 0, 0],
  ]);
  close(applyOutputPolicy(P, { kind: 'top-k', k: 9 }), [
    [0.1, 0.5, 0.15, 0.25],
    [0.25, 0.25, 0.25, 0.25],
  ]);
});

test('label answers one-hot at the argmax', () => {
  close(applyOutputPolicy(P, { kind: 'label' }), [
    [0, 1, 0, 0],
    [1, 0, 0, 0],
  ]);
});

test('gaussian adds sigma × the noise source, clips at 0 and rescales', () => {
  const script = [0.5, -1, 2, 0, -10, 0, 0, 0];
  let i = 0;
  const noise = () => script[i++];
  // Row 1: [0.1, 0.5, 0.15, 0.25] + 0.1·[0.5, -1, 2, 0] = [0.15, 0.4, 0.35, 0.25] → / 1.15.
  // Row 2: 0.25 − 1 clips to 0; the other three share the rest equally.
  close(applyOutputPolicy(P, { kind: 'gaussian', sigma: 0.1 }, noise), [
    [0.15 / 1.15, 0.4 / 1.15, 0.35 / 1.15, 0.25 / 1.15],
    [0, 1 / 3, 1 / 3, 1 / 3],
  ]);
  // Everything clipped: the row falls back to one-hot at the noisy argmax, never NaN.
  close(applyOutputPolicy(rows([0.5, 0.5]), { kind: 'gaussian', sigma: 1 }, () => -5), [[1, 0]]);
});

test('gaussian is repeatable with a seed and fresh with crypto randomness', () => {
  const seeded = (seed: number) => applyOutputPolicy(P, { kind: 'gaussian', sigma: 0.05, seed });
  assert.deepEqual(Array.from(seeded(7).data), Array.from(seeded(7).data));
  assert.notDeepEqual(Array.from(seeded(7).data), Array.from(seeded(8).data));
  const c = () => Array.from(applyOutputPolicy(P, { kind: 'gaussian', sigma: 0.05, randomness: 'crypto' }).data);
  assert.notDeepEqual(c(), c());
  for (const s of rowSums(seeded(3))) assert.ok(Math.abs(s - 1) < 1e-5);
});

test('cryptoNormal draws standard normals', () => {
  const draw = cryptoNormal();
  const n = 40_000;
  let sum = 0;
  let sq = 0;
  let within1 = 0;
  for (let i = 0; i < n; i++) {
    const v = draw();
    sum += v;
    sq += v * v;
    if (Math.abs(v) < 1) within1++;
  }
  const mean = sum / n;
  const sd = Math.sqrt(sq / n - mean * mean);
  assert.ok(Math.abs(mean) < 0.03, `mean ${mean}`);
  assert.ok(Math.abs(sd - 1) < 0.03, `sd ${sd}`);
  assert.ok(Math.abs(within1 / n - 0.6827) < 0.015, `P(|z|<1) ${within1 / n}`);
});

test('reverse sigmoid matches Lee et al.’s formula by hand', () => {
  // p − β(σ(γ·ln(p/(1−p))) − ½), clipped to [0,1], rescaled; values from the formula in float64.
  close(applyOutputPolicy(rows([0.7, 0.2, 0.1]), { kind: 'reverse-sigmoid' }), [[0.6355238073613384, 0.2196353785803839, 0.14484081405827764]]);
  // A strong perturbation (β=2, γ=0.5) is deceptive: the 0.9 class is pushed below the others.
  close(applyOutputPolicy(rows([0.9, 0.05, 0.05]), { kind: 'reverse-sigmoid', beta: 2, gamma: 0.5 }), [[0.22810504986836977, 0.38594747506581506, 0.38594747506581506]]);
});

test('policy parameters are checked with the field named', () => {
  const bad: [OutputPolicy, RegExp][] = [
    [{ kind: 'round', decimals: -1 }, /round\.decimals/],
    [{ kind: 'round', decimals: 1.5 }, /round\.decimals/],
    [{ kind: 'top-k', k: 0 }, /top-k\.k/],
    [{ kind: 'gaussian', sigma: 0 }, /gaussian\.sigma/],
    [{ kind: 'reverse-sigmoid', beta: -1 }, /reverse-sigmoid\.beta/],
    [{ kind: 'nope' } as unknown as OutputPolicy, /kind must be one of/],
  ];
  for (const [p, re] of bad) assert.throws(() => checkOutputPolicy(p), (e: unknown) => e instanceof BulwarkError && e.code === 'E_USAGE' && re.test(e.message));
});

test('withOutputPolicy wraps a model: predict only, policies applied in order', async () => {
  const base: Predictor & { lossGradient: () => Promise<Samples> } = {
    info: { name: 'fixed', engine: 'test', inputShape: [2], numClasses: 4 },
    predict: async (x) => rows(...Array.from({ length: x.shape[0] }, () => [0.1, 0.5, 0.15, 0.25])),
    lossGradient: async () => rows([0]),
  };
  const m = withOutputPolicy(base, [{ kind: 'top-k', k: 2 }, { kind: 'round', decimals: 2 }]);
  assert.equal(m.info.numClasses, 4);
  assert.deepEqual(m.info.inputShape, [2]);
  assert.match(m.info.name, /top-2 → round\(2\)/);
  assert.equal(hasCapability(m, 'lossGradient'), false, 'gradients would bypass the policy');
  close(await m.predict({ data: new Float32Array(4), shape: [2, 2] }), [
    [0, 0.67, 0, 0.33],
    [0, 0.67, 0, 0.33],
  ]);
  // Seeded noise: fresh draws per call, the same sequence per wrapper.
  const a = withOutputPolicy(base, { kind: 'gaussian', sigma: 0.05, seed: 1 });
  const b = withOutputPolicy(base, { kind: 'gaussian', sigma: 0.05, seed: 1 });
  const x = { data: new Float32Array(2), shape: [1, 2] };
  const a1 = Array.from((await a.predict(x)).data);
  const a2 = Array.from((await a.predict(x)).data);
  assert.notDeepEqual(a1, a2);
  assert.deepEqual(Array.from((await b.predict(x)).data), a1);
  assert.throws(() => withOutputPolicy(base, []), /at least one policy/);
});

test('misinformRow swaps the top two classes and keeps the rest', () => {
  const r = new Float32Array([0.1, 0.6, 0.05, 0.25]);
  misinformRow(r);
  assert.deepEqual(Array.from(r), Array.from(new Float32Array([0.1, 0.25, 0.05, 0.6])));
  const onehot = new Float32Array([0, 0, 1]);
  misinformRow(onehot);
  assert.deepEqual(Array.from(onehot), [1, 0, 0], 'a one-hot row moves its 1 to the lowest other class');
  const one = new Float32Array([1]);
  misinformRow(one);
  assert.deepEqual(Array.from(one), [1], 'a single class has nothing to swap with');
});
