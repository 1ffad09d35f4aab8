// Extraction figures, all against a digits MLP behind the gateway:
// - fidelity (agreement with the target on the 2,000 held-out digits) of a 10,000-query surrogate
//   stolen through keys whose tiers answer full probabilities, scores rounded to 1 decimal, labels
//   only (natural queries: the attacker holds unlabelled digits), and labels only on a gateway whose
//   PRADA rule suspends the key, then on one whose rule misinforms it (Jacobian augmentation from
//   150 natural seeds: Papernot et al.'s attacker, who has few natural inputs and only labels —
//   natural queries look benign to PRADA);
// - detection with the monitoring section of examples/policy.yaml, unchanged: Jacobian clients
//   flagged within 500 queries, 20 benign clients sending the test set in random order not flagged;
// - the detection chain's cost at 500 requests/s: `bulwark serve` with and without that monitoring,
//   paced open loop, alternating runs.
// One JSON line per figure on stdout, progress on stderr.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { Rng, takeSamples } from '../dist/core/index.js';
import { loadDigitsSplit } from '../dist/data/index.js';
import { connectHttpModel, initTfjs, saveTfjsModel } from '../dist/engines/index.js';
import { extract } from '../dist/extraction/index.js';
import { SqliteGatewayStore, startGateway } from '../dist/gateway/index.js';
import { createZooModel, defaultEpochs } from '../dist/zoo/index.js';

const BENCH = 'extraction';
const BUDGET = 10_000;
const SEED = 42;
const BENIGN_CLIENTS = 20;
const THIEVES = [1, 2, 3];
const RATE = 500;
const RUN_SECONDS = 6;
const PAIRS = 3;
const OVERHEAD_KEYS = 10;
const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

const log = (msg) => process.stderr.write(`[bench extraction] ${msg}\n`);
const round = (x, d = 4) => (Number.isFinite(x) ? Number(x.toFixed(d)) : x);
const load1m = () => round(os.loadavg()[0], 2);
const only = new Set((process.env.BENCH_EXTRACTION_ONLY ?? 'fidelity,detection,overhead').split(','));

function figure(name, value, target, extra = {}) {
  let pass = null;
  if (target) {
    const [, op, text] = /^(>=|<=|==|<|>)(.*)$/.exec(target);
    const bound = JSON.parse(text);
    const checks = { '>=': (v) => v >= bound, '<=': (v) => v <= bound, '<': (v) => v < bound, '>': (v) => v > bound, '==': (v) => v === bound };
    pass = value === null || value === undefined ? null : checks[op](value);
  }
  process.stdout.write(`${JSON.stringify({ bench: BENCH, figure: name, value, target, pass, load1m: load1m(), ...extra })}\n`);
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'bulwark-bench-extraction-'));
const children = new Set();
const progress = { start() {}, advance() {}, done() {}, log: (m) => log(m) };

// Same tiers everywhere, limits out of the way: only the output policy and the monitoring differ.
const unlimited = { requests: 1_000_000, perSeconds: 1 };
const tiers = {
  full: { output: { kind: 'full' }, rateLimit: unlimited },
  rounded: { output: { kind: 'round', decimals: 1 }, rateLimit: unlimited },
  labels: { output: { kind: 'label' }, rateLimit: unlimited },
};
/** The monitoring a user gets from the example policy, as shipped. */
const exampleMonitoring = YAML.parse(readFileSync(path.join(root, 'examples', 'policy.yaml'), 'utf8')).monitoring;
function policy(name, monitoring) {
  const file = path.join(dir, `${name}.policy.json`);
  // JSON is YAML: the gateway reads it as a policy file.
  writeFileSync(file, JSON.stringify({ tiers, clientRateLimit: unlimited, ...(monitoring ? { monitoring } : {}) }, null, 2));
  return file;
}

