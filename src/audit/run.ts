import path from 'node:path';
import { BulwarkError, VERSION, silentProgress, writeFileAtomically, type Model, type Progress, type Report, type ReportSection, type TrainTestSplit } from '../core/index.js';
import { loadDatasetSpec } from '../data/index.js';
import { openModel } from '../engines/index.js';
import { cacheDir, defaultDigitsModel } from './default-target.js';
import { openLedger, type LedgerStore } from '../provenance/index.js';
import { registerBuiltinSections } from './builtin.js';
import { auditSections, type AuditContext } from './sections.js';
import { renderHtml } from './render-html.js';

export interface AuditOptions {
  /** A model directory, .onnx file or URL; absent: the built-in digits MLP. */
  model?: string;
  /** The data to audit against; defaults to digits. */
  dataset?: string;
  label?: string;
  drop?: string[];
  /** Where report.json and report.html go; absent: nothing is written. */
  out?: string;
  seed?: number;
  progress?: Progress;
  apiKey?: string;
  /** Ledger (SQLite file or postgres:// URL) the audit records its inputs and results in; null: none. */
  ledger?: string | null;
}

export interface AuditResult {
  report: Report;
  files: string[];
}

export async function runAudit(opts: AuditOptions = {}): Promise<AuditResult> {
  registerBuiltinSections();
  const seed = opts.seed ?? 42;
  const progress = opts.progress ?? silentProgress;
  const datasetSpec = opts.dataset ?? 'digits';
  const data: TrainTestSplit = await loadDatasetSpec(datasetSpec, { label: opts.label, drop: opts.drop, seed });

  let model: Model;
  let modelFiles: string[];
  let dispose = (): void => {};
  let trained: { model: string; architecture: string; dataset: string; seed: number } | null = null;
  if (opts.model) {
    const opened = await openModel(opts.model, { apiKey: opts.apiKey });
    model = opened.model;
    modelFiles = opened.files;
    dispose = () => void (model as { dispose?: () => unknown }).dispose?.();
  } else {
    if (datasetSpec !== 'digits') throw new BulwarkError('E_USAGE', 'without --model the audit runs on the built-in digits model; give --model to audit against other data');
    const built = await defaultDigitsModel(seed, progress);
    if (built.trained) trained = { model: built.dir, architecture: 'mlp', dataset: 'digits', seed };
    model = built.model;
    modelFiles = ['model.json', 'weights.bin', 'bulwark.json'].map((f) => path.join(built.dir, f));
    dispose = () => built.model.dispose();
  }

  let ledger: LedgerStore | undefined;
  try {
    if (opts.ledger !== null) ledger = await openLedger(opts.ledger ?? path.join(cacheDir(), 'ledger.db'), { create: true });
    if (trained && ledger) await ledger.append({ kind: 'model.trained', payload: trained });
    await ledger?.append({
      kind: 'audit.started',
      payload: { model: model.info.name, engine: model.info.engine, dataset: data.test.name, seed, version: VERSION },
    });
    const ctx: AuditContext = { model, modelFiles, train: data.train, test: data.test, seed, progress, ledger };
    const sections: ReportSection[] = [];
    for (const section of auditSections()) {
      const applies = section.applies ? section.applies(ctx) : true;
      const t0 = performance.now();
      if (applies !== true) {
        sections.push({
          id: section.id,
          title: section.title,
          seconds: 0,
          findings: [{ area: section.id, title: `${section.title}: not run`, severity: 'info', metric: 'status', value: 'skipped', evidence: [typeof applies === 'string' ? applies : 'does not apply to this target'] }],
        });
        continue;
      }
      const findings = await section.run(ctx);
      sections.push({ id: section.id, title: section.title, findings, seconds: (performance.now() - t0) / 1000 });
    }
    const report: Report = {
      tool: 'bulwark',
      version: VERSION,
      createdAt: new Date().toISOString(),
      seed,
      target: { model: model.info.name, engine: model.info.engine, dataset: data.test.name },
      sections,
    };
    const files: string[] = [];
    if (opts.out) {
      // Both files are rendered before either is written, so a failure leaves no half report.
      const json = JSON.stringify(report, null, 2) + '\n';
      const html = renderHtml(report);
      const jsonPath = path.join(opts.out, 'report.json');
      const htmlPath = path.join(opts.out, 'report.html');
      await writeFileAtomically(jsonPath, json);
      await writeFileAtomically(htmlPath, html);
      files.push(jsonPath, htmlPath);
    }
    const findings = sections.flatMap((sec) => sec.findings);
    await ledger?.append({
      kind: 'audit.completed',
      payload: { findings: findings.length, failed: findings.filter((f) => f.passed === false).length, files },
    });
    return { report, files };
  } finally {
    dispose();
    await ledger?.close();
  }
}
