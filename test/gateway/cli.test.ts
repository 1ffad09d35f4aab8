import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, cpSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadPrivateKey, signPath, writeKeyPair, writeSignature } from '../../src/provenance/index.js';
import { bulwark } from '../cli/helpers.js';
import { removeDir, tempDir, trainDigitsModel } from './helpers.js';

const dir = tempDir('gw-cli');
after(() => removeDir(dir));
const store = path.join(dir, 'keys.db');

test('keys create | list | revoke work on the gateway store, beside keys generate', async () => {
  const help = await bulwark(['keys', '--help']);
  for (const verb of ['generate', 'create', 'list', 'revoke']) assert.match(help.stdout, new RegExp(`\\b${verb}\\b`));
  const [created, badScope] = await Promise.all([
    bulwark(['keys', 'create', '--store', store, '--scopes', 'infer,metrics', '--tier', 'gold', '--name', 'alice', '--json']),
    bulwark(['keys', 'create', '--store', store, '--scopes', 'root']),
  ]);
  assert.equal(created.code, 0, created.stderr);
  const k = JSON.parse(created.stdout) as { key: string; id: string; scopes: string[]; tier: string };
  assert.match(k.key, /^bwk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
  assert.deepEqual([k.scopes, k.tier], [['infer', 'metrics'], 'gold']);
  const listed = await bulwark(['keys', 'list', '--store', store]);
  const [revoked, unknown] = await Promise.all([
    bulwark(['keys', 'revoke', k.id, '--store', store, '--json']),
    bulwark(['keys', 'revoke', 'ffffffffffffffff', '--store', store]),
  ]);
  assert.match(listed.stdout, new RegExp(`${k.id}\\s+active\\s+infer,metrics`));
  assert.ok(!listed.stdout.includes(k.key.slice(21)), 'list never shows the key');
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.ok((JSON.parse(revoked.stdout) as { revokedAt: string }).revokedAt);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /no API key with id 'ffffffffffffffff'/);
  assert.equal(badScope.code, 2);
  assert.match(badScope.stderr, /unknown scope 'root'/);
  const after = await bulwark(['keys', 'list', '--store', store, '--json']);
  assert.ok((JSON.parse(after.stdout) as { revokedAt: string | null }[])[0].revokedAt);
});

test('serve refuses unsigned and tampered models, and a bad policy file with its line', async () => {
  const modelDir = path.join(dir, 'digits');
  await trainDigitsModel(modelDir);
  const keys = await writeKeyPair('ed25519', path.join(dir, 'release'));
  const sig = path.join(dir, 'digits.sig');
  await writeSignature(await signPath(modelDir, await loadPrivateKey(keys.privateFile)), sig);
  const badPolicy = path.join(dir, 'bad.yaml');
  writeFileSync(badPolicy, 'tiers:\n  free:\n    output: { kind: top-k, k: -1 }\n');
  const common = ['--store', path.join(dir, 'serve.db'), '--port', '0'];
  const tamperedDir = path.join(dir, 'tampered');
  cpSync(modelDir, tamperedDir, { recursive: true });
  appendFileSync(path.join(tamperedDir, 'weights.bin'), Buffer.from([0]));
  const [unsigned, policy, tampered] = await Promise.all([
    bulwark(['serve', '--model', modelDir, ...common]),
    bulwark(['serve', '--model', modelDir, '--allow-unsigned', '--policy', badPolicy, ...common]),
    bulwark(['serve', '--model', tamperedDir, '--pub', keys.publicFile, '--sig', sig, ...common]),
  ]);
  assert.equal(unsigned.code, 2);
  assert.match(unsigned.stderr, /--pub KEY and --sig SIG.*or --allow-unsigned/);
  assert.equal(policy.code, 2);
  assert.match(policy.stderr, /bad\.yaml:3:\d+: tiers\.free\.output\.k must be >= 1/);
  assert.equal(tampered.code, 2);
  assert.match(tampered.stderr, /fails its signature.*modified weights\.bin.*refusing to serve it/);
});