/** Starts an in-process gateway, runs `body`, closes it. */
async function withGateway(name, modelDir, monitoring, body) {
  const gw = await startGateway({ models: [modelDir], name: 'digits', allowUnsigned: true, policyFile: policy(name, monitoring), port: 0, store: path.join(dir, `${name}.db`), ledger: path.join(dir, `${name}.audit.db`) });
  try {
    return await body(gw, `${gw.url}/v2/models/digits`);
  } finally {
    await gw.close();
  }
}

/** Keys flagged by a per-key rule (the first rule listed that flagged each key; `rule` narrows it), with the query count at the flag. */
async function flaggedKeys(gw, rule) {
  await gw.app.watch.idle();
  const st = await gw.app.watch.status();
  const out = new Map();
  for (const r of st.rules) {
    if (rule && `${r.rule}/${r.detector}` !== rule) continue;
    for (const f of r.flaggedKeys) {
      if (out.has(f.key)) continue;
      const at = /after (\d+) queries/.exec(f.detail);
      out.set(f.key, { rule: `${r.rule}/${r.detector}`, at: at ? Number(at[1]) : f.queries, score: round(f.score), detail: f.detail });
    }
  }
  return out;
}

function serve(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(root, 'bin', 'bulwark.js'), 'serve', ...args, '--port', '0', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    const exited = new Promise((r) => child.on('exit', (code, signal) => r(code ?? signal)));
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve({ child, url: JSON.parse(out.slice(0, nl)).url, exited });
    });
    exited.then((code) => reject(new Error(`serve exited ${code}: ${err.trim()}`)));
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
function post(url, key, body) {
  const u = new URL(url);
  return new Promise((resolve) => {
    const req = http.request(
      { host: u.hostname, port: u.port, method: 'POST', path: u.pathname, agent, headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
        res.on('error', () => resolve(0));
      },
    );
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** Requests at a fixed rate (open loop), as bench/gateway.js paces them. */
async function paced(send, rate, seconds) {
  const total = rate * seconds;
  const lat = [];
  const statuses = {};
  const t0 = performance.now();
  const pending = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    pending.push(
      (async () => {
        const s = performance.now();
        const status = await send(i);
        lat.push(performance.now() - s);
        statuses[status] = (statuses[status] ?? 0) + 1;
      })(),
    );
  }
  await Promise.all(pending);
  lat.sort((a, b) => a - b);
  return { p50: percentile(lat, 50), p99: percentile(lat, 99), statuses, achievedRate: total / ((performance.now() - t0) / 1000) };
}

const rowBody = (x, r) => JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 28, 28, 1], data: Array.from(x.data.subarray(r * 784, (r + 1) * 784)) }] });

