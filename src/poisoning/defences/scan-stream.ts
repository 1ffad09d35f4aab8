import { BulwarkError, Rng, silentProgress } from '../../core/index.js';
import { AtomicTextWriter } from '../io.js';
import { CovarianceAccumulator } from './covariance-stream.js';
import { numericBatches, planCsv } from './csv-stream.js';
import { DuplicateIndex } from './duplicates.js';
import { IsolationForest } from './iforest.js';
import { judgeRow, labelIssuesFromProbabilities } from './label-issues.js';
import { cholesky, mahalanobisRow } from './linalg.js';
import { principalAxes, project } from './pca.js';
import { fastMcd } from './mcd.js';
import { clusteredOutliers } from './clustered.js';
import { outlierCutoff } from './scan.js';
import { scoresHeader, scoresLine } from './scan-output.js';
import { countReasons, emptyCounts, rowReasons, suspicionOf, TopRows, type DatasetScanSummary, type ScanOptions } from './scan-types.js';
import { outOfFoldSoftmax, predictSoftmax } from './softmax.js';
import { chi2Quantile } from './stats.js';

export interface StreamScanOptions extends ScanOptions {
  label?: string;
  drop?: string[];
  /** Where to write one score line per row. */
  scoresFile?: string;
  /** Where to write the file without its flagged rows. */
  cleanFile?: string;
  /** Rows sampled (uniformly, reservoir sampling) for the fits that need rows in memory (default 20,000). */
  reservoirSize?: number;
}

export interface StreamScanResult extends DatasetScanSummary {
  classNames?: string[];
  /** Rows written to the clean file. */
  kept?: number;
}

/**
 * Scans a CSV too large to hold, in three passes and O(d² + reservoir) memory:
 *  1. count, column ranges, exact duplicates (a 16-byte-per-distinct-row hash table), and a
 *     uniform reservoir sample;
 *  2. FastMCD on the reservoir gives the raw robust estimate; the reweighting step then runs
 *     over every row, merging the covariance of the rows it keeps chunk by chunk;
 *  3. every row is scored (robust distance, isolation forest grown on the reservoir, the
 *     out-of-fold logistic label check) and written to the scores and clean files as it passes.
 * Near duplicates need neighbour search over all rows and are not looked for here.
 */
