import { Command, InvalidArgumentError, Option } from 'commander';
import { promises as fs } from 'node:fs';
import { BulwarkError, encodeGreyPng, subset, writeFileAtomically, type Dataset } from '../core/index.js';
import { loadDatasetFile, loadDatasetSpec } from '../data/index.js';
import { initTfjs, openModel } from '../engines/index.js';
import {
  BACKDOOR_METHODS,
  numericBatches,
  planCsv,
  poison,
  scanBackdoor,
  scanCsvStream,
  scanDataset,
  scanInputOf,
  triggerImage,
  writeCleanCsv,
  writeDatasetFile,
  writeScores,
  type BackdoorMethod,
  type DatasetScanSummary,
  type PatchPosition,
  type PoisonOptions,
  type ScanInput,
} from '../poisoning/index.js';
import { collect, output, parseFraction, parsePositiveInt, pct, requireOption, withCommonOptions } from './common.js';
import { terminalProgress } from './progress-bar.js';

const STREAM_BYTES = 64 * 1024 * 1024;

const SCAN_HELP = `
Bad input, case by case:
  exit 2 (one line naming the line and column; fix the row or --drop the column):
    a missing, NaN or infinite value; text in a mostly numeric column; a column with no
    values (all empty or NaN); a --label or --drop column that does not exist; fewer than 5 rows
  a warning, and a result that still means something:
    a column of text                     left out of the features
    constant columns                     left out of the distances
    fewer rows than columns, or a        the covariance is shrunk towards the identity
    singular covariance (one-hot, copies) (distances approximate)
    one class only                       label checks skipped; label_issue_score is 0

Scores (--scores): row, outlier_score (robust Mahalanobis distance over its cut-off, raised
where a row lies far along a direction the outlying rows share: above 1 is an outlier), isolation_score, label_issue_score (1 - out-of-fold probability of the given
label) and suggested_label when there is a label, duplicate_of, reasons.

CSV files over 64 MB (or any with --stream) are scanned in three passes in bounded memory:
FastMCD on a 20,000-row sample, reweighted over every row by streaming covariance merges; the
isolation forest grown on the sample; logistic label checks on 5 folds of the sample; exact
duplicates through a hash table (16 bytes per distinct row). Near duplicates are looked for
only in memory.`;

