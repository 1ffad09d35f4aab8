import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BulwarkError } from '../../src/core/errors.js';
import { requireCapability, type Predictor } from '../../src/core/model.js';
import type { Samples } from '../../src/core/samples.js';
import { connectHttpModel } from '../../src/engines/http/model.js';
import { serveOip } from '../../src/engines/http/oip-server.js';

/** A fixed linear softmax classifier: 4 features, 3 classes, hand-chosen weights. */
const W = [
  [1.5, -0.5, 0.2],
  [-1.0, 2.0, 0.3],
  [0.4, 0.1, -1.2],
  [0.0, -0.7, 1.1],
];
const B = [0.1, -0.2, 0.05];
const linear: Predictor = {
  info: { name: 'linear', engine: 'test', inputShape: [4], numClasses: 3 },
  async predict(x: Samples): Promise<Samples> {
    const n = x.shape[0];
    const out = new Float32Array(n * 3);
    for (let i = 0; i < n; i++) {
      const z = B.map((b, j) => b + W.reduce((s, row, f) => s + row[j] * x.data[i * 4 + f], 0));
      const m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m));
      const sum = e.reduce((a, b) => a + b, 0);
      e.forEach((v, j) => (out[i * 3 + j] = v / sum));
    }
    return { data: out, shape: [n, 3] };
  },
};

function inputs(n: number): Samples {
  const data = new Float32Array(n * 4);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 1.7) * 2;
  return { data, shape: [n, 4] };
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

interface Reply {
  status?: number;
  headers?: Record<string, string>;
  body: string;
}

/**
 * A stand-in server that serves linear's metadata and scripts every inference answer,
 * for the failures a real model server would rarely produce on cue.
 */
async function scripted(answer: (call: number, body: string, req: IncomingMessage) => Reply | Promise<Reply>) {
  const calls = { infer: 0 };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', async () => {
      const r: Reply =
        req.method === 'GET'
          ? {
              body: JSON.stringify({
                name: 'm',
                inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
                outputs: [{ name: 'probs', datatype: 'FP32', shape: [-1, 3] }],
              }),
            }
          : await answer(calls.infer++, body, req);
      res.writeHead(r.status ?? 200, { 'content-type': 'application/json', ...r.headers });
      res.end(r.body);
    });
  });
  const base = await listen(server);
  return { url: `${base}/v2/models/m`, calls };
}

const ok = (data: unknown, name = 'probs'): Reply => ({ body: JSON.stringify({ outputs: [{ name, datatype: 'FP32', shape: [1, 3], data }] }) });

async function rejects(p: Promise<unknown>, code: string, ...parts: (string | RegExp)[]): Promise<BulwarkError> {
  const e = await p.then(
    () => assert.fail(`expected ${code}`),
    (err: unknown) => err,
  );
  assert.ok(e instanceof BulwarkError, `expected a BulwarkError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  for (const part of parts) assert.match(e.message, typeof part === 'string' ? new RegExp(part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : part);
  return e;
}

const served = await serveOip(linear, { name: 'linear' });
after(() => served.close());

test('predictions through the protocol equal local predictions', async () => {
  const model = await connectHttpModel(served.url);
  assert.deepEqual(model.info, { name: served.url, engine: 'http', inputShape: [4], numClasses: 3 });
  const x = inputs(25);
  const [remote, local] = await Promise.all([model.predict(x), linear.predict(x)]);
  assert.deepEqual(remote.shape, [25, 3]);
  for (let i = 0; i < local.data.length; i++) assert.ok(Math.abs(remote.data[i] - local.data[i]) < 1e-6, `value ${i}`);
  assert.equal(model.requests, 1);
  assert.equal(model.queries, 25);
});

test('a base URL plus a name, and a version path, reach the same model', async () => {
  const byName = await connectHttpModel(`${served.baseUrl}/`, { name: 'linear' });
  assert.equal(byName.info.name, served.url);
  const versioned = await connectHttpModel(`${served.url}/versions/1`);
  const x = inputs(3);
  assert.deepEqual(await versioned.predict(x), await byName.predict(x));
  await rejects(connectHttpModel(`${served.url}/versions/9`), 'E_REMOTE', '404', "no version '9'");
});

test('batches are split at maxBatch and every sample and request is counted', async () => {
  const model = await connectHttpModel(served.url, { maxBatch: 256 });
  const x = inputs(700);
  const [remote, local] = await Promise.all([model.predict(x), linear.predict(x)]);
  for (let i = 0; i < local.data.length; i++) assert.ok(Math.abs(remote.data[i] - local.data[i]) < 1e-6, `value ${i}`);
  assert.equal(model.requests, 3);
  assert.equal(model.queries, 700);
});

test('a wrong input shape fails with E_DATA_SHAPE before any request is sent', async () => {
  const server = await scripted(() => ok([0.2, 0.3, 0.5]));
  const model = await connectHttpModel(server.url);
  await rejects(model.predict({ data: new Float32Array(10), shape: [2, 5] }), 'E_DATA_SHAPE', '[4]', '[5]');
  await rejects(model.predict({ data: new Float32Array([1, NaN, 0, 0]), shape: [1, 4] }), 'E_DATA_VALUE', 'NaN');
  assert.equal(server.calls.infer, 0);
  assert.equal(model.requests, 0);
});

test('an invalid URL or a URL without a model name is a usage error', async () => {
  await rejects(connectHttpModel('not a url'), 'E_USAGE', 'not a valid URL');
  await rejects(connectHttpModel('ftp://example.com/v2/models/m'), 'E_USAGE', 'http or https');
  await rejects(connectHttpModel(served.baseUrl), 'E_USAGE', 'does not name a model');
  await rejects(connectHttpModel(served.url, { name: 'other' }), 'E_USAGE', "'linear'", "'other'");
  await rejects(connectHttpModel('http://user:pw@127.0.0.1:1/v2/models/m'), 'E_USAGE', 'apiKey');
  await rejects(connectHttpModel(served.baseUrl, { name: 'nope' }), 'E_REMOTE', '404', "unknown model 'nope'");
});

test('a refused connection is E_REMOTE naming the URL', async () => {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const url = `http://127.0.0.1:${port}/v2/models/m`;
  await rejects(connectHttpModel(url, { retries: 1 }), 'E_REMOTE', `cannot reach ${url}`, 'ECONNREFUSED');
});

