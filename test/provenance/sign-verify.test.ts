import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { generateKeyPair, KEY_ALGORITHMS, loadPrivateKey, loadPublicKey, publicKeyHint, signBytes, verifyBytes, writeKeyPair, type KeyAlgorithm } from '../../src/provenance/keys.js';
import { pae } from '../../src/provenance/dsse.js';
import { readSignature, signPath, writeSignature } from '../../src/provenance/sign.js';
import { verifyPath } from '../../src/provenance/verify.js';
import { flipByte, rejects, tempDir, writeTree } from './signing-helpers.js';

const tmp = tempDir('sign');
const keys = new Map<KeyAlgorithm, { key: string; pub: string }>();
async function keyPair(alg: KeyAlgorithm, name: string = alg): Promise<{ key: string; pub: string }> {
  const base = path.join(tmp, 'keys', name);
  fs.mkdirSync(path.dirname(base), { recursive: true });
  if (!keys.has(alg) || name !== alg) {
    const { privateFile, publicFile } = await writeKeyPair(alg, base);
    if (name !== alg) return { key: privateFile, pub: publicFile };
    keys.set(alg, { key: privateFile, pub: publicFile });
  }
  return keys.get(alg)!;
}

function model(name: string): string {
  return writeTree(path.join(tmp, name), {
    'config.json': '{"layers": 3}\n',
    'weights/part-0.bin': Buffer.alloc(5000, 7),
    'weights/part-1.bin': Buffer.alloc(3000, 9),
    '.git/HEAD': 'ref: refs/heads/main\n',
  });
}

test('DSSE pre-authentication encoding counts bytes, not characters', () => {
  const body = Buffer.from('{"é":1}', 'utf8');
  assert.equal(Buffer.from(pae('application/vnd.in-toto+json', body)).toString('utf8'), 'DSSEv1 28 application/vnd.in-toto+json 8 {"é":1}');
});

for (const alg of KEY_ALGORITHMS) {
  test(`${alg}: sign a folder, verify it, and a key of the same kind that did not sign is refused`, async () => {
    const a = await keyPair(alg);
    const b = await keyPair(alg, `${alg}-other`);
    const dir = model(`model-${alg}`);
    const sigFile = path.join(dir, 'model.sig');
    const bundle = await signPath(dir, await loadPrivateKey(a.key), { signatureFile: sigFile });
    await writeSignature(bundle, sigFile);

    const ok = await verifyPath(dir, sigFile, await loadPublicKey(a.pub));
    assert.equal(ok.valid, true, ok.reason);
    assert.equal(ok.subject?.name, `model-${alg}`);

    const wrong = await verifyPath(dir, sigFile, await loadPublicKey(b.pub));
    assert.equal(wrong.valid, false);
    assert.match(wrong.reason ?? '', /does not verify with the given public key.*different key/);

    flipByte(path.join(dir, 'weights/part-1.bin'), 1234);
    const changed = await verifyPath(dir, sigFile, await loadPublicKey(a.pub));
    assert.deepEqual(changed.changes, [{ path: 'weights/part-1.bin', kind: 'modified' }]);
  });
}

test('a bundle keeps the OpenSSF layout: key hint, no key bytes, in-toto payload, model.sig left out', async () => {
  const k = await keyPair('ecdsa-p256');
  const dir = model('layout');
  const sigFile = path.join(dir, 'model.sig');
  await writeSignature(await signPath(dir, await loadPrivateKey(k.key), { signatureFile: sigFile }), sigFile);
  const bundle = await readSignature(sigFile);
  assert.equal(bundle.mediaType, 'application/vnd.dev.sigstore.bundle.v0.3+json');
  assert.deepEqual(bundle.verificationMaterial, { publicKey: { hint: publicKeyHint(await loadPublicKey(k.pub)) }, tlogEntries: [] });
  const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString('utf8'));
  assert.equal(statement.predicateType, 'https://model_signing/signature/v1.0');
  assert.deepEqual(statement.predicate.resources.map((r: { name: string }) => r.name), ['config.json', 'weights/part-0.bin', 'weights/part-1.bin']);
  assert.ok(statement.predicate.serialization.ignore_paths.includes('model.sig'));
  assert.ok(statement.predicate.serialization.ignore_paths.includes('.git'));
});

test('a single file signs under the name "." (as model_signing does) and is reported by its base name', async () => {
  const k = await keyPair('ed25519');
  const file = path.join(tmp, 'single.bin');
  fs.writeFileSync(file, 'weights');
  const bundle = await signPath(file, await loadPrivateKey(k.key));
  const sigFile = path.join(tmp, 'single.sig');
  await writeSignature(bundle, sigFile);
  const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString('utf8'));
  assert.equal(statement.predicate.resources[0].name, '.');
  assert.equal(statement.subject[0].name, 'single.bin');
  assert.equal((await verifyPath(file, sigFile, await loadPublicKey(k.pub))).valid, true);
  fs.appendFileSync(file, '!');
  assert.deepEqual((await verifyPath(file, sigFile, await loadPublicKey(k.pub))).changes, [{ path: 'single.bin', kind: 'modified' }]);
});

test('a statement whose subject digest does not match its resources is refused, even when signed', async () => {
  const k = await keyPair('ecdsa-p384');
  const dir = model('inconsistent');
  const sk = await loadPrivateKey(k.key);
  const bundle = await signPath(dir, sk);
  const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString('utf8'));
  statement.subject[0].digest.sha256 = '00'.repeat(32);
  const payload = Buffer.from(JSON.stringify(statement, null, 2));
  bundle.dsseEnvelope.payload = payload.toString('base64');
  bundle.dsseEnvelope.signatures[0].sig = Buffer.from(signBytes(sk, pae(bundle.dsseEnvelope.payloadType, payload))).toString('base64');
  const sigFile = path.join(tmp, 'inconsistent.sig');
  await writeSignature(bundle, sigFile);
  const r = await verifyPath(dir, sigFile, await loadPublicKey(k.pub));
  assert.equal(r.valid, false);
  assert.match(r.reason ?? '', /inconsistent/);
});