/** `attack poison`, `data scan` and `model scan-backdoor`. */
export function registerPoisoningCommands(program: Command, attack: Command): void {
  withCommonOptions(
    attack
      .command('poison')
      .description('write a poisoned copy of a dataset (label flips, BadNets, blended, clean-label)')
      .option('--dataset <name|file>', "'digits' (its 8,000-row training split) or a .csv/.jsonl/.npy file", 'digits')
      .option('--label <col>', 'label column of a .csv/.jsonl file (column index for .npy)')
      .option('--drop <cols>', 'columns to leave out', collect)
      .addOption(new Option('--kind <kind>', 'the poison').choices(['label-flip', 'badnets', 'blended', 'clean-label']).default('badnets'))
      .option('--rate <f>', 'share of rows to poison', parseFraction, 0.1)
      .option('--target <class>', 'target class index (default 0)', parseClass)
      .option('--source <class>', 'label-flip targeted: the class flipped', parseClass)
      .option('--mode <mode>', 'label-flip: uniform|targeted; badnets/blended: all-to-one|all-to-all')
      .option('--patch-size <n>', 'badnets: patch side in pixels (features for tabular rows)', parsePositiveInt, 4)
      .option('--patch-position <pos>', 'badnets: bottom-right, bottom-left, top-right, top-left, centre, or ROW,COL', parsePosition)
      .addOption(new Option('--patch-pattern <p>', 'badnets: patch pattern').choices(['solid', 'checkerboard', 'random']).default('solid'))
      .option('--alpha <a>', 'blended: weight of the trigger image', parseFraction, 0.2)
      .option('--model <dir>', 'clean-label: the TF.js model whose features the poisons collide in')
      .option('--target-row <i>', 'clean-label: row of the test data (digits: its test split) to be misclassified', parseRow)
      .option('--out <file>', 'where to write: .csv (features, label, poisoned) or .npy (tabular: features + label column; images: [n, h, w, c] with labels in FILE.labels.npy; poisoned rows in FILE.poisoned.npy)'),
  ).action(async (flags: PoisonFlags) => {
    const out = requireOption(flags.out, '--out', 'the .csv or .npy file to write the poisoned dataset to');
    if (!/\.(csv|npy)$/i.test(out)) throw new BulwarkError('E_USAGE', `--out ${out}: give a .csv or .npy file name`);
    const data = flags.dataset === 'digits' ? await loadDatasetSpec('digits') : null;
    const ds = data ? data.train : await loadDatasetFile(flags.dataset, { label: flags.label, drop: flags.drop });
    const opts = await poisonOptions(flags, data?.test ?? ds);
    const result = await poison(ds, opts).finally(() => {
      if (opts.kind === 'clean-label') (opts.model as { dispose?: () => void }).dispose?.();
    });
    const marks = new Uint8Array(ds.y.length);
    for (const i of result.poisonedIndices) marks[i] = 1;
    const files = await writeDatasetFile(result.dataset, out, { poisoned: marks });
    const summary = { out, files, kind: flags.kind, rows: ds.y.length, poisoned: result.poisonedIndices.length, description: result.description, trigger: result.trigger?.description ?? null, poisonedIndices: [...result.poisonedIndices] };
    output(flags, summary, () =>
      [
        `${result.description}`,
        `wrote ${files.join(' and ')} (${ds.y.length} rows${out.endsWith('.csv') ? "; the 'poisoned' column marks the poison: leave it out with --drop poisoned" : ''})`,
      ].join('\n'),
    );
  });

  const data = program.command('data').description('inspect datasets');
  withCommonOptions(
    data
      .command('scan [file]')
      .description('rank suspicious rows of a dataset without a model: outliers, likely mislabelled rows, duplicates')
      .option('--dataset <name|file>', "a built-in dataset ('digits') or a file, instead of FILE")
      .option('--label <col>', 'label column (enables the label checks; for .npy a column index, default the last)')
      .option('--drop <cols>', 'columns to leave out of the features (ids, a ground-truth column)', collect)
      .option('--scores <file.csv>', 'write one line per input row, in input order: outlier_score, isolation_score, label_issue_score, …')
      .option('--clean <file>', 'write the data without the flagged rows (a CSV keeps every column as it was)')
      .option('--top <n>', 'suspicious rows to list', parsePositiveInt, 20)
      .option('--stream', 'scan a CSV in passes, in bounded memory, whatever its size')
      .addHelpText('after', SCAN_HELP),
  ).action(async (file: string | undefined, flags: ScanFlags) => {
    if ((file === undefined) === (flags.dataset === undefined)) throw new BulwarkError('E_USAGE', 'give the data to scan: a FILE or --dataset NAME (not both)');
    const spec = (file ?? flags.dataset)!;
    const progress = terminalProgress();
    const isCsv = /\.csv$/i.test(spec);
    let summary: DatasetScanSummary & { classNames?: string[] };
    let written: string[] = [];
    if (isCsv && (flags.stream || ((await fs.stat(spec).catch(() => null))?.size ?? 0) > STREAM_BYTES)) {
      const r = await scanCsvStream(spec, { label: flags.label, drop: flags.drop, scoresFile: flags.scores, cleanFile: flags.clean, top: flags.top, seed: flags.seed, progress });
      summary = r;
      written = [flags.scores, flags.clean].filter((f): f is string => Boolean(f));
    } else {
      const loaded = isCsv ? await readCsvInMemory(spec, flags) : await loadOther(spec, flags);
      const scan = scanDataset(loaded.input, { seed: flags.seed, progress, top: flags.top });
      scan.warnings.unshift(...loaded.warnings);
      summary = { ...scan, classNames: loaded.input.classNames ? [...loaded.input.classNames] : undefined };
      if (flags.scores) {
        await writeScores(flags.scores, scan, loaded.input.classNames);
        written.push(flags.scores);
      }
      if (flags.clean) {
        if (loaded.plan) await writeCleanCsv(loaded.plan, flags.clean, (row) => scan.flagged[row] === 1);
        else {
          const keep = [...scan.flagged.keys()].filter((i) => !scan.flagged[i]);
          await writeDatasetFile(subset(loaded.dataset!, keep), flags.clean);
        }
        written.push(flags.clean);
      }
    }
    for (const w of summary.warnings) progress.log(`warning: ${w}`);
    const result = { rows: summary.rows, features: summary.features, counts: summary.counts, streamed: summary.streamed, methods: summary.methods, warnings: summary.warnings, suspicious: summary.suspicious.slice(0, flags.top), written };
    output(flags, result, () => renderScan(summary, flags.top, written));
  });

  const model = program.command('model').description('inspect trained models');
  withCommonOptions(
    model
      .command('scan-backdoor')
      .description('look for a backdoor in a trained model: spectral signatures, activation clustering, STRIP, Neural Cleanse (exit 1 when a class looks infected)')
      .option('--model <dir>', 'the TF.js model directory (an .onnx file or URL supports STRIP only)')
      .option('--dataset <name|file>', "the model's training data ('digits': its training split)", 'digits')
      .option('--label <col>', 'label column of a .csv/.jsonl file (column index for .npy)')
      .option('--drop <cols>', 'columns to leave out of the features', collect)
      .option('--clean-data <file>', 'clean data for STRIP and Neural Cleanse (default: digits test split, or the rows no detector flagged)')
      .option('--methods <list>', `detectors to run, comma-separated (${BACKDOOR_METHODS.join(', ')})`, parseMethods)
      .option('--layer <name>', 'layer for spectral signatures and activation clustering (default: the penultimate)')
      .option('--steps <n>', 'Neural Cleanse optimisation steps', parsePositiveInt, 300)
      .option('--frr <f>', "STRIP's false-rejection rate on clean data", parseFraction, 0.05)
      .option('--trigger-out <file.png>', "write Neural Cleanse's reverse-engineered trigger for the most anomalous class as a PNG")
      .option('--top <n>', 'flagged rows to list', parsePositiveInt, 20)
      .option('--api-key <key>', 'API key for a remote model (or BULWARK_API_KEY)'),
  ).action(async (flags: BackdoorFlags) => {
    const spec = requireOption(flags.model, '--model', 'the model directory to scan');
    const progress = terminalProgress();
    const split = flags.dataset === 'digits' ? await loadDatasetSpec('digits') : null;
    const ds = split ? split.train : await loadDatasetFile(flags.dataset, { label: flags.label, drop: flags.drop });
    const clean = flags.cleanData ? await loadDatasetFile(flags.cleanData, { label: flags.label, drop: flags.drop }) : split?.test;
    if (!/^https?:/i.test(spec) && !/\.onnx$/i.test(spec)) await initTfjs();
    const { model: target } = await openModel(spec, { apiKey: flags.apiKey ?? process.env.BULWARK_API_KEY });
    try {
      const scan = await scanBackdoor(target, ds, { methods: flags.methods, layer: flags.layer, clean, frr: flags.frr, steps: flags.steps, seed: flags.seed, progress });
      let triggerFile: string | null = null;
      const worst = scan.nc ? [...scan.nc.triggers].sort((a, b) => b.anomalyIndex - a.anomalyIndex)[0] : undefined;
      if (flags.triggerOut && worst) {
        const img = triggerImage(worst.trigger);
        if (img) {
          await writeFileAtomically(flags.triggerOut, encodeGreyPng(img.width, img.height, img.pixels));
          triggerFile = flags.triggerOut;
        } else progress.log('warning: the data are not images; no trigger picture was written');
      }
      const detector = (d: typeof scan.spectral) => d && { layer: d.layer, infectedClasses: d.infectedClasses, flagged: d.flagged.reduce((a, b) => a + b, 0), classes: d.classes };
      const result = {
        rows: scan.rows,
        infectedClasses: scan.infectedClasses,
        flaggedRows: scan.flaggedRows.length,
        rowsFlagged: [...scan.flaggedRows].sort((a, b) => (scan.rowMethods.get(b)!.length - scan.rowMethods.get(a)!.length) || a - b).slice(0, flags.top).map((r) => ({ row: r, label: ds.classNames[ds.y[r]], methods: scan.rowMethods.get(r) })),
        spectral: detector(scan.spectral),
        activationClustering: detector(scan.ac),
        strip: scan.strip && { threshold: scan.strip.threshold, frr: scan.strip.frr, flagged: scan.strip.flagged.reduce((a, b) => a + b, 0) },
        neuralCleanse: scan.nc && { flagged: scan.nc.flagged, median: scan.nc.median, mad: scan.nc.mad, classes: scan.nc.triggers.map((t) => ({ class: t.className, maskL1: t.maskL1, attackSuccess: t.attackSuccess, anomalyIndex: t.anomalyIndex })) },
        cleanReference: scan.cleanReference,
        skipped: scan.skipped,
        triggerImage: triggerFile,
      };
      output(flags, result, () => renderBackdoor(result));
      if (scan.infectedClasses.length > 0) process.exitCode = 1;
    } finally {
      await (target as { dispose?: () => unknown }).dispose?.();
    }
  });
}

