import { severityOrder, type Finding, type Remedy, type Severity } from '../core/index.js';

/** The severities a rule can give a failed check (info is "passed"). */
export type Grade = Exclude<Severity, 'info'>;
export const GRADES: readonly Grade[] = ['low', 'medium', 'high', 'critical'];

/**
 * One row of the severity table. A threshold rule grades a numeric value: with 'below' the
 * check fails when the value is under a threshold (robust accuracy), with 'above' when it is
 * over one (attack success); the worst severity whose threshold is crossed wins. A check rule
 * grades a yes/no check the section decides (a ledger whose chain verifies).
 */
export type SeverityRule =
  | {
      id: string;
      kind: 'threshold';
      /** What the value measures, as the report words it. */
      metric: string;
      direction: 'below' | 'above';
      thresholds: Partial<Record<Grade, number>>;
      /** Why the thresholds sit where they do, one sentence. */
      rationale: string;
      remedies: Remedy[];
      /** Turned off in the config: reported, never graded above info. */
      disabled?: boolean;
    }
  | {
      id: string;
      kind: 'check';
      metric: string;
      /** Severity of a failed check. */
      severity: Grade;
      rationale: string;
      remedies: Remedy[];
      disabled?: boolean;
    };

const advTrain: Remedy = {
  defence: 'adversarial training',
  command: 'bulwark train --model mlp --adversarial pgd --eps 0.1 --out models/robust',
  why: 'training on PGD examples made against the current weights is the one defence that raises robust accuracy itself',
};
const smoothing: Remedy = {
  defence: 'randomized smoothing',
  command: 'bulwark certify --model MODEL --sigma 0.25 --n 10000',
  why: 'a smoothed classifier comes with a certified radius inside which no attack can change its answer',
};
const labelOnly: Remedy = {
  defence: 'label-only answers and a query budget at the gateway',
  command: 'bulwark serve --model MODEL --policy policy.yaml  # tiers: { default: { output: { kind: label }, budget: { samplesPerDay: 1000 } } }',
  why: 'score-based attacks and extraction need many answers with scores; labels only and a daily budget starve them',
};
const dp: Remedy = {
  defence: 'DP-SGD',
  command: 'bulwark train --dataset DATA --model mlp --dp-epsilon 3 --out models/private',
  why: 'differentially private training bounds what any membership attack can learn from one example',
};
const dataScan: Remedy = {
  defence: 'training-data scan',
  command: 'bulwark data scan DATA --label COL --clean cleaned.csv',
  why: 'outlier, isolation-forest and label-consistency scores flag poisoned rows before training',
};
const backdoorScan: Remedy = {
  defence: 'backdoor scan of the model',
  command: 'bulwark model scan-backdoor --model MODEL --dataset DATA --label COL',
  why: 'spectral signatures, activation clustering and Neural Cleanse find a planted trigger',
};
const sign: Remedy = {
  defence: 'signed model files',
  command: 'bulwark keys generate --out release && bulwark sign MODEL --key release.key --out model.sig && bulwark verify MODEL --sig model.sig --pub release.pub',
  why: 'a signature ties the audited bytes to the ones that ship',
};
const retrain: Remedy = {
  defence: 'retraining',
  command: 'bulwark train --dataset DATA --label COL --epochs 30 --out models/retrained',
  why: 'every robustness and privacy figure is measured against a model that first has to be accurate',
};

const servingPolicy: Remedy = {
  defence: 'a label-only tier with a daily budget, and PRADA monitoring, at the gateway',
  command:
    'bulwark serve --model MODEL --policy policy.yaml  # policy.yaml: { tiers: { public: { output: { kind: label }, budget: { samplesPerDay: 500 }, rateLimit: { requests: 5, perSeconds: 1 } } }, monitoring: { extraction: [ { detector: prada, respond: [alert, suspend] } ] } }',
  why: 'labels only and a daily budget leave each key less to copy from, and PRADA suspends a key whose queries look synthetic',
};
const smallerBudget: Remedy = {
  defence: 'a smaller daily budget per key, and keys issued per customer',
  command: 'bulwark keys create --name CUSTOMER --scopes infer --tier public  # with tiers: { public: { output: { kind: label }, budget: { samplesPerDay: 100, samplesPerMonth: 2000 } } }',
  why: 'against natural inputs labels alone cost a copier little; what bounds the copy is how many answers one customer can collect',
};
const moreSensitive: Remedy = {
  defence: 'a more sensitive PRADA rule, and the similarity detector beside it',
  command: 'bulwark serve --model MODEL --policy policy.yaml  # monitoring: { extraction: [ { detector: prada, delta: 0.95, respond: [alert, suspend] }, { detector: similarity, threshold: auto, respond: [alert] } ] }',
  why: "PRADA's default threshold was chosen on digits; on other data an extraction client's query distances can stay normal-looking at it",
};

