import { AtomicTextWriter, csvField } from '../io.js';
import { csvRecords, type CsvPlan } from './csv-stream.js';
import type { DatasetScan, Reason } from './scan-types.js';

/** The `--scores` file: one line per input row, in input order. */
export function scoresHeader(withLabels: boolean): string {
  return ['row', 'outlier_score', 'isolation_score', ...(withLabels ? ['label_issue_score', 'suggested_label'] : []), 'duplicate_of', 'reasons'].join(',') + '\n';
}

export function scoresLine(
  row: number,
  v: { outlier: number; isolation: number; labelIssue?: number; suggested?: string; duplicateOf: number; reasons: Reason[] | undefined },
  withLabels: boolean,
): string {
  const cells = [String(row), fmt(v.outlier), fmt(v.isolation)];
  if (withLabels) cells.push(v.labelIssue === undefined ? '' : fmt(v.labelIssue), csvField(v.suggested ?? ''));
  cells.push(v.duplicateOf >= 0 ? String(v.duplicateOf) : '', csvField((v.reasons ?? []).map((r) => r.kind).join(';')));
  return cells.join(',') + '\n';
}

function fmt(v: number): string {
  return Number.isFinite(v) ? String(Number(v.toPrecision(6))) : '';
}

export async function writeScores(file: string, scan: DatasetScan, classNames?: readonly string[]): Promise<void> {
  const withLabels = scan.scores.labelIssue !== undefined;
  const w = await AtomicTextWriter.open(file);
  try {
    await w.write(scoresHeader(withLabels));
    let chunk = '';
    for (let i = 0; i < scan.rows; i++) {
      const s = scan.scores.suggested?.[i];
      chunk += scoresLine(
        i,
        {
          outlier: scan.scores.outlier[i],
          isolation: scan.scores.isolation[i],
          labelIssue: scan.scores.labelIssue?.[i],
          suggested: s === undefined ? undefined : (classNames?.[s] ?? String(s)),
          duplicateOf: scan.scores.duplicateOf[i],
          reasons: scan.reasons.get(i),
        },
        withLabels,
      );
      if (chunk.length > 1 << 16) {
        await w.write(chunk);
        chunk = '';
      }
    }
    await w.write(chunk);
    await w.commit();
  } catch (e) {
    await w.abort();
    throw e;
  }
}

/** Copies a CSV without the flagged rows, each kept record byte for byte as it was. */
export async function writeCleanCsv(plan: CsvPlan, file: string, flagged: (row: number) => boolean): Promise<number> {
  const w = await AtomicTextWriter.open(file);
  let kept = 0;
  try {
    let row = -1;
    for await (const batch of csvRecords(plan.path)) {
      let chunk = '';
      for (const r of batch) {
        if (row === -1) chunk += r.raw + '\n';
        else if (!flagged(row)) {
          chunk += r.raw + '\n';
          kept++;
        }
        row++;
      }
      await w.write(chunk);
    }
    await w.commit();
  } catch (e) {
    await w.abort();
    throw e;
  }
  return kept;
}
