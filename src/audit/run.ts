import path from 'node:path';
import {
  BulwarkError,
  VERSION,
  hasCapability,
  silentProgress,
  writeFileAtomically,
  type Dataset,
  type Model,
  type Progress,
  type Report,
  type ReportSection,
  type Samples,
  type Severity,
} from '../core/index.js';
import { openLedger, type LedgerStore } from '../provenance/index.js';
import { cacheDir, defaultDigitsModel, defaultHardenedDigitsModel } from './default-target.js';
import { registerBuiltinSections } from './builtin.js';
import { auditSections, type AuditContext } from './sections.js';
import { renderHtml } from './render-html.js';
import { THREATS, effectiveRules, loadAuditConfig, type AuditConfig, type Threat } from './config.js';
import { planAudit } from './plan.js';
import { applySeverity, type SeverityRule } from './severity.js';
import { THREAT_TITLES, summarize } from './summary.js';
import { toSarif } from './sarif.js';
import { toJunit } from './junit.js';
import { RunProgress } from './progress.js';
import { explainRemote, fitDataToModel, loadAuditData, openTarget } from './target.js';

export interface AuditOptions {
  /** A model directory, .onnx file or URL; absent: the built-in digits MLP. */
  model?: string;
  /** The data to audit against (all of it held out); 'digits' or a file. Default 'digits'. */
  data?: string;
  /** @deprecated the old name of `data`. */
  dataset?: string;
  /** The model's training data, for the privacy and poisoning sections. */
  trainData?: string;
  label?: string;
  drop?: string[];
  /** Where the report files go; absent: nothing is written. */
  out?: string;
  seed?: number;
  progress?: Progress;
  /** API key for a remote model. */
  key?: string;
  /** @deprecated the old name of `key`. */
  apiKey?: string;
  /** Threats to test; default all. The model card always runs. */
  threats?: Threat[];
  /** Predictions the whole audit may ask of a predict-only target; default: no limit. */
  budget?: number;
  quick?: boolean;
  /** A bulwark.config.json to read (flags given here win over it). */
  config?: string;
  /** Severity at or above which a failed finding fails the run (recorded in the summary). */
  failOn?: Severity;
  /** Ledger (SQLite file or postgres:// URL) the audit records its inputs and results in; null: none. */
  ledger?: string | null;
}

export interface AuditResult {
  report: Report;
  files: string[];
  /** The severity table the run graded with (defaults and the config's overrides). */
  rules: SeverityRule[];
}

/** Queries the audit asks of a URL when neither --budget nor the config sets a budget. */
export const DEFAULT_URL_BUDGET = 10_000;

/** Threats no section of this build covers yet, and what to use instead (all are covered today). */
const NOT_BUILT: Record<string, string> = {};

/**
 * Runs the audit. Everything the user can get wrong (model, key, data, labels, config) is
 * checked before any section starts and ends the run with a BulwarkError and no report; a
 * section that breaks later is reported as 'failed' with its reason, and the other sections
 * still run. The report files are written together, each atomically, after the last section.
 */
