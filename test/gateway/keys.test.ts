import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashKey, keyId, keyMatches, newApiKey } from '../../src/gateway/keys.js';

test('a key is stored as its SHA-256 and only the same key matches it', () => {
  // FIPS 180-2's example message: the digest is known independently of any code here.
  assert.equal(hashKey('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  const { key, record } = newApiKey({ name: 'k', scopes: ['infer'], tier: 'free' });
  assert.equal(record.hash, hashKey(key));
  // The secret is base64url and may itself hold '_', so it is cut off after the id, not split.
  const secret = key.slice(`bwk_${record.id}_`.length);
  assert.equal(secret.length, 43);
  assert.ok(!JSON.stringify(record).includes(secret), 'the record never holds the secret');
  assert.equal(keyId(key), record.id);
  assert.equal(keyMatches(key, record), true);
  // Same id, another secret: a forged key that passes the id lookup must still fail.
  const forged = `bwk_${record.id}_${'A'.repeat(43)}`;
  assert.equal(keyId(forged), record.id);
  assert.equal(keyMatches(forged, record), false);
  // A damaged stored hash (wrong length) never matches and never throws.
  assert.equal(keyMatches(key, { ...record, hash: record.hash.slice(0, 10) }), false);
});