interface PoisonFlags {
  dataset: string;
  label?: string;
  drop?: string[];
  kind: PoisonOptions['kind'];
  rate: number;
  target?: number;
  source?: number;
  mode?: string;
  patchSize: number;
  patchPosition?: PatchPosition;
  patchPattern: 'solid' | 'checkerboard' | 'random';
  alpha: number;
  model?: string;
  targetRow?: number;
  out?: string;
  json?: boolean;
  seed: number;
}

interface ScanFlags {
  dataset?: string;
  label?: string;
  drop?: string[];
  scores?: string;
  clean?: string;
  top: number;
  stream?: boolean;
  json?: boolean;
  seed: number;
}

interface BackdoorFlags {
  model?: string;
  dataset: string;
  label?: string;
  drop?: string[];
  cleanData?: string;
  methods?: BackdoorMethod[];
  layer?: string;
  steps: number;
  frr: number;
  triggerOut?: string;
  top: number;
  apiKey?: string;
  json?: boolean;
  seed: number;
}

async function poisonOptions(f: PoisonFlags, test: Dataset): Promise<PoisonOptions> {
  const base = { rate: f.rate, seed: f.seed };
  if (f.rate === 0) throw new BulwarkError('E_USAGE', '--rate must be above 0');
  const modes: Record<string, string[]> = { 'label-flip': ['uniform', 'targeted'], badnets: ['all-to-one', 'all-to-all'], blended: ['all-to-one', 'all-to-all'] };
  if (f.mode !== undefined && !(modes[f.kind] ?? []).includes(f.mode)) {
    throw new BulwarkError('E_USAGE', `--mode ${f.mode} does not apply to --kind ${f.kind}${modes[f.kind] ? `; use ${modes[f.kind].join(' or ')}` : ''}`);
  }
  if (f.kind === 'label-flip') return { ...base, kind: 'label-flip', mode: f.mode as 'uniform' | 'targeted' | undefined, source: f.source, target: f.target };
  if (f.kind === 'badnets') return { ...base, kind: 'badnets', target: f.target, mode: f.mode as 'all-to-one' | undefined, patch: { size: f.patchSize, position: f.patchPosition, pattern: f.patchPattern } };
  if (f.kind === 'blended') return { ...base, kind: 'blended', target: f.target, mode: f.mode as 'all-to-one' | undefined, blend: { alpha: f.alpha } };
  const spec = requireOption(f.model, '--model', 'clean-label poisons collide in the features of a TF.js model');
  const row = requireOption(f.targetRow, '--target-row', 'the test row the poisons should get misclassified');
  if (row >= test.y.length) throw new BulwarkError('E_USAGE', `--target-row ${row} is out of range: the test data has ${test.y.length} rows`);
  await initTfjs();
  const { model } = await openModel(spec);
  const size = test.x.data.length / test.y.length;
  const base2 = f.target ?? (test.y[row] === 0 ? 1 : 0);
  return { ...base, kind: 'clean-label', model, baseClass: base2, targetSample: { data: test.x.data.slice(row * size, (row + 1) * size), shape: [1, ...test.x.shape.slice(1)] } };
}