/**
 * The severity table: every graded check of the audit, by the id its findings carry. The
 * defaults follow common practice where there is one: robust accuracy at ε = 0.1 under 10% on
 * [0, 1] inputs means the model has no robustness to speak of; a membership attack that finds
 * 5% of members at 0.1% false positives is 50× better than guessing. Each rule can be
 * overridden in bulwark.config.json under "rules".
 */
export const SEVERITY_RULES: readonly SeverityRule[] = [
  {
    id: 'model.test-accuracy',
    kind: 'threshold',
    metric: 'test accuracy',
    direction: 'below',
    thresholds: { medium: 0.9, high: 0.5 },
    rationale: 'every later figure is measured against a model that is first of all accurate',
    remedies: [retrain],
  },
  {
    id: 'provenance.model-fingerprint',
    kind: 'check',
    metric: 'model files hashed',
    severity: 'low',
    rationale: "a remote model's bytes cannot be tied to the report, only its answers",
    remedies: [sign],
  },
  {
    id: 'provenance.ledger',
    kind: 'check',
    metric: 'ledger hash chain verifies',
    severity: 'high',
    rationale: 'a broken chain means the record of what was audited was altered',
    remedies: [{ defence: 'ledger verification', command: 'bulwark ledger verify --ledger LEDGER', why: 'names the first entry that no longer verifies' }],
  },
  {
    id: 'evasion.pgd-robust-accuracy',
    kind: 'threshold',
    metric: 'robust accuracy under PGD (L∞, ε = 0.1)',
    direction: 'below',
    thresholds: { low: 0.5, medium: 0.3, high: 0.1 },
    rationale: 'under 10% at ε = 0.1 on [0, 1] inputs nearly every input can be turned by changes a person hardly sees',
    remedies: [advTrain, smoothing],
  },
  {
    id: 'evasion.score-robust-accuracy',
    kind: 'threshold',
    metric: 'robust accuracy under the score-based Square attack (L∞, ε = 0.1)',
    direction: 'below',
    thresholds: { low: 0.5, medium: 0.3, high: 0.1 },
    rationale: 'the same scale as PGD, reached through the answers alone, as any API user could',
    remedies: [advTrain, labelOnly],
  },
  {
    id: 'evasion.label-robust-accuracy',
    kind: 'threshold',
    metric: 'robust accuracy under the label-only HopSkipJump attack (L2, ε = 2)',
    direction: 'below',
    thresholds: { low: 0.5, medium: 0.3, high: 0.1 },
    rationale: 'even labels alone suffice to find a small change that turns the answer',
    remedies: [advTrain, smoothing],
  },
  {
    id: 'poisoning.detection-recall',
    kind: 'threshold',
    metric: 'share of planted poisoned rows spectral signatures find',
    direction: 'below',
    thresholds: { low: 0.9, medium: 0.5 },
    rationale: 'a defence that misses the planted rows would miss real ones in this data',
    remedies: [dataScan, backdoorScan],
  },
  {
    id: 'poisoning.asr-after-defence',
    kind: 'threshold',
    metric: 'backdoor attack success rate after filtering and retraining',
    direction: 'above',
    thresholds: { low: 0.02, medium: 0.05, high: 0.2 },
    rationale: 'what gets past the filter is what a real backdoor would keep',
    remedies: [dataScan, backdoorScan],
  },
  {
    id: 'privacy.membership-auc',
    kind: 'threshold',
    metric: 'membership inference ROC AUC (loss threshold)',
    direction: 'above',
    thresholds: { medium: 0.6, high: 0.75 },
    rationale: '0.5 is guessing; above 0.6 the loss alone tells members from non-members noticeably',
    remedies: [dp],
  },
  {
    id: 'privacy.membership-tpr-low-fpr',
    kind: 'threshold',
    metric: 'membership TPR at 0.1% FPR (loss threshold)',
    direction: 'above',
    thresholds: { medium: 0.02, high: 0.05 },
    rationale: 'what matters is confident inference on a few examples: 5% found at 0.1% false positives is 50× guessing',
    remedies: [dp],
  },
  {
    id: 'privacy.dp-accounting',
    kind: 'threshold',
    metric: "DP models whose attack's ε lower bound exceeds the accounted ε",
    direction: 'above',
    thresholds: { high: 0 },
    rationale: 'a measured ε above the accounted one means the accounting or the training is wrong',
    remedies: [dp],
  },
  {
    id: 'extraction.fidelity',
    kind: 'threshold',
    metric: 'agreement of a stolen copy with the model at the query budget',
    direction: 'above',
    thresholds: { low: 0.5, medium: 0.7, high: 0.9 },
    rationale: 'a copy that agrees 90% of the time is the model, for most purposes, bought with queries',
    remedies: [labelOnly],
  },
  {
    id: 'serving.defended-fidelity',
    kind: 'threshold',
    metric: "agreement of a copy stolen through the gateway's label-only, budgeted, monitored tier",
    direction: 'above',
    thresholds: { low: 0.7, medium: 0.8, high: 0.9 },
    rationale: "the same scale as the bare model's extraction: past 90% the gateway's policies leave one key's daily budget enough to copy the model",
    remedies: [smallerBudget, servingPolicy],
  },
  {
    id: 'serving.extraction-detected',
    kind: 'check',
    metric: 'a Jacobian extraction client is flagged by the gateway',
    severity: 'medium',
    rationale: 'an extraction client the monitoring never flags keeps its key until its budget runs out, on every key it holds',
    remedies: [moreSensitive],
  },
];