test('a server that never answers is E_TIMEOUT naming the URL and the timeout', async () => {
  const base = await listen(createServer(() => undefined));
  const started = Date.now();
  await rejects(connectHttpModel(`${base}/v2/models/m`, { timeoutMs: 200 }), 'E_TIMEOUT', base, '200 ms');
  assert.ok(Date.now() - started < 2000);
});

test("a 500 is E_REMOTE carrying the status and the server's error text", async () => {
  const server = await scripted(() => ({ status: 500, body: JSON.stringify({ error: 'boom' }) }));
  const model = await connectHttpModel(server.url);
  await rejects(model.predict(inputs(1)), 'E_REMOTE', '500', 'boom');
  assert.equal(server.calls.infer, 1, '500 is not retried');
});

test('a body that is not JSON is E_REMOTE, quoted and truncated', async () => {
  const server = await scripted(() => ({ body: `<html>${'x'.repeat(5000)}</html>` }));
  const model = await connectHttpModel(server.url);
  const e = await rejects(model.predict(inputs(1)), 'E_REMOTE', 'not an Open Inference Protocol response', '<html>');
  assert.ok(e.message.length < 500, e.message);
});

test('JSON without outputs is E_REMOTE', async () => {
  const server = await scripted(() => ({ body: JSON.stringify({ result: [1, 2, 3] }) }));
  const model = await connectHttpModel(server.url);
  await rejects(model.predict(inputs(1)), 'E_REMOTE', 'not an Open Inference Protocol response');
});

test('an output of the wrong length is E_REMOTE', async () => {
  const server = await scripted(() => ok([0.5, 0.5]));
  const model = await connectHttpModel(server.url);
  await rejects(model.predict(inputs(1)), 'E_REMOTE', '2 output values where 3 were expected');
});

test('nested output data is flattened and the named output is chosen', async () => {
  const server = await scripted(() => ({
    body: JSON.stringify({
      outputs: [
        { name: 'other', datatype: 'FP32', shape: [1, 1], data: [7] },
        { name: 'probs', datatype: 'FP32', shape: [2, 3], data: [[0.1, 0.2, 0.7], [[0.3], [0.3], [0.4]]] },
      ],
    }),
  }));
  const model = await connectHttpModel(server.url);
  const y = await model.predict(inputs(2));
  assert.deepEqual(Array.from(y.data), Array.from(new Float32Array([0.1, 0.2, 0.7, 0.3, 0.3, 0.4])));
});

test('output policy: logits are softmaxed, one-hot labels and probabilities kept', async () => {
  const logits = await scripted(() => ok([2, 0, -1]));
  const y = await (await connectHttpModel(logits.url)).predict(inputs(1));
  const e = [Math.exp(2), 1, Math.exp(-1)];
  const s = e[0] + e[1] + e[2];
  e.forEach((v, j) => assert.ok(Math.abs(y.data[j] - v / s) < 1e-6));

  const oneHot = await scripted(() => ok([0, 1, 0]));
  assert.deepEqual(Array.from((await (await connectHttpModel(oneHot.url)).predict(inputs(1))).data), [0, 1, 0]);
  const forced = await (await connectHttpModel(oneHot.url, { output: 'logits' })).predict(inputs(1));
  assert.ok(forced.data[1] < 0.6 && forced.data[0] > 0.2);
  const raw = await (await connectHttpModel(logits.url, { output: 'probabilities' })).predict(inputs(1));
  assert.deepEqual(Array.from(raw.data), [2, 0, -1]);
});