async function readCsvInMemory(file: string, flags: ScanFlags): Promise<{ input: ScanInput; plan: Awaited<ReturnType<typeof planCsv>>; warnings: string[]; dataset?: Dataset }> {
  const plan = await planCsv(file, { label: flags.label, drop: flags.drop });
  const d = plan.features.length;
  const chunks: Float64Array[] = [];
  const labels: string[] = [];
  let n = 0;
  for await (const b of numericBatches(plan)) {
    chunks.push(b.x);
    if (b.labels) labels.push(...b.labels);
    n += b.count;
  }
  const x = new Float64Array(n * d);
  let at = 0;
  for (const c of chunks) {
    x.set(c, at);
    at += c.length;
  }
  let y: Int32Array | undefined;
  let classNames: string[] | undefined;
  if (plan.label >= 0) {
    const distinct = [...new Set(labels)];
    classNames = distinct.every((v) => !Number.isNaN(Number(v))) ? distinct.sort((a, b) => Number(a) - Number(b)) : distinct.sort();
    const index = new Map(classNames.map((c, i) => [c, i]));
    y = Int32Array.from(labels, (l) => index.get(l)!);
  }
  return { input: { x, n, d, y, classNames, featureNames: plan.featureNames }, plan, warnings: plan.warnings };
}

