import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { serveOip, type OipServer } from '../../src/engines/index.js';
import { startGateway } from '../../src/gateway/index.js';
import { bulwark } from '../cli/helpers.js';
import { digitsVictim, removeDir, tempDir, type DigitsVictim } from './helpers.js';

let v: DigitsVictim;
let dir: string;
let modelDir: string;
let oip: OipServer;

before(async () => {
  dir = tempDir('extract-cli');
  modelDir = path.join(dir, 'digits');
  v = await digitsVictim(modelDir);
  oip = await serveOip(v.target, { name: 'digits' });
});

after(async () => {
  await oip?.close();
  v?.target.dispose();
  removeDir(dir);
});

/** `bulwark attack extract …` in a child process, through the real command line. */
function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return bulwark(['attack', 'extract', ...args]);
}

test('attack extract --json steals a local model, prints the curve and saves the surrogate', async () => {
  const out = path.join(dir, 'stolen');
  const r = await run(['--target', modelDir, '--budget', '600', '--checkpoints', '300', '--evaluate', '500', '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.queries, 600);
  assert.equal(j.stoppedBy, 'budget');
  assert.equal(j.answerKind, 'probabilities');
  assert.deepEqual(j.curve.map((p: { queries: number }) => p.queries), [300, 600]);
  assert.ok(j.fidelity > 0.8 && j.fidelity === j.curve[1].fidelity, `fidelity ${j.fidelity}`);
  assert.equal(typeof j.accuracy, 'number');
  assert.ok(existsSync(path.join(out, 'model.json')) && existsSync(path.join(out, 'bulwark.json')));
});

test('attack extract against a URL, and the errors a user can make: exit 2 with a clear message', async () => {
  const ok = await run(['--target', oip.url, '--budget', '300', '--evaluate', '200', '--json']);
  assert.equal(ok.code, 0, ok.stderr);
  // Exactly the budget answered; `queries` also counts any attempt the client retried (a slow machine).
  const okJson = JSON.parse(ok.stdout);
  assert.equal(okJson.answered, 300);
  assert.ok(okJson.queries >= 300, `queries ${okJson.queries}`);

  const zero = await run(['--target', modelDir, '--budget', '0']);
  assert.equal(zero.code, 2);
  assert.match(zero.stderr, /'0' is not a positive integer/);
  const notInt = await run(['--target', modelDir, '--budget', '1e3']);
  assert.equal(notInt.code, 2);
  const missing = await run(['--target', modelDir]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--budget is required/);
  const down = await run(['--target', 'http://127.0.0.1:9/v2/models/digits', '--budget', '100']);
  assert.equal(down.code, 2);
  assert.match(down.stderr, /cannot reach http:\/\/127\.0\.0\.1:9/);
});

test('attack extract with a key the gateway refuses: exit 2, the gateway\'s reason shown', async () => {
  const gw = await startGateway({ models: [modelDir], name: 'digits', allowUnsigned: true, port: 0, store: path.join(dir, 'gw.db'), ledger: path.join(dir, 'audit.db') });
  try {
    const { key } = await gw.store.createKey({ name: 'metrics only', scopes: ['metrics'], tier: 'default' });
    const wrong = await run(['--target', `${gw.url}/v2/models/digits`, '--key', 'bwk_not-a-real-key', '--budget', '100']);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /answered 401 .*not valid/);
    const scoped = await run(['--target', `${gw.url}/v2/models/digits`, '--key', key, '--budget', '100']);
    assert.equal(scoped.code, 2);
    assert.match(scoped.stderr, /answered 403 .*lacks the 'infer' scope/);
  } finally {
    await gw.close();
  }
});