test('malformed bundles are input errors naming the file; a wrong payload type is a refusal', async () => {
  const k = await keyPair('ed25519');
  const pub = await loadPublicKey(k.pub);
  const dir = model('malformed');
  const write = (name: string, content: string): string => {
    const f = path.join(tmp, name);
    fs.writeFileSync(f, content);
    return f;
  };
  await rejects(verifyPath(dir, write('a.sig', '{"mediaType": '), pub), 'E_DATA_PARSE', /a\.sig is not valid JSON/);
  await rejects(verifyPath(dir, write('b.sig', '[]'), pub), 'E_DATA_PARSE', /b\.sig is not a Sigstore bundle/);
  await rejects(verifyPath(dir, write('c.sig', '{"mediaType":"x","dsseEnvelope":{"payload":"!!","payloadType":"t","signatures":[{"sig":""}]}}'), pub), 'E_DATA_PARSE', /payload must be base64/);
  await rejects(verifyPath(dir, path.join(tmp, 'missing.sig'), pub), 'E_FILE_NOT_FOUND', /missing\.sig/);

  const bundle = await signPath(dir, await loadPrivateKey(k.key));
  bundle.mediaType = 'application/vnd.dev.sigstore.bundle+json;version=0.1';
  const r = await verifyPath(dir, write('d.sig', JSON.stringify(bundle)), pub);
  assert.equal(r.valid, false);
  assert.match(r.reason ?? '', /media type/);
});

test('key files: PEM encodings, 0600 private keys, no overwriting, clear errors for the wrong kind of key', async () => {
  const base = path.join(tmp, 'keys', 'mode');
  const { privateFile, publicFile } = await writeKeyPair('ml-dsa-65', base);
  assert.equal(fs.statSync(privateFile).mode & 0o777, 0o600);
  await rejects(writeKeyPair('ed25519', base), 'E_OUTPUT', /already exists/);

  // ML-DSA-65 per the IETF LAMPS encoding: PKCS#8 with the 32-byte seed, SPKI with the raw 1952-byte key.
  const der = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const priv = der(fs.readFileSync(privateFile, 'utf8'));
  assert.equal(priv.length, 54);
  assert.equal(priv.subarray(0, 22).toString('hex'), '3034020100300b0609608648016503040312042280' + '20');
  const spki = der(fs.readFileSync(publicFile, 'utf8'));
  assert.equal(spki.length, 1974);
  assert.equal(spki.subarray(0, 22).toString('hex'), '308207b2300b0609608648016503040312038207a1' + '00');

  await rejects(loadPublicKey(privateFile), 'E_USAGE', /holds a private key/);
  await rejects(loadPrivateKey(publicFile), 'E_USAGE', /holds a public key/);
  const junk = path.join(tmp, 'junk.pem');
  fs.writeFileSync(junk, 'hello');
  await rejects(loadPublicKey(junk), 'E_DATA_PARSE', /junk\.pem/);
  await rejects(loadPrivateKey(junk), 'E_DATA_PARSE', /no PEM private key/);
  await rejects(loadPublicKey(path.join(tmp, 'nope.pub')), 'E_FILE_NOT_FOUND', /nope\.pub/);

  const { generateKeyPairSync } = await import('node:crypto');
  const rsa = path.join(tmp, 'rsa.pub');
  fs.writeFileSync(rsa, generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }));
  await rejects(loadPublicKey(rsa), 'E_DATA_VALUE', /RSA/);
});

test('signBytes / verifyBytes: every algorithm, and a signature never verifies for other bytes', async () => {
  const data = Buffer.from('checkpoint 42');
  for (const alg of KEY_ALGORITHMS) {
    const { privatePem, publicPem } = await generateKeyPair(alg);
    const kf = path.join(tmp, `raw-${alg}.key`), pf = path.join(tmp, `raw-${alg}.pub`);
    fs.writeFileSync(kf, privatePem);
    fs.writeFileSync(pf, publicPem);
    const sk = await loadPrivateKey(kf), pk = await loadPublicKey(pf);
    assert.equal(sk.alg, alg);
    assert.equal(pk.alg, alg);
    const sig = signBytes(sk, data);
    assert.equal(verifyBytes(pk, data, sig), true, alg);
    assert.equal(verifyBytes(pk, Buffer.from('checkpoint 43'), sig), false, alg);
    assert.equal(verifyBytes(pk, data, sig.subarray(1)), false, alg);
  }
});

test('a symbolic link planted after signing fails verification and is named', async () => {
  const k = await keyPair('ecdsa-p256');
  const dir = model('planted');
  const sigFile = path.join(tmp, 'planted.sig');
  await writeSignature(await signPath(dir, await loadPrivateKey(k.key)), sigFile);
  fs.symlinkSync('/etc/hostname', path.join(dir, 'weights', 'part-2.bin'));
  const r = await verifyPath(dir, sigFile, await loadPublicKey(k.pub));
  assert.equal(r.valid, false);
  assert.deepEqual(r.changes, [{ path: 'weights/part-2.bin', kind: 'added' }]);
  assert.match(r.reason ?? '', /symbolic links are not allowed by this signature/);
});
