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

export interface Finding {
  /** The area that produced it: 'model', 'provenance', 'evasion', … */
  area: string;
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
}

export const severityOrder: Record<Severity, number> = { info: 0, low: 1, medium: 2, high: 3, critical: 4 };

/** One titled group of findings in a report, produced by one registered section. */
export interface ReportSection {
  id: string;
  title: string;
  findings: Finding[];
  seconds: number;
}

export interface Report {
  tool: 'bulwark';
  version: string;
  createdAt: string;
  seed: number;
  target: { model: string; engine: string; dataset: string };
  sections: ReportSection[];
}
