import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { BulwarkError, type Samples } from '../../src/core/index.js';
import { applyOutputPolicy, withOutputPolicy } from '../../src/outputs/index.js';
import { detectAnswerKind, extract, refusalStatus } from '../../src/extraction/index.js';
import { counted, digitsVictim, type DigitsVictim } from './helpers.js';

let v: DigitsVictim;
let tensorsBefore = 0;

before(async () => {
  v = await digitsVictim();
  tensorsBefore = tf.memory().numTensors;
});

after(() => {
  assert.equal(tf.memory().numTensors, tensorsBefore, 'every surrogate and every tensor of the attack is released');
  v.target.dispose();
});

test('natural queries: 2,000 answers steal a digits MLP with ≥ 85% fidelity, and not one query more', async () => {
  const target = counted(v.target);
  const r = await extract(target, { budget: 2000, pool: v.pool, holdout: v.holdout, reference: v.target, checkpoints: [250, 1000], seed: 3 });
  try {
    assert.equal(r.queriesUsed, 2000);
    assert.equal(target.rows, 2000, 'the target saw exactly the budget');
    assert.equal(r.evaluationQueries, 0);
    assert.equal(r.stoppedBy, 'budget');
    assert.equal(r.answerKind, 'probabilities');
    assert.deepEqual(r.curve.map((p) => p.queries), [250, 1000, 2000]);
    assert.ok(r.fidelity >= 0.85, `fidelity ${r.fidelity}`);
    assert.ok(r.curve[2].fidelity > r.curve[0].fidelity, `fidelity grows with queries: ${JSON.stringify(r.curve)}`);
    // The copy is close to the original's own accuracy, though it never saw a true label.
    assert.ok(r.accuracy > r.targetAccuracy - 0.06, `surrogate ${r.accuracy} vs target ${r.targetAccuracy}`);
    assert.ok(r.targetAccuracy > 0.85);
    // The stolen model is a real, usable model of the same kind.
    assert.equal(r.surrogate.info.numClasses, 10);
    assert.deepEqual(r.surrogate.info.inputShape, [28, 28, 1]);
  } finally {
    r.surrogate.dispose();
  }
});

test('without a reference the target is asked about the holdout once, outside the budget', async () => {
  const target = counted(withOutputPolicy(v.target, { kind: 'label' }));
  const r = await extract(target, { budget: 300, pool: v.pool, holdout: v.holdout, checkpoints: [], seed: 3, batchSize: 64 });
  r.surrogate.dispose();
  assert.equal(r.queriesUsed, 300);
  assert.equal(r.evaluationQueries, 1000);
  assert.equal(target.rows, 1300);
  assert.equal(target.calls, 1 + Math.ceil(300 / 64), 'the budget is sent in batches of at most batchSize, the last one cut to fit');
  assert.equal(r.answerKind, 'labels');
  assert.ok(r.fidelity > 0.7, `fidelity from 300 labels: ${r.fidelity}`);
});

test('Jacobian augmentation and active learning run on their own schedules; random noise steals far less', async () => {
  const jac = await extract(v.target, { budget: 600, strategy: 'jacobian', pool: v.pool, holdout: v.holdout, reference: v.target, jacobian: { seeds: 150 }, seed: 3 });
  jac.surrogate.dispose();
  // Each round doubles the set: 150 seeds, then 300, then 600.
  assert.deepEqual(jac.curve.map((p) => p.queries), [150, 300, 600]);
  assert.ok(jac.fidelity > 0.65, `jacobian fidelity ${jac.fidelity}`);

  const act = await extract(v.target, { budget: 1000, strategy: 'active', pool: v.pool, holdout: v.holdout, reference: v.target, checkpoints: [500], seed: 3 });
  act.surrogate.dispose();
  assert.deepEqual(act.curve.map((p) => p.queries), [500, 1000]);
  assert.ok(act.fidelity >= 0.88, `active fidelity ${act.fidelity}`);

  const rnd = await extract(v.target, { budget: 500, strategy: 'random', holdout: v.holdout, reference: v.target, checkpoints: [], seed: 3 });
  rnd.surrogate.dispose();
  assert.ok(rnd.fidelity < jac.fidelity - 0.3, `uniform noise ${rnd.fidelity} vs jacobian ${jac.fidelity}`);
});

test('the kind of answer is read from the answers: full, rounded, top-k, labels', async () => {
  const p = await v.target.predict({ data: v.pool.data.subarray(0, 200 * 784), shape: [200, 28, 28, 1] });
  const kind = (s: Samples) => detectAnswerKind(s);
  assert.deepEqual(kind(p), { kind: 'probabilities' });
  assert.deepEqual(kind(applyOutputPolicy(p, { kind: 'round', decimals: 1 })), { kind: 'rounded', decimals: 1 });
  assert.deepEqual(kind(applyOutputPolicy(p, { kind: 'round', decimals: 3 })), { kind: 'rounded', decimals: 3 });
  assert.deepEqual(kind(applyOutputPolicy(p, { kind: 'top-k', k: 3 })), { kind: 'top-k', k: 3 });
  assert.deepEqual(kind(applyOutputPolicy(p, { kind: 'label' })), { kind: 'labels' });
});

test('bad options fail at once with a message that names the fix', async () => {
  const base = { pool: v.pool, holdout: v.holdout };
  await assert.rejects(extract(v.target, { ...base, budget: 0 }), /budget must be an integer of at least 1, not 0/);
  await assert.rejects(extract(v.target, { ...base, budget: 2.5 }), /budget must be an integer/);
  await assert.rejects(extract(v.target, { budget: 10, holdout: v.holdout, strategy: 'natural' }), /needs a pool of natural inputs/);
  await assert.rejects(extract(v.target, { ...base, budget: 10, pool: { data: new Float32Array(20), shape: [2, 10] } }), (e: unknown) => e instanceof BulwarkError && e.code === 'E_DATA_SHAPE');
  assert.equal(refusalStatus(new BulwarkError('E_REMOTE', 'http://x/v2/models/m/infer answered 403 Forbidden: key suspended')), 403);
  assert.equal(refusalStatus(new BulwarkError('E_REMOTE', 'http://x: the server is rate limiting (429) and still refuses after 3 attempts; slow down')), 429);
  assert.equal(refusalStatus(new BulwarkError('E_REMOTE', 'cannot reach http://x: ECONNREFUSED')), null);
});