export function findRule(rules: readonly SeverityRule[], id: string): SeverityRule | undefined {
  return rules.find((r) => r.id === id);
}

/** The severity a threshold rule gives a value, and the threshold of its mildest grade. */
export function gradeValue(rule: Extract<SeverityRule, { kind: 'threshold' }>, value: number): { severity: Severity; threshold: number | undefined } {
  let severity: Severity = 'info';
  let mildest: { grade: Grade; t: number } | undefined;
  for (const g of GRADES) {
    const t = rule.thresholds[g];
    if (t === undefined) continue;
    if (!mildest) mildest = { grade: g, t };
    const crossed = rule.direction === 'below' ? value < t : value > t;
    if (crossed && severityOrder[g] > severityOrder[severity]) severity = g;
  }
  return { severity, threshold: mildest?.t };
}

/**
 * Grades findings by their id against the table. A finding with no rule keeps what its
 * section gave it (informational findings have none); a failed finding gets the rule's
 * remedies unless the section named its own.
 */
export function applySeverity(findings: Finding[], rules: readonly SeverityRule[]): Finding[] {
  return findings.map((f) => {
    const rule = f.id ? findRule(rules, f.id) : undefined;
    // Without a rule, only a check its section failed keeps the section's grade: a figure
    // that is not a check (a demonstration, a chart) is information.
    if (!rule) return f.passed === false ? f : { ...f, severity: 'info' };
    if (rule.disabled) {
      const { remedies: _r, threshold: _t, passed: _p, ...rest } = f;
      return { ...rest, severity: 'info', evidence: [...f.evidence, `rule '${rule.id}' is turned off in the config`] };
    }
    let severity: Severity;
    let threshold = f.threshold;
    let passed: boolean;
    if (rule.kind === 'threshold') {
      if (typeof f.value !== 'number' || !Number.isFinite(f.value)) return { ...f, severity: 'info', passed: undefined };
      const g = gradeValue(rule, f.value);
      severity = g.severity;
      threshold = g.threshold;
      passed = severity === 'info';
    } else {
      passed = f.passed !== false;
      severity = passed ? 'info' : rule.severity;
    }
    const out: Finding = { ...f, severity, passed };
    if (threshold !== undefined) out.threshold = threshold;
    else delete out.threshold;
    if (!passed && !(f.remedies && f.remedies.length)) out.remedies = rule.remedies.map((r) => ({ ...r }));
    if (passed) delete out.remedies;
    return out;
  });
}

/** The table as text, for `bulwark audit --help` and the README. */
export function rulesTable(rules: readonly SeverityRule[] = SEVERITY_RULES): string {
  const lines = rules.map((r) => {
    if (r.kind === 'check') return `  ${r.id.padEnd(32)} ${r.severity} when the check fails (${r.metric})`;
    const op = r.direction === 'below' ? '<' : '>';
    const grades = GRADES.filter((g) => r.thresholds[g] !== undefined).map((g) => `${g} ${op} ${r.thresholds[g]}`);
    return `  ${r.id.padEnd(32)} ${grades.join(', ')}  (${r.metric})`;
  });
  return lines.join('\n');
}
