import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BulwarkError } from '../../src/core/errors.js';
import { parsePolicy } from '../../src/gateway/index.js';

function fails(text: string, re: RegExp, source = 'policy.yaml'): void {
  assert.throws(
    () => parsePolicy(text, source),
    (e: unknown) => e instanceof BulwarkError && re.test(e.message),
  );
}

test('a YAML policy file becomes tiers, limits, budgets and output policies', () => {
  const p = parsePolicy(
    `tiers:
  free:
    output: { kind: top-k, k: 1 }
    rateLimit: { requests: 10, perSeconds: 1 }
    budget: { samplesPerDay: 1000, samplesPerMonth: 20000 }
  research:
    output:
      - { kind: gaussian, sigma: 0.01, randomness: crypto }
      - { kind: round, decimals: 3 }
  open: {}
clientRateLimit: { requests: 50, perSeconds: 1 }
validation: { maxBatch: 32, range: [-1, 1] }
`,
    'p.yaml',
  );
  assert.deepEqual(p.tiers.free, { output: [{ kind: 'top-k', k: 1 }], rateLimit: { requests: 10, perSeconds: 1 }, budget: { samplesPerDay: 1000, samplesPerMonth: 20000 } });
  assert.equal(p.tiers.research.output.length, 2);
  assert.deepEqual(p.tiers.open.output, [{ kind: 'full' }]);
  assert.deepEqual(p.validation, { maxBatch: 32, maxBodyBytes: 8 * 1024 * 1024, range: [-1, 1] });
  assert.deepEqual(p.clientRateLimit, { requests: 50, perSeconds: 1 });
});

test('JSON policy files are read too', () => {
  const p = parsePolicy('{"tiers": {"a": {"output": {"kind": "label"}}}}', 'p.json');
  assert.deepEqual(p.tiers.a.output, [{ kind: 'label' }]);
});

test('schema errors point at the file, line and column and name the field', () => {
  fails('tiers:\n  free:\n    output: { kind: round, decimal: 2 }\n', /^policy\.yaml:3:13: tiers\.free\.output has an unknown field 'decimal'/);
  fails('tiers:\n  free:\n    output: { kind: top-k, k: 0 }\n', /^policy\.yaml:3:31: tiers\.free\.output\.k must be >= 1/);
  fails('tiers:\n  free:\n    output: { kind: blur }\n', /^policy\.yaml:3:21: tiers\.free\.output\.kind must be one of "full", "round"/);
  fails('tiers:\n  free:\n    rateLimit: { requests: 10 }\n', /^policy\.yaml:3:16: tiers\.free\.rateLimit needs the field 'perSeconds'/);
  fails('tiers:\n  free: {}\nlimits: 3\n', /^policy\.yaml:1:1: \(top level\) has an unknown field 'limits'/);
  fails('tierz: {}\n', /unknown field 'tierz'/);
  fails('clientRateLimit: { requests: 1, perSeconds: 1 }\n', /needs the field 'tiers'/);
  fails('{"tiers": {"a": {"budget": {"samplesPerDay": -5}}}}', /^p\.json:1:46: tiers\.a\.budget\.samplesPerDay must be >= 1/, 'p.json');
  fails('tiers:\n  free:\n    output: { kind: round, decimals: 2 }\nvalidation: { range: [1, 0] }\n', /validation\.range \[1, 0\] must be \[min, max\]/);
});

test('syntax errors point at the line', () => {
  fails('tiers:\n  free:\n    output: { kind: round\n', /^policy\.yaml:\d+:\d+: not valid YAML\/JSON/);
  fails('tiers:\n  a: {}\n  a: {}\n', /^policy\.yaml:3:3: not valid YAML\/JSON: Map keys must be unique/);
  fails('{"tiers": {"a": }', /^p\.json:1:\d+: not valid YAML\/JSON/, 'p.json');
});