test('429 with Retry-After is waited out, then the answer is used', async () => {
  const server = await scripted((call) =>
    call === 0 ? { status: 429, headers: { 'retry-after': '1' }, body: '{"error":"slow down"}' } : ok([0.2, 0.3, 0.5]),
  );
  const model = await connectHttpModel(server.url);
  const started = Date.now();
  const y = await model.predict(inputs(1));
  assert.ok(Date.now() - started >= 900, 'waited for Retry-After');
  assert.deepEqual(Array.from(y.data), Array.from(new Float32Array([0.2, 0.3, 0.5])));
  assert.equal(model.requests, 2);
  assert.equal(model.queries, 2);
});

test('429 asking for longer than maxRetryAfterMs fails at once saying the server is rate limiting', async () => {
  const server = await scripted(() => ({ status: 429, headers: { 'retry-after': '60' }, body: '{}' }));
  const model = await connectHttpModel(server.url);
  await rejects(model.predict(inputs(1)), 'E_REMOTE', 'rate limiting', 'maxRetryAfterMs');
  assert.equal(server.calls.infer, 1);
});

test('503 is retried with backoff up to the retry count', async () => {
  const flaky = await scripted((call) => (call < 2 ? { status: 503, body: '{"error":"warming up"}' } : ok([0.2, 0.3, 0.5])));
  const model = await connectHttpModel(flaky.url);
  await model.predict(inputs(1));
  assert.equal(model.requests, 3);

  const down = await scripted(() => ({ status: 503, body: '{"error":"warming up"}' }));
  await rejects((await connectHttpModel(down.url, { retries: 1 })).predict(inputs(1)), 'E_REMOTE', '503', 'warming up');
  assert.equal(down.calls.infer, 2);
});

test('extra headers and the API key reach the server', async () => {
  let seen: IncomingMessage['headers'] = {};
  const server = await scripted((_call, _body, req) => {
    seen = req.headers;
    return ok([0.2, 0.3, 0.5]);
  });
  const model = await connectHttpModel(server.url, { apiKey: 'k3y', headers: { 'x-tenant': 'red-team' } });
  await model.predict(inputs(1));
  assert.equal(seen.authorization, 'Bearer k3y');
  assert.equal(seen['x-tenant'], 'red-team');
});

test('gradients are refused by name: the algorithm and the http model', async () => {
  const model = await connectHttpModel(served.url);
  assert.throws(
    () => requireCapability(model, 'lossGradient', 'PGD'),
    (e: unknown) =>
      e instanceof BulwarkError &&
      e.code === 'E_MODEL_CAPABILITY' &&
      e.message.includes('PGD') &&
      e.message.includes(served.url) &&
      e.message.includes('http engine') &&
      e.message.includes('offers only: predict'),
  );
});

async function post(path: string, body: string): Promise<{ status: number; error: string }> {
  const res = await fetch(`${served.baseUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  return { status: res.status, error: String(((await res.json()) as { error?: unknown }).error) };
}

test('the server answers 400 naming the problem for malformed requests, and keeps serving', async () => {
  const infer = '/v2/models/linear/infer';
  const bad = await post(infer, '{"inputs": [');
  assert.equal(bad.status, 400);
  assert.match(bad.error, /not valid JSON/);
  const dtype = await post(infer, JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'INT64', data: [1, 2, 3, 4] }] }));
  assert.equal(dtype.status, 400);
  assert.match(dtype.error, /INT64.*FP32/);
  const shape = await post(infer, JSON.stringify({ inputs: [{ name: 'input', shape: [1, 5], datatype: 'FP32', data: [1, 2, 3, 4, 5] }] }));
  assert.equal(shape.status, 400);
  assert.match(shape.error, /\[1, 5\].*\[n, 4\]/);
  const count = await post(infer, JSON.stringify({ inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }));
  assert.equal(count.status, 400);
  assert.match(count.error, /needs 8 values/);
  const unknown = await post('/v2/models/nope/infer', '{}');
  assert.equal(unknown.status, 404);
  assert.match(unknown.error, /unknown model 'nope'/);
  assert.equal((await fetch(`${served.baseUrl}/v2/health/ready`)).status, 200);
  assert.equal((await fetch(`${served.baseUrl}/v2/health/live`)).status, 200);
  assert.equal((await fetch(`${served.url}/ready`)).status, 200);
});

test('the server refuses a body over 32 MB with 413', async () => {
  const status = await new Promise<number>((resolve, reject) => {
    const req = httpRequest(`${served.url}/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': String(40 * 1024 * 1024) },
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
      req.destroy();
    });
    req.on('error', reject);
    req.write('{"inputs":');
  });
  assert.equal(status, 413);
});