export async function scanCsvStream(path: string, opts: StreamScanOptions = {}): Promise<StreamScanResult> {
  const progress = opts.progress ?? silentProgress;
  const seed = opts.seed ?? 42;
  const q = opts.outlierQuantile ?? 0.999;
  const isoThreshold = opts.isolationThreshold ?? 0.7;
  const maxDims = opts.maxDims ?? 30;
  const R = opts.reservoirSize ?? 20000;
  const plan = await planCsv(path, { label: opts.label, drop: opts.drop });
  const warnings = [...plan.warnings];
  const methods: string[] = [];
  const d0 = plan.features.length;

  // Pass 1.
  progress.start('scan pass 1/3: sampling', 1);
  const lo = new Float64Array(d0).fill(Infinity);
  const hi = new Float64Array(d0).fill(-Infinity);
  const reservoir = new Float64Array(R * d0);
  const resLabels = new Int32Array(R);
  const resRows = new Int32Array(R);
  const rng = new Rng(seed);
  const classIndex = new Map<string, number>();
  const dups = new DuplicateIndex();
  let n = 0;
  for await (const b of numericBatches(plan)) {
    for (let i = 0; i < b.count; i++) {
      const o = i * d0;
      for (let j = 0; j < d0; j++) {
        const v = b.x[o + j];
        if (v < lo[j]) lo[j] = v;
        if (v > hi[j]) hi[j] = v;
      }
      let label = -1;
      if (b.labels) {
        label = classIndex.get(b.labels[i]) ?? classIndex.size;
        if (label === classIndex.size) classIndex.set(b.labels[i], label);
      }
      dups.add(b.x, o, d0, n, label);
      const slot = n < R ? n : rng.int(n + 1);
      if (slot < R) {
        reservoir.set(b.x.subarray(o, o + d0), slot * d0);
        resLabels[slot] = label;
        resRows[slot] = n;
      }
      n++;
    }
    progress.advance(0, `${n} rows`);
  }
  progress.done();
  if (n < 5) throw new BulwarkError('E_DATA_SHAPE', `a scan needs at least 5 rows to tell typical from atypical; ${path} has ${n}`);
  const m = Math.min(n, R);
  const kept = [...Array(d0).keys()].filter((j) => hi[j] > lo[j]);
  const constant = [...Array(d0).keys()].filter((j) => !(hi[j] > lo[j]));
  if (constant.length > 0) warnings.push(`constant column${constant.length === 1 ? '' : 's'} ${constant.map((j) => `'${plan.featureNames[j]}'`).join(', ')} left out of the distances`);
  if (kept.length === 0) throw new BulwarkError('E_DATA_VALUE', `every feature column of ${path} is constant: there is nothing to tell rows apart by`);
  const d = kept.length;

  // The feature map every pass applies: kept columns, then (for wide files) principal components.
  const sample = new Float64Array(m * d);
  for (let i = 0; i < m; i++) for (let c = 0; c < d; c++) sample[i * d + c] = reservoir[i * d0 + kept[c]];
  let dims = d;
  let toSpace = (x: Float64Array, count: number): Float64Array => {
    const out = new Float64Array(count * d);
    for (let i = 0; i < count; i++) for (let c = 0; c < d; c++) out[i * d + c] = x[i * d0 + kept[c]];
    return out;
  };
  let space = sample;
  if (d > maxDims) {
    const pca = principalAxes(sample, d, maxDims);
    const select = toSpace;
    toSpace = (x, count) => Float64Array.from(project(select(x, count), d, pca.mean, pca.axes, maxDims));
    space = Float64Array.from(project(sample, d, pca.mean, pca.axes, maxDims));
    dims = maxDims;
    methods.push(`distances on the leading ${maxDims} principal components of the ${d} columns`);
  }

  progress.start('scan: robust covariance (FastMCD on the sample)', 1);
  const mcd = fastMcd(space, m, dims, { seed });
  warnings.push(...mcd.warnings);
  progress.done();

  // Pass 2: reweighting over all rows, by streaming covariance merges.
  let location = mcd.location;
  let covariance = mcd.covariance;
  if (mcd.shrinkage === 0 && n > m) {
    progress.start('scan pass 2/3: reweighting', 1);
    const raw = Float64Array.from(mcd.rawCovariance, (v) => v * mcd.correction);
    const rawChol = cholesky(raw, dims);
    if (rawChol) {
      const cut = chi2Quantile(0.975, dims);
      const acc = new CovarianceAccumulator(dims);
      const z = new Float64Array(dims);
      for await (const b of numericBatches(plan)) {
        const x = toSpace(b.x, b.count);
        const keep: number[] = [];
        for (let i = 0; i < b.count; i++) if (mahalanobisRow(x, i * dims, dims, mcd.rawLocation, rawChol, z) < cut) keep.push(i);
        acc.addRows(x, b.count, keep);
      }
      if (acc.count > dims && cholesky(acc.covariance(), dims)) {
        location = Float64Array.from(acc.mean);
        covariance = acc.covariance();
        methods.push(`outlier_score: robust Mahalanobis distance; FastMCD on a uniform sample of ${m} rows, then reweighted over all ${n} rows (${acc.count} kept) by streaming covariance merges`);
      }
    }
    progress.done();
  }
  if (methods.every((s) => !s.startsWith('outlier_score'))) {
    methods.push(`outlier_score: robust Mahalanobis distance from FastMCD on ${m === n ? 'all' : `a uniform sample of ${m} of the`} ${n} rows (reweighted${mcd.shrinkage > 0 ? `, shrinkage ρ = ${mcd.shrinkage.toFixed(3)}` : ''})`);
  }
  const chol = cholesky(covariance, dims)!;
  const zz = new Float64Array(dims);
  const sampleDist = Float64Array.from({ length: m }, (_, i) => mahalanobisRow(space, i * dims, dims, location, chol, zz));
  const cutoff = outlierCutoff(sampleDist, dims, q);
  methods.push(`outlier cut-off d² = ${cutoff.value.toPrecision(4)} (${cutoff.why}, measured on the sample)`);
  // A shared direction of the outlying rows, looked for on the sample under the final fit.
  const reweightCut = chi2Quantile(0.975, dims);
  const group = clusteredOutliers(space, m, dims, { location, covariance, distances: sampleDist, support: Uint8Array.from(sampleDist, (v) => (v < reweightCut ? 1 : 0)) }, { seed });
  if (group.detected) {
    methods.push(`outlier_score also counts a shared direction of the outlying rows of the sample (their whitened mean offset, χ²${dims} = ${group.statistic.toFixed(1)}, p = ${group.pValue.toExponential(1)}): a row's one-sided position along it, as a χ²${dims} distance of the same tail probability, where larger`);
  }
  const forest = IsolationForest.fit(space, m, dims, { seed });
  methods.push(`isolation_score: isolation forest grown on the sample (100 trees of ${forest.sampleSize} rows); an outlier at ≥ ${isoThreshold}`);

  // Label checks: out-of-fold logistic regression on the sample; other rows are predicted by
  // the average of the fold models, none of which saw them.
  const classNames = plan.label >= 0 ? [...classIndex.keys()] : undefined;
  const k = classIndex.size;
  let judge: ((x: Float64Array, offset: number, row: number, label: number) => { score: number; flagged: boolean; suggested: number }) | null = null;
  if (plan.label >= 0 && k < 2) {
    warnings.push(`every row has the same label ('${classNames?.[0]}'): the label checks need at least two classes and were skipped`);
  } else if (plan.label >= 0) {
    progress.start('scan: label model (logistic, 5 folds on the sample)', 1);
    const resY = resLabels.subarray(0, m);
    const oof = outOfFoldSoftmax(sample, m, d, resY, k, { folds: 5, seed, epochs: 10 });
    const issues = labelIssuesFromProbabilities(oof.probabilities, resY, k);
    const slotOfRow = new Map<number, number>();
    for (let i = 0; i < m; i++) slotOfRow.set(resRows[i], i);
    const p = new Float64Array(k);
    const avg = new Float64Array(k);
    const scratch = new Float64Array(d + 1);
    judge = (x, offset, row, label) => {
      const slot = slotOfRow.get(row);
      if (slot !== undefined) return judgeRow(oof.probabilities, slot * k, label, k, issues.thresholds, issues.floor);
      avg.fill(0);
      for (const model of oof.models) {
        predictSoftmax(model, x, offset, p, scratch);
        for (let c = 0; c < k; c++) avg[c] += p[c] / oof.models.length;
      }
      return judgeRow(avg, 0, label, k, issues.thresholds, issues.floor);
    };
    methods.push(`label_issue_score: 1 − out-of-fold probability of the given label from logistic regression (5 folds on the sample); flagged by confident learning's per-class thresholds or below ${issues.floor.toFixed(2)}`);
    progress.done();
  }
  methods.push('duplicates: exact repeats of the feature values (hashed); near duplicates are not searched for in a streamed scan');

  // Pass 3: score, write, keep the top rows.
  progress.start('scan pass 3/3: scoring', 1);
  const scores = opts.scoresFile ? await AtomicTextWriter.open(opts.scoresFile) : null;
  const clean = opts.cleanFile ? await AtomicTextWriter.open(opts.cleanFile) : null;
  const top = new TopRows(opts.top ?? 100);
  const counts = emptyCounts(n);
  let keptRows = 0;
  try {
    await scores?.write(scoresHeader(judge !== null));
    await clean?.write(plan.headerRaw + '\n');
    for await (const b of numericBatches(plan)) {
      const x = toSpace(b.x, b.count);
      const selected = d === d0 ? b.x : null;
      let scoreChunk = '';
      let cleanChunk = '';
      for (let i = 0; i < b.count; i++) {
        const row = b.start + i;
        const d2 = mahalanobisRow(x, i * dims, dims, location, chol, zz);
        const outlier = Math.sqrt(group.combine(zz, d2) / cutoff.value);
        const isolation = forest.scoreRow(x, i * dims);
        const label = b.labels ? classIndex.get(b.labels[i])! : -1;
        const verdict = judge ? judge(selected ?? toSpaceRow(b.x, i, d0, kept), selected ? i * d : 0, row, label) : null;
        const dup = dups.lookup(b.x, i * d0, d0);
        const duplicateOf = dup && dup.first !== row ? dup.first : -1;
        const reasons = rowReasons({
          row,
          outlier,
          isolation,
          isolationThreshold: isoThreshold,
          mislabeled: verdict?.flagged ? { label: classNames![label], probability: 1 - verdict.score, suggested: classNames![verdict.suggested] } : undefined,
          conflictingRoot: dup?.conflicting ? dup.first : -1,
          duplicateOf,
        });
        countReasons(counts, reasons);
        if (reasons.length > 0) top.offer({ row, suspicion: suspicionOf(reasons, outlier, verdict?.score ?? 0), reasons, label: classNames?.[label] });
        else if (clean) {
          cleanChunk += b.records[i].raw + '\n';
          keptRows++;
        }
        if (scores) {
          scoreChunk += scoresLine(row, { outlier, isolation, labelIssue: verdict?.score, suggested: verdict ? classNames![verdict.suggested] : undefined, duplicateOf, reasons }, judge !== null);
        }
      }
      await scores?.write(scoreChunk);
      await clean?.write(cleanChunk);
    }
    await scores?.commit();
    await clean?.commit();
  } catch (e) {
    await scores?.abort();
    await clean?.abort();
    throw e;
  }
  progress.done();
  return { rows: n, features: d, counts, suspicious: top.result(), methods, warnings, streamed: true, classNames, kept: clean ? keptRows : undefined };
}

function toSpaceRow(x: Float64Array, i: number, d0: number, kept: number[]): Float64Array {
  return Float64Array.from(kept, (c) => x[i * d0 + c]);
}

