import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BulwarkError } from '../../src/core/index.js';
import {
  PrivacyAccountant,
  calibrateNoise,
  computeEpsilon,
  gaussianEpsilon,
  gaussianMechanism,
  gaussianSigma,
  laplaceMechanism,
  maxStepsWithin,
  prvEpsilon,
  rdpEpsilon,
  secureNoise,
  seededNoise,
} from '../../src/privacy/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const referenceFile = path.resolve(repoRoot, '../shared/reference/dp-accountant.json');

interface ReferenceCase {
  sampleRate: number;
  noiseMultiplier: number;
  steps: number;
  delta: number;
  rdpEpsilon: number;
  rdpOrder: number;
  prvEpsilonUpper: number;
  pldEpsilon: number;
}

const reference: ReferenceCase[] | null = existsSync(referenceFile) ? (JSON.parse(readFileSync(referenceFile, 'utf8')) as { cases: ReferenceCase[] }).cases : null;
const noReference = reference ? false : `reference values missing: ${referenceFile} (Opacus's accountant outputs) is not there`;

const usageError = (pattern: RegExp) => (e: unknown) => e instanceof BulwarkError && e.code === 'E_USAGE' && pattern.test(e.message);

test("RDP agrees with Opacus's RDPAccountant to 1e-6 relative, at the same order", { skip: noReference }, () => {
  for (const c of reference!) {
    const r = rdpEpsilon([{ sampleRate: c.sampleRate, noiseMultiplier: c.noiseMultiplier, steps: c.steps }], c.delta);
    assert.ok(Math.abs(r.epsilon - c.rdpEpsilon) / c.rdpEpsilon < 1e-6, `q=${c.sampleRate} σ=${c.noiseMultiplier} T=${c.steps}: ${r.epsilon} vs ${c.rdpEpsilon}`);
    assert.equal(r.order, c.rdpOrder);
  }
});

test("PRV agrees with Opacus's PRVAccountant within its ε error, and brackets the PLD value", { skip: noReference }, () => {
  for (const c of reference!) {
    const r = prvEpsilon([{ sampleRate: c.sampleRate, noiseMultiplier: c.noiseMultiplier, steps: c.steps }], c.delta);
    const label = `q=${c.sampleRate} σ=${c.noiseMultiplier} T=${c.steps}`;
    assert.ok(Math.abs(r.epsilon - c.prvEpsilonUpper) <= r.epsError, `${label}: upper ${r.epsilon} vs Opacus ${c.prvEpsilonUpper}`);
    // The tight value (Google's PLD accountant) lies inside our stated interval, and PRV is tighter than RDP.
    assert.ok(r.lower <= c.pldEpsilon && c.pldEpsilon <= r.epsilon, `${label}: PLD ${c.pldEpsilon} outside [${r.lower}, ${r.epsilon}]`);
    assert.ok(r.epsilon < c.rdpEpsilon, `${label}: PRV ${r.epsilon} should beat RDP ${c.rdpEpsilon}`);
  }
});

test('calibrateNoise inverts computeEpsilon for both accountants', () => {
  const sigmas: Record<string, number> = {};
  for (const accountant of ['rdp', 'prv'] as const) {
    const o = { targetEpsilon: 3, delta: 1e-5, sampleRate: 256 / 8000, steps: 400, accountant };
    const sigma = calibrateNoise(o);
    sigmas[accountant] = sigma;
    const at = computeEpsilon({ sampleRate: o.sampleRate, noiseMultiplier: sigma, steps: o.steps, delta: o.delta, accountant });
    assert.ok(at <= 3 && at > 2.97, `${accountant}: ε(σ=${sigma}) = ${at}`);
    const less = computeEpsilon({ sampleRate: o.sampleRate, noiseMultiplier: sigma * 0.99, steps: o.steps, delta: o.delta, accountant });
    assert.ok(less > 3, `${accountant}: 1% less noise must overspend, got ${less}`);
  }
  // The tighter accountant needs less noise for the same budget.
  assert.ok(sigmas.prv < sigmas.rdp, `prv σ ${sigmas.prv} vs rdp σ ${sigmas.rdp}`);
});