async function loadOther(spec: string, flags: ScanFlags): Promise<{ input: ScanInput; plan?: undefined; warnings: string[]; dataset: Dataset }> {
  const ds = await loadDatasetFile(spec, { label: flags.label, drop: flags.drop });
  return { input: scanInputOf(ds), warnings: [], dataset: ds };
}

function renderScan(s: DatasetScanSummary, top: number, written: string[]): string {
  const c = s.counts;
  const lines = [
    `scanned ${c.rows} rows × ${s.features} features${s.streamed ? ' (streamed)' : ''}: ${c.flagged} flagged (${pct(c.flagged / Math.max(1, c.rows))})`,
    `  outliers ${c.outliers}, likely mislabelled ${c.mislabeled}, duplicates ${c.duplicates}, conflicting duplicates ${c.conflictingDuplicates}, near duplicates ${c.nearDuplicates}`,
  ];
  if (s.suspicious.length > 0) {
    lines.push('', `most suspicious rows (0-based, header not counted):`);
    for (const r of s.suspicious.slice(0, top)) lines.push(`  row ${r.row}${r.label !== undefined ? ` [${r.label}]` : ''}: ${r.reasons.map((x) => `${x.kind} (${x.detail})`).join('; ')}`);
  }
  lines.push('', 'how:', ...s.methods.map((m) => `  ${m}`));
  if (written.length > 0) lines.push('', `wrote ${written.join(' and ')}`);
  return lines.join('\n');
}

function renderBackdoor(r: {
  rows: number;
  infectedClasses: { className: string; methods: string[] }[];
  flaggedRows: number;
  rowsFlagged: { row: number; label: string; methods?: string[] }[];
  neuralCleanse?: { classes: { class: string; maskL1: number; anomalyIndex: number }[] };
  cleanReference: string;
  skipped: { method: string; why: string }[];
  triggerImage: string | null;
}): string {
  const lines = [
    r.infectedClasses.length === 0
      ? `no backdoor found in ${r.rows} training rows`
      : `backdoor suspected: ${r.infectedClasses.map((c) => `class '${c.className}' (${c.methods.join(', ')})`).join('; ')}`,
    `${r.flaggedRows} rows flagged by at least one row detector`,
  ];
  for (const f of r.rowsFlagged) lines.push(`  row ${f.row} [${f.label}]: ${f.methods?.join(', ')}`);
  if (r.neuralCleanse) lines.push('Neural Cleanse (mask L1, anomaly index):', '  ' + r.neuralCleanse.classes.map((c) => `${c.class}: ${c.maskL1.toFixed(1)} (${c.anomalyIndex.toFixed(2)})`).join(', '));
  lines.push(`clean reference: ${r.cleanReference}`);
  for (const s of r.skipped) lines.push(`skipped ${s.method}: ${s.why}`);
  if (r.triggerImage) lines.push(`trigger image written to ${r.triggerImage}`);
  return lines.join('\n');
}

function parseClass(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`'${v}' is not a class index (0, 1, …).`);
  return n;
}

function parseRow(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`'${v}' is not a row index (0, 1, …).`);
  return n;
}

function parsePosition(v: string): PatchPosition {
  if (['bottom-right', 'bottom-left', 'top-right', 'top-left', 'centre'].includes(v)) return v as PatchPosition;
  const m = /^(\d+),(\d+)$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`'${v}' is not a patch position (bottom-right, bottom-left, top-right, top-left, centre, or ROW,COL).`);
  return [Number(m[1]), Number(m[2])];
}

function parseMethods(v: string, previous: BackdoorMethod[] = []): BackdoorMethod[] {
  const out = [...previous];
  for (const m of v.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (!(BACKDOOR_METHODS as readonly string[]).includes(m)) throw new InvalidArgumentError(`'${m}' is not a detector (${BACKDOOR_METHODS.join(', ')}).`);
    out.push(m as BackdoorMethod);
  }
  return out;
}
