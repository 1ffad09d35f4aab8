import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Rng, sampleCount, subset, type Dataset, type Finding, type Model, type Predictor, type Progress, type Samples } from '../../core/index.js';
import { connectHttpModel } from '../../engines/index.js';
import { extract, type ExtractionResult } from '../../extraction/index.js';
import { MemoryGatewayStore, ModelRegistry, createGateway, openAuditLedger, parsePolicy, type Alert, type GatewayPolicy } from '../../gateway/index.js';
import type { AuditContext, AuditSection } from '../sections.js';

const SIZES = {
  full: { budget: 2000, holdout: 1000, checkpoints: [250, 500, 1000] },
  quick: { budget: 1000, holdout: 300, checkpoints: [250, 500] },
};
/** Fewer than this and the curves say nothing. */
const LEAST = { budget: 250, holdout: 200 };
/** The daily budget of the tested tier: the example policy's public tier. */
const DAILY = 500;
const MODEL_NAME = 'audited';

/**
 * What the defended gateway runs, as a user would write it in policy.yaml. It is the example
 * policy's public tier (labels only, 500 rows a day) with the example's PRADA rule answering
 * with a suspension instead of a degrade, since a label-only key has nothing left to degrade.
 * Left out on purpose: rate limits (they slow an attacker, not what a given number of answers
 * buys, and a 429 retry would make the figures depend on the machine's speed) and the input
 * range check (the audited data decides what is valid here, not a model card).
 */
const DEFENDED = {
  tiers: { public: { output: { kind: 'label' }, budget: { samplesPerDay: DAILY } } },
  monitoring: {
    extraction: [{ detector: 'prada', respond: ['alert', 'suspend'] }],
    // A key's next request waits for the detectors to have seen its previous rows; served
    // defaults give up after 1 s so an overloaded detector cannot stall the API. The audit
    // waits as long as it takes, so the request at which a suspension holds does not depend
    // on how busy the machine is.
    maxWaitMs: 60_000,
  },
};
const UNDEFENDED = { tiers: { full: { output: { kind: 'full' } } } };

/** The tested policy as one line of YAML (flow style); the severity table's remedy gives it with the example's rate limit. */
const TESTED_YAML = `{ tiers: { public: { output: { kind: label }, budget: { samplesPerDay: ${DAILY} } } }, monitoring: { extraction: [ { detector: prada, respond: [alert, suspend] } ] } }`;

interface Sizes {
  budget: number;
  holdout: number;
  checkpoints: number[];
}

/** The predictions all three clients and the holdout cost the target: the defended ones stop at the daily budget. */
const cost = (budget: number, holdout: number) => budget + 2 * Math.min(budget, DAILY) + holdout;

function sizes(ctx: AuditContext): Sizes {
  const s = ctx.quick ? SIZES.quick : SIZES.full;
  let holdout = Math.min(s.holdout, ctx.test.y.length - (ctx.train ? 0 : LEAST.holdout));
  let budget = s.budget;
  if (ctx.queries != null) {
    holdout = Math.min(holdout, Math.max(LEAST.holdout, Math.floor(ctx.queries * 0.15)));
    const left = ctx.queries - holdout;
    budget = Math.min(budget, left >= 3 * DAILY ? left - 2 * DAILY : Math.floor(left / 3));
  }
  return { budget: Math.max(1, budget), holdout, checkpoints: s.checkpoints };
}

/**
 * Serving: what the gateway's policies change about model extraction. The audited model is put
 * behind two in-process gateways on a loopback port — one answering full probabilities with no
 * monitoring, one with a label-only tier, a daily budget and PRADA monitoring that suspends a
 * flagged key — and the same natural-input extraction is run through each with an API key of
 * its own. A Jacobian-augmentation client (Papernot et al.'s attacker, who has few natural
 * inputs) then runs against the defended gateway to see whether the detector flags it.
 */