export async function runAudit(opts: AuditOptions = {}): Promise<AuditResult> {
  registerBuiltinSections();
  const config: AuditConfig = opts.config ? await loadAuditConfig(opts.config) : {};
  const rules = effectiveRules(config);
  const seed = opts.seed ?? config.seed ?? 42;
  const quick = opts.quick ?? config.quick ?? false;
  const threats: Threat[] = [...(opts.threats ?? config.threats ?? THREATS)];
  for (const t of threats) if (!THREATS.includes(t)) throw new BulwarkError('E_USAGE', `--threats: unknown threat '${t}'; choose from ${THREATS.join(', ')}`);
  // A server may bill per query: without a budget a URL gets a default one, a local file none.
  const budget = opts.budget ?? config.budget ?? (opts.model && /^https?:/i.test(opts.model) ? DEFAULT_URL_BUDGET : null);
  if (budget !== null && !(Number.isInteger(budget) && budget >= 1)) throw new BulwarkError('E_USAGE', `--budget must be a positive whole number of queries, not ${budget}`);
  const failOn = opts.failOn ?? config.failOn;
  const progress = opts.progress ?? silentProgress;
  const dataSpec = opts.data ?? opts.dataset ?? 'digits';
  const key = opts.key ?? opts.apiKey;

  let model: Model;
  let modelFiles: string[];
  let dispose = (): void => {};
  let trained: { model: string; architecture: string; dataset: string; seed: number } | null = null;
  let test: Dataset;
  let train: Dataset | undefined;
  let hardened: AuditContext['hardened'];
  if (opts.model) {
    ({ model, files: modelFiles } = await openTarget(opts.model, key));
    dispose = () => void (model as { dispose?: () => unknown }).dispose?.();
    try {
      const data = await loadAuditData({ data: dataSpec, trainData: opts.trainData, label: opts.label, drop: opts.drop, seed });
      test = fitDataToModel(model, data.test, '--data', dataSpec, opts.label);
      train = data.train && fitDataToModel(model, data.train, '--train-data', opts.trainData!, opts.label);
    } catch (e) {
      dispose();
      throw e;
    }
  } else {
    if (dataSpec !== 'digits' || (opts.trainData && opts.trainData !== 'digits')) {
      throw new BulwarkError('E_USAGE', 'without --model the audit runs on the built-in digits model and its data; give --model to audit against other data');
    }
    const built = await defaultDigitsModel(seed, progress);
    if (built.trained) trained = { model: built.dir, architecture: 'mlp', dataset: 'digits', seed };
    model = built.model;
    hardened = async () => {
      const h = await defaultHardenedDigitsModel(seed, progress);
      if (h.trained && ledger) await ledger.append({ kind: 'model.trained', payload: { model: h.dir, architecture: 'mlp', dataset: 'digits', seed, adversarial: 'fgsm-rs' } });
      return { model: h.model, name: h.dir };
    };
    modelFiles = ['model.json', 'weights.bin', 'bulwark.json'].map((f) => path.join(built.dir, f));
    dispose = () => built.model.dispose();
    const data = await loadAuditData({ data: 'digits', trainData: 'digits', seed });
    test = data.test;
    train = data.train;
  }

  // A predict-only target is asked through a meter: every prediction counts against the
  // section's allowance, and one that would overrun it is refused before it is sent.
  const predictOnly = !hasCapability(model, 'lossGradient');
  const meter = predictOnly ? meteredModel(model) : null;
  const target = meter ? meter.model : model;
  let ledger: LedgerStore | undefined;
  try {
    if (meter) {
      // One query up front: a key without the infer scope, or data the server refuses, is
      // bad input to report now, not a broken section later.
      meter.allow(1);
      try {
        await target.predict(firstRow(test.x));
      } catch (e) {
        throw explainRemote(e, opts.model!, key);
      }
    }
    const ctx: AuditContext = { model: target, modelFiles, train, test, seed, progress, quick, hardened };
    const remaining = budget === null ? null : budget - (meter?.used() ?? 0);
    const plan = planAudit(auditSections(), ctx, { threats, budget: remaining, missing: NOT_BUILT });

    if (opts.ledger !== null) ledger = await openLedger(opts.ledger ?? path.join(cacheDir(), 'ledger.db'), { create: true });
    if (trained && ledger) await ledger.append({ kind: 'model.trained', payload: trained });
    await ledger?.append({
      kind: 'audit.started',
      payload: { model: model.info.name, engine: model.info.engine, dataset: test.name, seed, version: VERSION, quick, threats, budget },
    });

    const running = plan.sections.filter((p) => p.skip === null);
    const runProgress = new RunProgress(
      progress,
      running.map((p) => ({ id: p.section.id, title: p.section.title, seconds: (quick ? p.section.estimate?.quick : p.section.estimate?.full) ?? 5 })),
    );
    const sections: ReportSection[] = [];
    for (const p of plan.sections) {
      const { section } = p;
      const about = section.about ?? { tested: section.title, how: 'see the findings' };
      const base = { id: section.id, title: section.title, threat: p.threat, about };
      if (p.skip !== null) {
        sections.push({ ...base, status: 'skipped', reason: p.skip, findings: [], seconds: 0 });
        continue;
      }
      const index = running.indexOf(p);
      const sectionProgress = runProgress.begin(index);
      const usedBefore = meter?.used() ?? 0;
      meter?.allow(p.queries);
      const t0 = performance.now();
      try {
        const findings = await section.run({ ...ctx, progress: sectionProgress, ledger, queries: p.queries });
        sections.push({ ...base, status: 'ran', findings: applySeverity(findings, rules), seconds: (performance.now() - t0) / 1000 });
      } catch (e) {
        progress.done();
        const why = e instanceof Error ? e.message : String(e);
        progress.log(`section '${section.id}' failed: ${why}`);
        sections.push({ ...base, status: 'failed', reason: why, findings: [], seconds: (performance.now() - t0) / 1000 });
      } finally {
        runProgress.end(index);
      }
      if (meter) sections[sections.length - 1].queries = { allowed: p.queries, used: meter.used() - usedBefore };
    }
    for (const u of plan.uncovered) {
      sections.push({
        id: u.threat,
        title: THREAT_TITLES[u.threat] ?? u.threat,
        threat: u.threat,
        status: 'skipped',
        reason: u.reason,
        findings: [],
        seconds: 0,
      });
    }

    const remoteCount = (model as { queries?: unknown }).queries;
    const report: Report = {
      tool: 'bulwark',
      version: VERSION,
      createdAt: new Date().toISOString(),
      seed,
      target: { model: model.info.name, engine: model.info.engine, dataset: test.name },
      summary: summarize(sections, threats, failOn),
      run: {
        quick,
        threats,
        budget,
        // The remote model's own count includes retried requests: what the server's budget saw.
        queriesUsed: typeof remoteCount === 'number' ? remoteCount : (meter?.used() ?? 0),
        access: predictOnly ? 'predict-only' : 'white-box',
        trainable: hasCapability(model, 'fit'),
        trainingData: train !== undefined,
        ...(opts.config ? { config: opts.config } : {}),
      },
      sections,
    };

    const files: string[] = [];
    if (opts.out) {
      // Everything is rendered before anything is written, so a failure leaves no half report.
      const artifact = modelFiles.length ? path.relative(process.cwd(), opts.model ?? path.dirname(modelFiles[0])) || '.' : path.relative(process.cwd(), path.join(opts.out, 'report.json'));
      const contents: [string, string][] = [
        ['report.json', JSON.stringify(report, null, 2) + '\n'],
        ['report.html', renderHtml(report)],
        ['report.sarif', JSON.stringify(toSarif(report, rules, artifact.split(path.sep).join('/')), null, 2) + '\n'],
        ['report.junit.xml', toJunit(report)],
      ];
      for (const [name, content] of contents) {
        const file = path.join(opts.out, name);
        await writeFileAtomically(file, content);
        files.push(file);
      }
    }
    const findings = sections.flatMap((sec) => sec.findings);
    await ledger?.append({
      kind: 'audit.completed',
      payload: { findings: findings.length, failed: findings.filter((f) => f.passed === false).length, files, verdict: report.summary!.verdict, queries: report.run!.queriesUsed },
    });
    return { report, files, rules };
  } finally {
    dispose();
    await ledger?.close();
  }
}

function firstRow(x: Samples): Samples {
  const d = x.data.length / x.shape[0];
  return { data: x.data.slice(0, d), shape: [1, ...x.shape.slice(1)] };
}

/** A predict-only view of a model that counts predictions and refuses those over the allowance. */
function meteredModel(model: Model): { model: Model; used(): number; allow(n: number | null): void } {
  let used = 0;
  let start = 0;
  let cap = Infinity;
  const metered: Model = {
    info: model.info,
    async predict(x: Samples): Promise<Samples> {
      const n = x.shape[0];
      if (used - start + n > cap) {
        throw new Error(`it asked for ${used - start + n} predictions, over its allowance of ${cap} from the query plan; nothing over the allowance was sent`);
      }
      used += n;
      return model.predict(x);
    },
  };
  return {
    model: metered,
    used: () => used,
    allow: (n) => {
      start = used;
      cap = n === null ? Infinity : n;
    },
  };
}
