/**
 * What a report is made of. Each area's audit section returns findings; the report
 * renders them as JSON, HTML and a terminal table without knowing which area made them.
 */
export type Severity = 'info' | 'low' | 'medium' | 'high' | 'critical';

export type Chart =
  | {
      kind: 'bar';
      title: string;
      labels: string[];
      values: number[];
      /** Axis label for the values. */
      unit?: string;
      max?: number;
    }
  | {
      kind: 'line';
      title: string;
      xLabel: string;
      yLabel: string;
      series: { name: string; points: [number, number][] }[];
    }
  | {
      kind: 'heatmap';
      title: string;
      rowLabels: string[];
      colLabels: string[];
      /** values[row][col] */
      values: number[][];
      rowAxis?: string;
      colAxis?: string;
    }
  | {
      kind: 'images';
      title: string;
      /** Each image is grey values in [0, 1], row-major, width × height. */
      width: number;
      height: number;
      images: { caption: string; pixels: number[] }[];
    };

/** What to do about a finding: which Bulwark defence, and the command that applies it. */
export interface Remedy {
  defence: string;
  command: string;
  /** One sentence on why it helps. */
  why?: string;
}

export interface Finding {
  /** The area that produced it: 'model', 'provenance', 'evasion', … */
  area: string;
  /** Stable id of the check (and of the severity rule that graded it), e.g. 'evasion.pgd-robust-accuracy'. */
  id?: string;
  title: string;
  severity: Severity;
  /** What was measured, e.g. 'test accuracy'. */
  metric: string;
  value: number | string;
  /** The value beyond which this finding counts against the model, where there is one. */
  threshold?: number;
  /** true when the value is on the safe side of the threshold. */
  passed?: boolean;
  /** Plain-language lines that back the value up. */
  evidence: string[];
  chart?: Chart;
  /** What to do about it, when it failed. */
  remedies?: Remedy[];
}

export const severityOrder: Record<Severity, number> = { info: 0, low: 1, medium: 2, high: 3, critical: 4 };

/** One titled group of findings in a report, produced by one registered section. */
export interface ReportSection {
  id: string;
  title: string;
  /** 'skipped': the target or the data did not allow it (reason says why); 'failed': it broke (reason says how). */
  status?: 'ran' | 'skipped' | 'failed';
  reason?: string;
  /** What was tested and how, in a sentence each, for the report's reader. */
  about?: { tested: string; how: string };
  /** The threat it covers: 'model', 'provenance', 'evasion', 'poisoning', 'privacy', 'extraction'. */
  threat?: string;
  /** Predictions it was allowed to ask of a predict-only target, and how many it asked. */
  queries?: { allowed: number | null; used: number };
  findings: Finding[];
  seconds: number;
}

/** How the audit was run: what was asked for, and what it cost the target. */
export interface ReportRun {
  quick: boolean;
  threats: string[];
  /** --budget: predictions the whole audit may ask of a predict-only target; null: no limit. */
  budget: number | null;
  /** Predictions asked of a predict-only target, all sections together (0 for a white-box target). */
  queriesUsed: number;
  /** What the target offers: 'white-box' (gradients), 'predict-only', plus whether it trains and whether training data were given. */
  access: 'white-box' | 'predict-only';
  trainable: boolean;
  trainingData: boolean;
  /** The config file the run read, if any. */
  config?: string;
}

/** The report's first screen: one row per threat. */
export interface ReportSummary {
  verdict: 'pass' | 'warn' | 'fail';
  /** The severity at or above which a failed finding fails the run (--fail-on), if set. */
  failOn?: Severity;
  threats: { id: string; title: string; status: 'ran' | 'skipped' | 'failed'; severity: Severity; keyFigure: string }[];
}

export interface Report {
  tool: 'bulwark';
  version: string;
  createdAt: string;
  seed: number;
  target: { model: string; engine: string; dataset: string };
  summary?: ReportSummary;
  run?: ReportRun;
  sections: ReportSection[];
}