export const servingSection: AuditSection = {
  id: 'serving',
  title: "Serving: extraction through the gateway's policies",
  threat: 'extraction',
  about: {
    tested: "how much less an API user can copy of the model behind Bulwark's gateway with a label-only tier, a daily budget and extraction monitoring, and whether the monitoring flags an extraction client",
    how: "the model is served by two gateways on 127.0.0.1 (full probabilities without monitoring; labels only, 500 rows a day and PRADA suspending a flagged key); the same natural-input extraction runs through each over HTTP, and a Jacobian-augmentation client runs against the defended one while the section reads the gateway's alerts",
  },
  needs: {
    queries: (ctx) => {
      const s = ctx.quick ? SIZES.quick : SIZES.full;
      return { min: cost(LEAST.budget, LEAST.holdout), want: cost(s.budget, Math.min(s.holdout, ctx.test.y.length)) };
    },
  },
  estimate: { full: 35, quick: 12 },
  applies(ctx) {
    if (ctx.modelFiles.length === 0 || ctx.model.info.engine === 'http') {
      return (
        "the target is a URL: the audit cannot put its own gateway in front of someone else's server. " +
        "Serve the model yourself with 'bulwark serve --model MODEL --policy policy.yaml' and audit that URL with a key of the tier to test " +
        "('bulwark audit --model http://127.0.0.1:8080/v2/models/NAME --key KEY --threats extraction'): the extraction section then measures the served policy"
      );
    }
    if (ctx.test.y.length < 2 * LEAST.holdout && !ctx.train) return `needs at least ${2 * LEAST.holdout} rows of data (a holdout and natural inputs to query with), or --train-data`;
    return true;
  },
  async run(ctx: AuditContext): Promise<Finding[]> {
    const s = sizes(ctx);
    const order = new Rng(ctx.seed).permutation(ctx.test.y.length);
    const holdout = subset(ctx.test, order.subarray(0, s.holdout), `${ctx.test.name} (holdout)`);
    const pool = ctx.train ? ctx.train.x : subset(ctx.test, order.subarray(s.holdout)).x;
    const quiet: Progress = { ...ctx.progress, log: () => {} };
    // The model's answers on the holdout, asked once: every run measures fidelity against them,
    // and none of them goes through a gateway (they are the auditor's, not the attacker's).
    const reference = await fixedReference(ctx.model, holdout);
    const steal = async (url: string, key: string, strategy: 'natural' | 'jacobian') => {
      const remote = await connectHttpModel(url, { apiKey: key });
      const r = await extract(remote, { budget: s.budget, strategy, pool, holdout, reference, checkpoints: s.checkpoints, seed: ctx.seed, progress: quiet });
      r.surrogate.dispose();
      return r;
    };

    const dir = await mkdtemp(path.join(os.tmpdir(), 'bulwark-audit-serving-'));
    try {
      const open = await withGateway(ctx.model, policy(UNDEFENDED, 'undefended'), dir, 'undefended', async (gw) => {
        const { key } = await gw.store.createKey({ name: 'audit-undefended', scopes: ['infer'], tier: 'full' });
        return steal(gw.url, key, 'natural');
      });
      const defended = await withGateway(ctx.model, policy(DEFENDED, 'defended'), dir, 'defended', async (gw) => {
        const natural = await gw.store.createKey({ name: 'audit-natural', scopes: ['infer'], tier: 'public' });
        const thief = await gw.store.createKey({ name: 'audit-jacobian', scopes: ['infer'], tier: 'public' });
        const admin = await gw.store.createKey({ name: 'audit-admin', scopes: ['admin'], tier: 'public' });
        const r = await steal(gw.url, natural.key, 'natural');
        const j = await steal(gw.url, thief.key, 'jacobian');
        // Detection runs in a thread of its own after each answer: wait until it has seen every row.
        await gw.idle();
        const alerts = await gw.alerts(admin.key);
        const mine = (id: string) => alerts.find((a) => a.key === id && a.rule === 'extraction');
        const restriction = (await gw.store.getKey(thief.record.id))?.restriction ?? null;
        return { r, j, thiefAlert: mine(thief.record.id), naturalAlert: mine(natural.record.id), restriction };
      });
      return findings(ctx, s, open, defended);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
};

function policy(raw: object, name: string): GatewayPolicy {
  // JSON is YAML: the same parser and checks as a policy file.
  return parsePolicy(JSON.stringify({ ...raw, validation: { range: 'none' } }), `(audit: ${name} gateway)`);
}

/** A predictor that answers the holdout with the model's answers, asked once. */
async function fixedReference(model: Model, holdout: Dataset): Promise<Predictor> {
  const answers = await model.predict(holdout.x);
  return {
    info: model.info,
    async predict(x: Samples): Promise<Samples> {
      if (x !== holdout.x && sampleCount(x) !== sampleCount(holdout.x)) throw new Error('the serving section asks its reference about the holdout only');
      return answers;
    },
  };
}

interface Served {
  url: string;
  store: MemoryGatewayStore;
  idle(): Promise<void>;
  alerts(adminKey: string): Promise<Alert[]>;
}

/**
 * Serves `model` on 127.0.0.1 (a free port) under `policy` for the length of `body`: keys and
 * detector state in memory, the audit log in a SQLite file under `dir`. Closed even when `body`
 * throws.
 */
async function withGateway<T>(model: Model, policy: GatewayPolicy, dir: string, name: string, body: (gw: Served) => Promise<T>): Promise<T> {
  const store = new MemoryGatewayStore();
  const ledger = await openAuditLedger(path.join(dir, `${name}.audit.db`), { actor: 'bulwark-audit' });
  let app: Awaited<ReturnType<typeof createGateway>> | undefined;
  try {
    const registry = new ModelRegistry(store);
    registry.add({ name: MODEL_NAME, version: '1', model, source: model.info.name, admitted: 'unsigned', loadedAt: new Date().toISOString() });
    app = await createGateway({ registry, store, ledger, policy, processMetrics: false });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const addr = app.server.address();
    const base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    const watched = app;
    return await body({
      url: `${base}/v2/models/${MODEL_NAME}`,
      store,
      idle: () => (policy.monitoring ? watched.watch.idle() : Promise.resolve()),
      async alerts(adminKey) {
        const res = await fetch(`${base}/admin/alerts?limit=1000`, { headers: { authorization: `Bearer ${adminKey}` } });
        if (!res.ok) throw new Error(`the audit's gateway answered ${res.status} to GET /admin/alerts: ${(await res.text()).slice(0, 200)}`);
        return ((await res.json()) as { alerts: Alert[] }).alerts;
      },
    });
  } finally {
    await app?.close();
    await ledger.close();
  }
}

interface DefendedRun {
  r: ExtractionResult;
  j: ExtractionResult;
  thiefAlert: Alert | undefined;
  naturalAlert: Alert | undefined;
  restriction: { suspended?: boolean; labelOnly?: boolean; misinform?: boolean; throttle?: unknown } | null;
}

const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
const points = (v: number) => `${(v * 100).toFixed(1)} points`;
const curveText = (r: ExtractionResult) => r.curve.map((p) => `${p.queries}: ${pct(p.fidelity)}`).join(', ');

/** The query count PRADA's alert names ("… after N queries"), where it names one. */
function flaggedAfter(a: Alert | undefined): number | null {
  const m = a ? /after (\d+) queries/.exec(a.detail) : null;
  return m ? Number(m[1]) : null;
}

/** An alert's detail without the key id, which is new on every run: the report stays the same for the same seed. */
function anonymous(detail: string): string {
  return detail.replace(/\bkey [0-9a-f]{8,}\b/g, 'the key');
}

function stopped(r: ExtractionResult): string {
  if (!r.refusal) return `used its whole budget of ${r.budget}`;
  if (r.refusal.status === 403) return `was refused after ${r.queriesAnswered} answers (HTTP 403: the key was suspended)`;
  if (r.refusal.status === 429) return `was refused after ${r.queriesAnswered} answers (HTTP 429: the daily budget of ${DAILY} rows was spent)`;
  return `was refused after ${r.queriesAnswered} answers (HTTP ${r.refusal.status})`;
}

function findings(ctx: AuditContext, s: Sizes, open: ExtractionResult, d: DefendedRun): Finding[] {
  const drop = open.fidelity - d.r.fidelity;
  const at = d.r.queriesAnswered;
  const same = open.curve.find((p) => p.queries === at);
  const fidelity: Finding = {
    area: 'extraction',
    id: 'serving.defended-fidelity',
    title: `Behind the gateway's policies a stolen copy agrees ${pct(d.r.fidelity)} with the model (${drop >= 0 ? '−' : '+'}${points(Math.abs(drop))})`,
    severity: 'info',
    metric: "agreement of a copy stolen through the defended gateway (labels only, daily budget, PRADA)",
    value: d.r.fidelity,
    evidence: [
      `the same ${s.budget}-query extraction (natural inputs, ${ctx.train ? 'the training data, unlabelled' : 'held-out rows outside the holdout'}; MLP surrogate) ran through two gateways on 127.0.0.1, each serving the audited model, with a key of its own`,
      `undefended (full probabilities, no monitoring): ${open.queriesAnswered} answers, fidelity ${pct(open.fidelity)} — by queries: ${curveText(open)}`,
      `defended (labels only, ${DAILY} rows a day, PRADA suspending a flagged key): the client ${stopped(d.r)}; fidelity ${pct(d.r.fidelity)} — by queries: ${curveText(d.r)}`,
      `fidelity drop: ${points(drop)}${same && at < open.queriesAnswered ? `; at ${at} answers, where the defended copy stopped, the undefended one already agreed ${pct(same.fidelity)} (${points(same.fidelity - d.r.fidelity)} from labels only, the rest from the budget)` : ''}`,
      `a daily budget slows a patient attacker rather than stopping one: at ${DAILY} rows a day, ${open.queriesAnswered} answers take ${Math.ceil(open.queriesAnswered / DAILY)} days on one key; keys per customer and PRADA are what keep many keys from adding up`,
      ...(d.naturalAlert ? [`the natural-input client was flagged too (${anonymous(d.naturalAlert.detail)}): a false alarm for ordinary traffic, or natural inputs unusual for this model`] : ['the natural-input client was not flagged: its queries look like ordinary traffic to PRADA']),
      `tested policy (rate limits left out: they slow an attacker without changing what an answer teaches): ${TESTED_YAML}`,
    ],
    chart: {
      kind: 'line',
      title: "What a stolen copy achieves with and without the gateway's policies",
      xLabel: 'queries answered',
      yLabel: 'fidelity (share of holdout rows where the copy agrees with the model)',
      series: [
        { name: 'undefended: full probabilities, no monitoring', points: open.curve.map((p) => [p.queries, p.fidelity] as [number, number]) },
        { name: `gateway policies: labels only, ${DAILY}/day, PRADA`, points: d.r.curve.map((p) => [p.queries, p.fidelity] as [number, number]) },
      ],
    },
  };

  const after = flaggedAfter(d.thiefAlert);
  const r = d.restriction;
  const applied = r?.suspended ? 'suspended' : r?.misinform ? 'answered with misinformation' : r?.labelOnly ? 'degraded to labels only' : r?.throttle ? 'throttled' : null;
  const j = d.j;
  const detected: Finding = {
    area: 'extraction',
    id: 'serving.extraction-detected',
    title: d.thiefAlert
      ? `PRADA flagged the Jacobian extraction client${after !== null ? ` after ${after} queries` : ''}${applied ? `; the key was ${applied}` : ''}`
      : 'PRADA did not flag the Jacobian extraction client',
    severity: 'info',
    metric: 'Jacobian extraction client flagged by the gateway',
    value: d.thiefAlert ? (after !== null ? `after ${after} queries` : 'yes') : 'no',
    passed: d.thiefAlert !== undefined,
    evidence: [
      `a Jacobian-augmentation client (150 natural seeds, steps along its surrogate's gradient, labels only; Papernot et al. 2017) with its own key on the defended gateway's label-only tier; it ${stopped(j)}`,
      d.thiefAlert
        ? `the gateway's alert (GET /admin/alerts, read after its detectors had seen every row): ${anonymous(d.thiefAlert.detail)}; responses: ${d.thiefAlert.responses.join(', ')}`
        : `no extraction alert for its key in GET /admin/alerts after its detectors had seen all ${j.queriesAnswered} answered rows`,
      `the key's restriction afterwards: ${applied ?? 'none'}`,
      `what it copied: fidelity ${pct(j.fidelity)} from ${j.queriesAnswered} answers (by queries: ${curveText(j)})`,
    ],
  };
  return [fidelity, detected];
}