test('the accountant merges steps, grows with them, and maxStepsWithin stops at the budget', () => {
  const acc = new PrivacyAccountant('rdp');
  for (let i = 0; i < 100; i++) acc.step(0.02, 1.1);
  assert.equal(acc.history.length, 1);
  assert.equal(acc.steps, 100);
  const e100 = acc.getEpsilon(1e-5);
  assert.equal(e100, computeEpsilon({ sampleRate: 0.02, noiseMultiplier: 1.1, steps: 100, delta: 1e-5, accountant: 'rdp' }));
  acc.step(0.02, 0.8, 50);
  assert.equal(acc.history.length, 2);
  assert.ok(acc.getEpsilon(1e-5) > e100);
  const steps = maxStepsWithin({ targetEpsilon: 2, delta: 1e-5, sampleRate: 0.02, noiseMultiplier: 1.1, maxSteps: 100_000, accountant: 'rdp' });
  const eps = (t: number) => computeEpsilon({ sampleRate: 0.02, noiseMultiplier: 1.1, steps: t, delta: 1e-5, accountant: 'rdp' });
  assert.ok(eps(steps) <= 2 && eps(steps + 1) > 2, `${steps} steps`);
});

test('bad accounting inputs are refused with a clear message', () => {
  const base = { sampleRate: 0.01, noiseMultiplier: 1, steps: 100, delta: 1e-5 };
  assert.throws(() => computeEpsilon({ ...base, sampleRate: 0 }), usageError(/sample rate must be in \(0, 1\]/));
  assert.throws(() => computeEpsilon({ ...base, sampleRate: 1.5 }), usageError(/sample rate/));
  assert.throws(() => computeEpsilon({ ...base, delta: 1 }), usageError(/δ must be in \(0, 1\)/));
  assert.throws(() => computeEpsilon({ ...base, steps: 2.5 }), usageError(/steps/));
  assert.throws(() => calibrateNoise({ targetEpsilon: 0, delta: 1e-5, sampleRate: 0.01, steps: 10 }), usageError(/target ε must be a positive/));
  assert.throws(() => calibrateNoise({ targetEpsilon: -1, delta: 1e-5, sampleRate: 0.01, steps: 10 }), usageError(/positive/));
  assert.equal(computeEpsilon({ ...base, noiseMultiplier: 0 }), Infinity);
  assert.equal(computeEpsilon({ ...base, steps: 0 }), 0);
});

test('Laplace and Gaussian mechanisms add noise of the calibrated size', () => {
  const n = 20000;
  const zeros = new Float64Array(n);
  const lap = laplaceMechanism(zeros, { sensitivity: 2, epsilon: 0.5, seed: 1 });
  assert.equal(lap.scale, 4);
  assert.equal(lap.delta, 0);
  const meanAbs = lap.values.reduce((s, v) => s + Math.abs(v), 0) / n; // E|Laplace(b)| = b
  assert.ok(Math.abs(meanAbs - 4) < 0.15, `mean |noise| ${meanAbs}`);
  assert.deepEqual(laplaceMechanism(zeros, { sensitivity: 2, epsilon: 0.5, seed: 1 }).values, lap.values, 'same seed, same noise');

  // The analytic Gaussian mechanism: tight for any ε, never worse than the classical bound (ε < 1).
  const sigma = gaussianSigma(1, 0.5, 1e-5);
  assert.ok(sigma < Math.sqrt(2 * Math.log(1.25 / 1e-5)) / 0.5, `σ ${sigma}`);
  assert.ok(Math.abs(gaussianEpsilon(sigma, 1, 1e-5) - 0.5) < 1e-6);
  const g = gaussianMechanism(zeros, { sensitivity: 1, epsilon: 0.5, delta: 1e-5, noise: secureNoise() });
  assert.equal(g.noise, 'secure');
  const sd = Math.sqrt(g.values.reduce((s, v) => s + v * v, 0) / n);
  assert.ok(Math.abs(sd / sigma - 1) < 0.03, `sd ${sd} vs σ ${sigma}`);
  assert.throws(() => laplaceMechanism([1], { sensitivity: 1, epsilon: 0 }), usageError(/ε must be a positive/));
});

test('seeded noise repeats and looks normal; secure noise does not repeat', () => {
  const a = new Float32Array(100_000);
  const b = new Float32Array(100_000);
  seededNoise(7).fillNormal(a, 1);
  seededNoise(7).fillNormal(b, 1);
  assert.deepEqual(a, b);
  let m = 0;
  let v = 0;
  for (const x of a) m += x;
  m /= a.length;
  for (const x of a) v += (x - m) ** 2;
  v /= a.length;
  assert.ok(Math.abs(m) < 0.015 && Math.abs(v - 1) < 0.02, `mean ${m}, variance ${v}`);
  const s1 = secureNoise();
  const s2 = secureNoise();
  assert.notEqual(s1.normal(), s2.normal());
});