try {
  await initTfjs();
  const { train, test } = await loadDigitsSplit();
  const epochs = defaultEpochs.mlp;
  log(`training the digits MLP target (${epochs} epochs on ${train.y.length} digits)`);
  const modelDir = path.join(dir, 'digits');
  const target = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, classNames: train.classNames, seed: SEED, name: modelDir });
  await target.fit(train, { epochs, seed: SEED });
  await saveTfjsModel(target, modelDir, { classNames: [...train.classNames], dataset: 'digits', architecture: 'mlp', seed: SEED });
  figure('monitoring_settings', null, null, { monitoring: exampleMonitoring, source: 'examples/policy.yaml' });

  // ------------------------------------------------------------------ fidelity
  const results = {};
  const steal = async (gw, url, tier, strategy, budget = BUDGET) => {
    const { key } = await gw.store.createKey({ name: `bench-${tier}-${strategy}`, scopes: ['infer'], tier });
    const remote = await connectHttpModel(url, { apiKey: key });
    log(`stealing through the '${tier}' key: ${budget} ${strategy} queries`);
    // The holdout's labels come from the model itself, so evaluation spends none of the key's queries.
    const r = await extract(remote, { budget, strategy, pool: train.x, holdout: test, reference: target, seed: SEED, progress });
    r.surrogate.dispose();
    return { r, remote, keyId: key.slice(4, 20) };
  };
  const describe = ({ r, remote }) => ({
    strategy: r.strategy,
    answer_kind: r.answerKind,
    queries_sent: remote.queries,
    queries_answered: r.queriesAnswered,
    stopped_by: r.stoppedBy,
    surrogate_accuracy: round(r.accuracy),
    target_accuracy: round(r.targetAccuracy),
    curve: r.curve.map((p) => ({ queries: p.queries, fidelity: round(p.fidelity), accuracy: round(p.accuracy) })),
    seconds: round(r.seconds, 1),
  });
  if (only.has('fidelity')) {
    await withGateway('plain', modelDir, null, async (gw, url) => {
      for (const tier of ['full', 'rounded', 'labels']) {
        const s = await steal(gw, url, tier, 'natural');
        results[tier] = s.r;
        figure(`fidelity_10k_${tier}`, round(s.r.fidelity), null, describe(s));
        if (s.remote.queries > BUDGET) figure(`budget_respected_${tier}`, s.remote.queries, `<=${BUDGET}`);
      }
      // For comparison: the Jacobian attacker on labels, with nothing watching.
      const j = await steal(gw, url, 'labels', 'jacobian');
      results.labelsJacobian = j.r;
      figure('fidelity_10k_labels_jacobian_unwatched', round(j.r.fidelity), null, describe(j));
    });
    // Label-only, and the example's PRADA rule answering with a suspension, then with misinformation,
    // instead of a degrade (a label-only key has nothing left to degrade). A suspended thief keeps
    // what it learnt before the flag; a misinformed one goes on learning the runner-up class.
    const full = results.full?.fidelity;
    const drops = {};
    for (const response of ['suspend', 'misinform']) {
      const responding = { ...exampleMonitoring, extraction: exampleMonitoring.extraction.map((e) => (e.detector === 'prada' ? { ...e, respond: ['alert', response] } : e)) };
      await withGateway(response, modelDir, responding, async (gw, url) => {
        const s = await steal(gw, url, 'labels', 'jacobian');
        const flags = await flaggedKeys(gw, 'extraction/prada');
        const extra = { ...describe(s), response, flagged: flags.get(s.keyId) ?? null, refusal: s.r.refusal ?? null, attacker: 'Jacobian augmentation (150 natural seeds, λ = 0.1), labels only' };
        figure(`fidelity_10k_labels_with_${response}`, round(s.r.fidelity), null, extra);
        if (full !== undefined) drops[response] = round(full - s.r.fidelity);
      });
    }
    if (full !== undefined) {
      const best = drops.misinform >= drops.suspend ? 'misinform' : 'suspend';
      figure('fidelity_drop_full_minus_labels_with_response', drops[best], '>=0.2', { response: best, drops, full: round(full) });
    }
  }

  // ------------------------------------------------------------------ detection, example defaults
  if (only.has('detection')) {
    await withGateway('watch', modelDir, exampleMonitoring, async (gw, url) => {
      const at = [];
      const detail = [];
      for (const seed of THIEVES) {
        const { key } = await gw.store.createKey({ name: `thief-${seed}`, scopes: ['infer'], tier: 'full' });
        const remote = await connectHttpModel(url, { apiKey: key });
        log(`Jacobian client ${seed}: 1,000 queries through the example monitoring`);
        const r = await extract(remote, { budget: 1000, strategy: 'jacobian', pool: train.x, holdout: test, reference: target, seed, progress });
        r.surrogate.dispose();
        const f = (await flaggedKeys(gw, 'extraction/prada')).get(key.slice(4, 20));
        const others = (await flaggedKeys(gw)).get(key.slice(4, 20));
        at.push(f ? f.at : null);
        detail.push({ prada: f ?? null, first_rule: others ?? null });
      }
      const worst = at.some((a) => a === null) ? null : Math.max(...at);
      figure('jacobian_client_flagged_within_queries', worst, '<=500', { flagged_at: at, flags: detail, attacker: "extract(strategy 'jacobian', 150 natural seeds, λ = 0.1) through an HttpModel with its own key" });

      const benign = [];
      for (let c = 0; c < BENIGN_CLIENTS; c++) {
        const { key } = await gw.store.createKey({ name: `benign-${c}`, scopes: ['infer'], tier: 'full' });
        const order = new Rng(7000 + c).permutation(test.y.length);
        const x = takeSamples(test.x, order);
        // Ten rows a request, in the order drawn.
        const remote = await connectHttpModel(url, { apiKey: key });
        for (let i = 0; i < x.shape[0]; i += 10) await remote.predict({ data: x.data.subarray(i * 784, (i + 10) * 784), shape: [10, 28, 28, 1] });
        benign.push(key.slice(4, 20));
        if (c % 5 === 4) log(`benign clients: ${c + 1}/${BENIGN_CLIENTS}`);
      }
      const flags = await flaggedKeys(gw);
      const hit = benign.filter((k) => flags.has(k));
      const st = await gw.app.watch.status();
      figure('benign_clients_flagged', hit.length, '==0', { clients: BENIGN_CLIENTS, queries_each: test.y.length, flags: hit.map((k) => flags.get(k)), drift: st.drift ?? null, ood: st.ood ?? null });
    });
  }

  // ------------------------------------------------------------------ overhead
  if (only.has('overhead')) {
    const setup = async (name, monitoring) => {
      const storeFile = path.join(dir, `${name}-serve.db`);
      const store = SqliteGatewayStore.open(storeFile);
      const keys = [];
      for (let i = 0; i < OVERHEAD_KEYS; i++) keys.push((await store.createKey({ name: `load-${i}`, scopes: ['infer'], tier: 'full' })).key);
      await store.close();
      const server = await serve(['--model', modelDir, '--name', 'digits', '--allow-unsigned', '--policy', policy(`${name}-serve`, monitoring), '--store', storeFile, '--ledger', path.join(dir, `${name}-serve.audit.db`)]);
      return { ...server, keys, url: `${server.url}/v2/models/digits/infer` };
    };
    const off = await setup('off', null);
    const on = await setup('on', exampleMonitoring);
    // Each key sends test digits in its own random order, never repeating within the runs (so no key looks like a thief).
    const orders = Array.from({ length: OVERHEAD_KEYS }, (_, k) => new Rng(900 + k).permutation(test.y.length));
    const bodies = new Map();
    const bodyOf = (k, n) => {
      const r = orders[k][n % test.y.length];
      if (!bodies.has(r)) bodies.set(r, rowBody(test.x, r));
      return bodies.get(r);
    };
    const counters = { off: 0, on: 0 };
    const run = (s, which, rate, seconds) => {
      const base = counters[which];
      counters[which] += rate * seconds;
      return paced((i) => post(s.url, s.keys[(base + i) % OVERHEAD_KEYS], bodyOf((base + i) % OVERHEAD_KEYS, Math.floor((base + i) / OVERHEAD_KEYS))), rate, seconds);
    };
    log(`overhead: warming both servers, then ${PAIRS} alternating off/on runs of ${RUN_SECONDS} s at ${RATE}/s`);
    await run(off, 'off', 200, 2);
    await run(on, 'on', 200, 2);
    const runs = [];
    for (let p = 0; p < PAIRS; p++) {
      const a = await run(off, 'off', RATE, RUN_SECONDS);
      const b = await run(on, 'on', RATE, RUN_SECONDS);
      runs.push({ off: { p50: round(a.p50, 3), p99: round(a.p99, 3), statuses: a.statuses }, on: { p50: round(b.p50, 3), p99: round(b.p99, 3), statuses: b.statuses }, load1m: load1m() });
    }
    const diffs = runs.map((r) => r.on.p50 - r.off.p50).sort((x, y) => x - y);
    const median = diffs[Math.floor(diffs.length / 2)];
    figure('detection_overhead_p50_ms_at_500rps', round(median, 3), '<=1', {
      runs,
      p50_differences_ms: diffs.map((d) => round(d, 3)),
      keys: OVERHEAD_KEYS,
      note: 'bulwark serve with and without the example policy\'s monitoring (PRADA, volume, OOD, drift), one row a request, keys in turn',
    });
    for (const s of [off, on]) {
      s.child.kill('SIGTERM');
      await s.exited;
    }
  }
} finally {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
