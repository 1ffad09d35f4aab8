// The paced load for bench/gateway.js's overhead figure, in a process of its own: requests at a
// fixed rate (open loop), each timed to the microsecond. It runs apart from the bench so that the
// bench's own heap (the digits dataset, the trained model) never stalls the clock, and each run
// warms up first, so the figure is the steady state of a running server, not its JIT warm-up.
//
//   node bench/lib/gateway-load.js '{"target":"http","url":…,"key":…,"bodies":FILE,"rate":500,"seconds":4,"warmSeconds":3}'
//   node bench/lib/gateway-load.js '{"target":"inproc","modelDir":DIR,"bodies":FILE,…}'
//
// Prints one JSON line: { latencies (ms, sorted), statuses, achievedRate }.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { performance } from 'node:perf_hooks';

const opts = JSON.parse(process.argv[2] ?? '{}');
const bodies = JSON.parse(readFileSync(opts.bodies, 'utf8'));

/** One way of asking the model: resolves to an HTTP status (200 for an in-process answer). */
async function makeSender() {
  if (opts.target === 'inproc') {
    const { initTfjs, loadTfjsModel } = await import('../../dist/engines/index.js');
    await initTfjs();
    const { model } = await loadTfjsModel(opts.modelDir);
    // The same rows the HTTP runs send, decoded once, as a caller holding tensors would have them.
    const rows = bodies.map((b) => {
      const input = JSON.parse(b).inputs[0];
      return { data: Float32Array.from(input.data), shape: input.shape };
    });
    return async (i) => {
      await model.predict(rows[i % rows.length]);
      return 200;
    };
  }
  const url = new URL(opts.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  const headers = { 'content-type': 'application/json', ...(opts.key ? { authorization: `Bearer ${opts.key}` } : {}) };
  return (i) =>
    new Promise((resolve) => {
      const body = bodies[i % bodies.length];
      const req = http.request({ host: url.hostname, port: url.port, method: 'POST', path: url.pathname, headers: { ...headers, 'content-length': Buffer.byteLength(body) }, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
        res.on('error', () => resolve(0));
      });
      req.on('error', () => resolve(0));
      req.end(body);
    });
}

/** `rate` requests a second for `seconds`, each sent at its due time whether or not the last has answered. */
async function paced(send, rate, seconds) {
  const total = Math.round(rate * seconds);
  const latencies = new Float64Array(total);
  const statuses = {};
  const pending = [];
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    const wait = t0 + (i * 1000) / rate - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    pending.push(
      (async () => {
        const start = performance.now();
        const status = await send(i);
        latencies[i] = performance.now() - start;
        statuses[status] = (statuses[status] ?? 0) + 1;
      })(),
    );
  }
  await Promise.all(pending);
  return { latencies: Array.from(latencies).sort((a, b) => a - b), statuses, achievedRate: total / ((performance.now() - t0) / 1000) };
}

const send = await makeSender();
await paced(send, opts.rate, opts.warmSeconds ?? 3);
const result = await paced(send, opts.rate, opts.seconds);
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
