import { Command, InvalidArgumentError, Option } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import type { Severity } from '../core/index.js';
import { THREATS, gatingFindings, renderSummary, rulesTable, runAudit, type Threat } from '../audit/index.js';
import { initTfjs } from '../engines/index.js';
import { collect, parsePositiveInt, withCommonOptions } from './common.js';
import { terminalProgress } from './progress-bar.js';

interface AuditFlags {
  model?: string;
  data?: string;
  dataset?: string;
  trainData?: string;
  label?: string;
  drop?: string[];
  out: string;
  failOn?: Severity;
  key?: string;
  apiKey?: string;
  threats?: Threat[];
  budget?: number;
  quick?: boolean;
  config?: string;
  ledger?: string | false;
  json?: boolean;
  seed: number;
}

function parseThreats(value: string, previous: Threat[] = []): Threat[] {
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const t of list) {
    if (!(THREATS as readonly string[]).includes(t)) throw new InvalidArgumentError(`'${t}' is not a threat; choose from ${THREATS.join(', ')}.`);
  }
  return [...new Set([...previous, ...(list as Threat[])])];
}

const HELP = `
What runs is decided by what the target offers, before anything runs:
  a TF.js model directory  white-box: gradient attacks (FGSM, PGD), detectors, certificates
  an .onnx file or a URL   predict-only: score-based (Square) and label-only (HopSkipJump) attacks,
                           within --budget queries split across the sections that query the model
  --train-data             privacy (membership inference, DP-SGD) and poisoning sections
Sections that cannot run are listed in the report with the reason.

Severity rules (rule id: grades; override them under "rules" in --config):
${rulesTable()}

Config file (JSON; flags win over it):
  { "threats": ["evasion", "privacy"], "budget": 5000, "quick": false, "failOn": "high",
    "rules": { "evasion.pgd-robust-accuracy": { "thresholds": { "high": 0.05, "medium": 0.2 } },
               "provenance.model-fingerprint": { "enabled": false } } }

Files written to --out, all together after the last section: report.json, report.html,
report.sarif (SARIF 2.1.0, for code-scanning UIs) and report.junit.xml (one test case per check).

Exit codes: 0 done (no finding at or above --fail-on); 1 a failed finding at or above
--fail-on, or with --fail-on a section that broke (it could not vouch for its checks);
2 bad input (flags, config, model, key, data, labels), checked before any section runs,
and no report is written.

Examples:
  bulwark audit --quick
  bulwark audit --model models/mlp --data test.csv --label label --train-data train.csv --fail-on high
  bulwark audit --model http://host:8080/v2/models/digits --key $KEY --data digits --budget 3000`;

export function auditCommand(program: Command): void {
  withCommonOptions(
    program
      .command('audit')
      .description('red-team a model and write a report (no target: the built-in digits model)')
      .option('--model <dir|file.onnx|url>', 'the model to audit (default: the built-in digits MLP)')
      .option('--data <name|file>', "held-out data to audit against: 'digits' or a .csv/.jsonl/.npy file (default: digits)")
      .addOption(new Option('--dataset <name|file>', 'same as --data').hideHelp())
      .option('--train-data <name|file>', "the model's training data, for the privacy and poisoning sections")
      .option('--label <col>', 'label column of a .csv/.jsonl file (column index for .npy)')
      .option('--drop <cols>', 'columns to leave out of the features', collect)
      .option('--threats <list>', `threats to test, comma-separated: ${THREATS.join(', ')} (default: all)`, parseThreats)
      .option('--budget <queries>', 'most predictions the audit may ask of a predict-only target, all sections together (default: 10000 for a URL, no limit for an .onnx file)', parsePositiveInt)
      .option('--quick', 'fewer samples, epochs and attacks: under a minute on the built-in example')
      .option('--config <file>', 'bulwark.config.json: flag defaults and severity-rule overrides')
      .option('--out <dir>', 'directory for report.json, report.html, report.sarif and report.junit.xml', 'bulwark-report')
      .addOption(new Option('--fail-on <severity>', 'exit 1 when a failed finding is this severe or worse').choices(['low', 'medium', 'high', 'critical']))
      .option('--key <key>', 'API key for a remote model (or BULWARK_API_KEY)')
      .addOption(new Option('--api-key <key>', 'same as --key').hideHelp())
      .option('--ledger <file|url>', 'ledger to record the audit in (default: ledger.db in the cache directory)')
      .option('--no-ledger', 'do not record the audit in a ledger')
      .addHelpText('after', HELP),
  ).action(async (flags: AuditFlags, cmd: Command) => {
    const progress = terminalProgress();
    await initTfjs();
    const before = tf.memory().numTensors;
    const given = (name: string) => cmd.getOptionValueSource(name) !== 'default';
    const { report, files } = await runAudit({
      model: flags.model,
      data: flags.data ?? flags.dataset,
      trainData: flags.trainData,
      label: flags.label,
      drop: flags.drop,
      out: flags.out,
      seed: given('seed') ? flags.seed : undefined,
      progress,
      key: flags.key ?? flags.apiKey ?? process.env.BULWARK_API_KEY,
      threats: flags.threats,
      budget: flags.budget,
      quick: flags.quick,
      config: flags.config,
      failOn: flags.failOn,
      ledger: flags.ledger === false ? null : flags.ledger,
    });
    const leaked = tf.memory().numTensors - before;
    if (leaked !== 0) progress.log(`warning: ${leaked} tensors were not released by the audit`);
    const failOn = report.summary?.failOn;
    const gate = gatingFindings(report, failOn);
    const broken = report.sections.filter((s) => s.status === 'failed');
    if (flags.json) {
      process.stdout.write(JSON.stringify({ ...report, files, failed: gate.length }) + '\n');
    } else {
      process.stdout.write(renderSummary(report, { color: Boolean(process.stdout.isTTY), width: process.stdout.columns ?? 100 }) + '\n');
      for (const s of report.sections.filter((x) => x.status !== 'ran')) process.stdout.write(`${s.status === 'failed' ? 'FAILED' : 'not run'}: ${s.title}: ${s.reason}\n`);
      const run = report.run;
      if (run && run.access === 'predict-only') process.stdout.write(`queries sent: ${run.queriesUsed}${run.budget !== null ? ` of a budget of ${run.budget}` : ''}\n`);
      process.stdout.write(`verdict: ${report.summary?.verdict}\n`);
      process.stdout.write(`report written to ${files.length > 1 ? `${files.slice(0, -1).join(', ')} and ${files[files.length - 1]}` : files.join('')}\n`);
    }
    if (gate.length > 0) {
      process.stderr.write(`bulwark: ${gate.length} finding(s) at or above '${failOn}' failed\n`);
      process.exitCode = 1;
    } else if (failOn && broken.length > 0) {
      process.stderr.write(`bulwark: ${broken.length} section(s) failed (${broken.map((s) => s.id).join(', ')}), so the gate cannot pass\n`);
      process.exitCode = 1;
    }
  });
}
