import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bulwark, tempDir } from '../cli/helpers.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const referenceFile = path.resolve(repoRoot, '../shared/reference/dp-accountant.json');
const reference = existsSync(referenceFile)
  ? (JSON.parse(readFileSync(referenceFile, 'utf8')) as { cases: { sampleRate: number; noiseMultiplier: number; steps: number; delta: number; rdpEpsilon: number; prvEpsilonUpper: number }[] }).cases
  : null;
const dir = tempDir('privacy');

test("bulwark privacy epsilon prints Opacus's reference values", { skip: reference ? false : `reference values missing: ${referenceFile}` }, async () => {
  const c = reference![1];
  const args = ['privacy', 'epsilon', '--sample-rate', String(c.sampleRate), '--noise-multiplier', String(c.noiseMultiplier), '--steps', String(c.steps), '--delta', String(c.delta), '--json'];
  const [rdp, prv, noise] = await Promise.all([
    bulwark([...args, '--accountant', 'rdp']),
    bulwark(args),
    bulwark(['privacy', 'noise', '--epsilon', String(c.rdpEpsilon), '--sample-rate', String(c.sampleRate), '--steps', String(c.steps), '--accountant', 'rdp', '--json']),
  ]);
  assert.equal(rdp.code, 0, rdp.stderr);
  assert.ok(Math.abs(JSON.parse(rdp.stdout).epsilon - c.rdpEpsilon) / c.rdpEpsilon < 1e-6, rdp.stdout);
  assert.equal(prv.code, 0, prv.stderr);
  const p = JSON.parse(prv.stdout);
  assert.equal(p.accountant, 'prv');
  assert.ok(Math.abs(p.epsilon - c.prvEpsilonUpper) <= 0.01, prv.stdout);
  assert.equal(noise.code, 0, noise.stderr);
  assert.ok(Math.abs(JSON.parse(noise.stdout).noiseMultiplier - c.noiseMultiplier) < 1e-3, noise.stdout);
});

test('bad privacy inputs exit 2 with a message that names the problem', async () => {
  const cases: [string[], RegExp][] = [
    [['privacy', 'noise', '--epsilon', '0', '--sample-rate', '0.01', '--steps', '100'], /ε must be positive/],
    [['privacy', 'epsilon', '--sample-rate', '1.5', '--noise-multiplier', '1', '--steps', '100'], /sample rate/],
    [['privacy', 'epsilon', '--sample-rate', '0.01', '--noise-multiplier', '1', '--steps', '100', '--delta', '1'], /δ must be in \(0, 1\)/],
    [['privacy', 'epsilon', '--noise-multiplier', '1', '--steps', '100'], /--sample-rate is required/],
    [['train', '--model', 'logistic', '--dp-epsilon', '0'], /ε must be positive/],
    [['train', '--model', 'logistic', '--dp-epsilon', '1', '--batch-size', '2', '--epochs', '1'], /empty/],
  ];
  const results = await Promise.all(cases.map(([args]) => bulwark(args)));
  for (const [i, [args, pattern]] of cases.entries()) {
    const r = results[i];
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, pattern, args.join(' '));
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
  }
});

test('train --dp-epsilon reports what it spent; attack membership and attack invert run on the result', async () => {
  const out = path.join(dir, 'dp-logistic');
  const trained = await bulwark(['train', '--dataset', 'digits', '--model', 'logistic', '--epochs', '2', '--dp-epsilon', '3', '--out', out, '--json']);
  assert.equal(trained.code, 0, trained.stderr);
  const t = JSON.parse(trained.stdout);
  assert.ok(t.epsilon <= 3 && t.epsilon > 2.9, `ε ${t.epsilon}`);
  assert.equal(t.delta, 1e-5);
  assert.ok(t.noiseMultiplier > 0.5);
  assert.ok(t.testAccuracy > 0.5, `test accuracy ${t.testAccuracy}`);
  assert.match(trained.stderr, /ε spent/);
  assert.equal(JSON.parse(readFileSync(path.join(out, 'bulwark.json'), 'utf8')).privacy.epsilon, t.epsilon);

  const images = path.join(dir, 'inverted');
  const [mia, inv] = await Promise.all([
    bulwark(['attack', 'membership', '--model', out, '--attack', 'loss', '--evaluate', '500', '--json']),
    bulwark(['attack', 'invert', '--model', out, '--class', '3', '--class', '7', '--steps', '50', '--judge', 'none', '--out', images, '--json']),
  ]);
  assert.equal(mia.code, 0, mia.stderr);
  const m = JSON.parse(mia.stdout);
  assert.equal(m.attacks[0].attack, 'loss-threshold');
  assert.ok(m.attacks[0].auc > 0.4 && m.attacks[0].auc < 0.6, `a DP model leaks little: AUC ${m.attacks[0].auc}`);
  assert.ok(m.attacks[0].empiricalEpsilon <= t.epsilon);

  assert.equal(inv.code, 0, inv.stderr);
  const i = JSON.parse(inv.stdout);
  assert.equal(i.mode, 'gradient');
  for (const f of ['class-3.png', 'class-7.png', 'inversion.json']) assert.ok(existsSync(path.join(images, f)), f);
  assert.equal(readFileSync(path.join(images, 'class-3.png')).subarray(1, 4).toString(), 'PNG');
});
