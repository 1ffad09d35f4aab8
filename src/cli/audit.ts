import { Command, Option } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import { severityOrder, type Severity } from '../core/index.js';
import { renderSummary, runAudit } from '../audit/index.js';
import { initTfjs } from '../engines/index.js';
import { collect, withCommonOptions } from './common.js';
import { terminalProgress } from './progress-bar.js';

interface AuditFlags {
  model?: string;
  dataset?: string;
  label?: string;
  drop?: string[];
  out: string;
  failOn?: Severity;
  apiKey?: string;
  ledger?: string | false;
  json?: boolean;
  seed: number;
}

export function auditCommand(program: Command): void {
  withCommonOptions(
    program
      .command('audit')
      .description('red-team a model and write a report (no target: the built-in digits model)')
      .option('--model <dir|file.onnx|url>', 'the model to audit (default: the built-in digits MLP)')
      .option('--dataset <name|file>', "data to audit against: 'digits' or a .csv/.jsonl/.npy file")
      .option('--label <col>', 'label column of a .csv/.jsonl file')
      .option('--drop <cols>', 'columns to leave out of the features', collect)
      .option('--out <dir>', 'directory for report.json and report.html', 'bulwark-report')
      .addOption(new Option('--fail-on <severity>', 'exit 1 when a failed finding is this severe or worse').choices(['low', 'medium', 'high', 'critical']))
      .option('--api-key <key>', 'API key for a remote model (or BULWARK_API_KEY)')
      .option('--ledger <file|url>', 'ledger to record the audit in (default: ledger.db in the cache directory)')
      .option('--no-ledger', 'do not record the audit in a ledger'),
  ).action(async (flags: AuditFlags) => {
    const progress = terminalProgress();
    await initTfjs();
    const before = tf.memory().numTensors;
    const { report, files } = await runAudit({
      model: flags.model,
      dataset: flags.dataset,
      label: flags.label,
      drop: flags.drop,
      out: flags.out,
      seed: flags.seed,
      progress,
      apiKey: flags.apiKey ?? process.env.BULWARK_API_KEY,
      ledger: flags.ledger === false ? null : flags.ledger,
    });
    const leaked = tf.memory().numTensors - before;
    if (leaked !== 0) progress.log(`warning: ${leaked} tensors were not released by the audit`);
    const failed = report.sections.flatMap((s) => s.findings).filter((f) => f.passed === false);
    const gate = flags.failOn ? failed.filter((f) => severityOrder[f.severity] >= severityOrder[flags.failOn!]) : [];
    if (flags.json) {
      process.stdout.write(JSON.stringify({ ...report, files, failed: gate.length }) + '\n');
    } else {
      process.stdout.write(renderSummary(report, { color: Boolean(process.stdout.isTTY), width: process.stdout.columns ?? 100 }) + '\n');
      process.stdout.write(`report written to ${files.join(' and ')}\n`);
    }
    if (gate.length > 0) {
      process.stderr.write(`bulwark: ${gate.length} finding(s) at or above '${flags.failOn}' failed\n`);
      process.exitCode = 1;
    }
  });
}
