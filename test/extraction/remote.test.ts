import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { connectHttpModel, serveOip, type OipServer } from '../../src/engines/index.js';
import { startGateway, type RunningGateway } from '../../src/gateway/index.js';
import { extract } from '../../src/extraction/index.js';
import { digitsVictim, removeDir, tempDir, type DigitsVictim } from './helpers.js';

// The digits MLP served two ways: bare (serveOip) and behind the gateway, with a tier per answer kind.
let v: DigitsVictim;
let dir: string;
let gw: RunningGateway;
let oip: OipServer;
let keys: Record<'full' | 'labels' | 'budgeted', string>;

before(async () => {
  dir = tempDir('extraction');
  const modelDir = path.join(dir, 'digits');
  v = await digitsVictim(modelDir);
  oip = await serveOip(v.target, { name: 'digits' });
  const policyFile = path.join(dir, 'policy.yaml');
  writeFileSync(
    policyFile,
    `tiers:
  full:
    output: { kind: full }
  labels:
    output: { kind: label }
  budgeted:
    output: { kind: full }
    budget: { samplesPerDay: 700 }
`,
  );
  gw = await startGateway({ models: [modelDir], name: 'digits', allowUnsigned: true, policyFile, port: 0, store: path.join(dir, 'gw.db'), ledger: path.join(dir, 'audit.db') });
  const mk = async (tier: string) => (await gw.store.createKey({ name: tier, scopes: ['infer'], tier })).key;
  keys = { full: await mk('full'), labels: await mk('labels'), budgeted: await mk('budgeted') };
});

after(async () => {
  await gw?.close();
  await oip?.close();
  v?.target.dispose();
  removeDir(dir);
});

test('over HTTP the budget holds as the client counts it: holdout once, then exactly the budget', async () => {
  const remote = await connectHttpModel(oip.url);
  const r = await extract(remote, { budget: 1000, pool: v.pool, holdout: v.holdout, checkpoints: [], batchSize: 96, seed: 3 });
  r.surrogate.dispose();
  assert.equal(r.queriesUsed, 1000);
  assert.equal(r.evaluationQueries, 1000);
  assert.equal(remote.queries, 2000, "the http engine's own counter: 1,000 holdout rows and the 1,000-row budget");
  assert.equal(r.answerKind, 'probabilities');
  assert.ok(r.fidelity > 0.85, `fidelity ${r.fidelity}`);
});

test('behind the gateway, label-only answers still steal the model (the key sends no more than its budget)', async () => {
  const remote = await connectHttpModel(`${gw.url}/v2/models/digits`, { apiKey: keys.labels });
  const r = await extract(remote, { budget: 1500, pool: v.pool, holdout: v.holdout, reference: v.target, checkpoints: [500], seed: 3 });
  r.surrogate.dispose();
  assert.equal(remote.queries, 1500);
  assert.equal(r.queriesUsed, 1500);
  assert.equal(r.answerKind, 'labels');
  assert.ok(r.fidelity >= 0.85, `fidelity from labels only: ${r.fidelity}`);
});

test('a key whose budget runs out midway (429) ends the attack with what was stolen so far', async () => {
  const remote = await connectHttpModel(`${gw.url}/v2/models/digits`, { apiKey: keys.budgeted });
  const r = await extract(remote, { budget: 2000, pool: v.pool, holdout: v.holdout, reference: v.target, checkpoints: [500], seed: 3 });
  r.surrogate.dispose();
  assert.equal(r.stoppedBy, 'refused');
  assert.equal(r.refusal?.status, 429);
  assert.match(r.refusal?.message ?? '', /429/);
  assert.equal(r.queriesAnswered, 700, 'the rows the gateway answered before the budget ran out');
  assert.equal(r.queriesUsed, 800, 'and the refused request, which was sent all the same');
  assert.equal(remote.queries, 800);
  assert.deepEqual(r.curve.map((p) => p.queries), [500, 700]);
  assert.ok(r.fidelity > 0.8, `fidelity of what was stolen: ${r.fidelity}`);
});

test('a key suspended midway (403) stops the attack gracefully, reporting the refusal', async () => {
  // A gateway that suspends the key after 600 rows, in front of the bare server.
  let rows = 0;
  const proxy: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    if (req.method === 'POST') {
      const n = (JSON.parse(body) as { inputs: { shape: number[] }[] }).inputs[0].shape[0];
      if (rows + n > 600) {
        res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'key k1 is suspended: its queries look like model extraction' }));
        return;
      }
      rows += n;
    }
    const up = await fetch(`${oip.baseUrl}${req.url}`, { method: req.method, headers: { 'content-type': 'application/json' }, body: req.method === 'POST' ? body : undefined });
    res.writeHead(up.status, { 'content-type': 'application/json' }).end(await up.text());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  try {
    const remote = await connectHttpModel(`http://127.0.0.1:${(proxy.address() as AddressInfo).port}/v2/models/digits`);
    const r = await extract(remote, { budget: 2000, pool: v.pool, holdout: v.holdout, reference: v.target, checkpoints: [], seed: 3 });
    r.surrogate.dispose();
    assert.equal(r.stoppedBy, 'refused');
    assert.equal(r.refusal?.status, 403);
    assert.match(r.refusal?.message ?? '', /suspended/);
    assert.equal(r.queriesAnswered, 600);
    assert.equal(r.queriesUsed, 700);
    assert.deepEqual(r.curve.map((p) => p.queries), [600]);
  } finally {
    await new Promise((r) => proxy.close(r));
  }
});
