import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { silentProgress, type Dataset, type Finding, type Model, type Report } from '../../src/core/index.js';
import {
  SEVERITY_RULES,
  applySeverity,
  effectiveRules,
  parseAuditConfig,
  planAudit,
  summarize,
  toJunit,
  toSarif,
  type AuditContext,
  type AuditSection,
} from '../../src/audit/index.js';
import { fitAttack } from '../../src/audit/sections/evasion-api.js';

const finding = (id: string, value: number | string, extra: Partial<Finding> = {}): Finding => ({
  area: id.split('.')[0],
  id,
  title: id,
  severity: 'info',
  metric: id,
  value,
  evidence: ['measured'],
  ...extra,
});

test('the severity table grades by id: the worst crossed threshold wins, remedies come with a failure', () => {
  const graded = applySeverity(
    [
      finding('evasion.pgd-robust-accuracy', 0.07),
      finding('evasion.pgd-robust-accuracy', 0.25),
      finding('evasion.pgd-robust-accuracy', 0.6),
      finding('privacy.membership-tpr-low-fpr', 0.051),
      finding('privacy.membership-tpr-low-fpr', 0.05),
      finding('provenance.ledger', 5, { passed: false }),
      finding('poisoning.backdoor-planted', 1, { severity: 'high' }),
    ],
    SEVERITY_RULES,
  );
  // The examples: robust accuracy at ε = 0.1 below 10% is high; membership TPR at 0.1% FPR above 5% is high.
  assert.deepEqual(
    graded.map((f) => [f.severity, f.passed]),
    [['high', false], ['medium', false], ['info', true], ['high', false], ['medium', false], ['high', false], ['info', undefined]],
  );
  assert.equal(graded[0].threshold, 0.5, 'the threshold shown is where failing starts');
  for (const f of graded.filter((g) => g.passed === false)) {
    assert.ok(f.remedies && f.remedies.length > 0, `${f.id} has remedies`);
    assert.ok(f.remedies.every((r) => /^bulwark /.test(r.command)), 'every remedy is a Bulwark command');
  }
  assert.equal(graded[2].remedies, undefined, 'a passed check has no remedy');
});

test('the config overrides a rule; a turned-off rule still reports its value but never fails', () => {
  const rules = effectiveRules(
    parseAuditConfig({
      rules: {
        'evasion.pgd-robust-accuracy': { thresholds: { high: 0.05 } },
        'provenance.model-fingerprint': { enabled: false },
        'provenance.ledger': { severity: 'critical' },
      },
    }),
  );
  const [pgd, fp, ledger] = applySeverity(
    [finding('evasion.pgd-robust-accuracy', 0.07), finding('provenance.model-fingerprint', 0, { passed: false }), finding('provenance.ledger', 1, { passed: false })],
    rules,
  );
  assert.equal(pgd.severity, 'info', 'only the high grade remains, at 5%');
  assert.equal(pgd.passed, true);
  assert.equal(fp.severity, 'info');
  assert.equal(fp.passed, undefined);
  assert.match(fp.evidence.at(-1)!, /turned off/);
  assert.equal(ledger.severity, 'critical');
});

test('an invalid config is refused with the JSON pointer of each mistake and why', () => {
  const bad = (raw: unknown) => {
    try {
      parseAuditConfig(raw, 'bulwark.config.json');
    } catch (e) {
      return (e as Error).message;
    }
    assert.fail('accepted');
  };
  assert.match(bad({ rules: { 'evasion.pgd-robust-acc': {} } }), /\/rules\/evasion\.pgd-robust-acc: no such rule; the rules are .*evasion\.pgd-robust-accuracy/);
  assert.match(bad({ budjet: 3 }), /\/budjet: unknown key \(allowed: threats, budget/);
  assert.match(bad({ rules: { 'privacy.membership-auc': { thresholds: { high: 'x' } } } }), /\/rules\/privacy\.membership-auc\/thresholds\/high: must be number/);
  assert.match(bad({ rules: { 'privacy.membership-auc': { thresholds: { medium: 0.8, high: 0.7 } } } }), /\/rules\/privacy\.membership-auc\/thresholds\/high: 0\.7 must be at least the 'medium' threshold 0\.8/);
  assert.match(bad({ threats: ['evasion', 'theft'] }), /\/threats\/1: must be equal to one of the allowed values \(evasion, poisoning, privacy, extraction, provenance\)/);
  assert.match(bad({ budget: 0 }), /\/budget: must be >= 1/);
  assert.match(bad({ rules: { 'provenance.ledger': { thresholds: { high: 1 } } } }), /\/rules\/provenance\.ledger\/thresholds: .*yes\/no check; give "severity"/);
});

// A predict-only model: what the plan sees for an .onnx file or a URL.
const remote: Model = { info: { name: 'http://host/v2/models/m', engine: 'http', inputShape: [4], numClasses: 3 }, predict: async (x) => ({ data: new Float32Array(x.shape[0] * 3).fill(1 / 3), shape: [x.shape[0], 3] }) };
const data: Dataset = { name: 'd', x: { data: new Float32Array(40), shape: [10, 4] }, y: new Int32Array(10), classNames: ['a', 'b', 'c'] };
const ctx: AuditContext = { model: remote, modelFiles: [], test: data, seed: 1, progress: silentProgress };
const section = (id: string, threat: string, needs: AuditSection['needs']): AuditSection => ({ id, title: id, threat, needs, run: async () => [] });

test('the plan skips with reasons and splits the query budget so that the total fits', () => {
  const sections = [
    section('model', 'model', { queries: () => ({ min: 200, want: 2000 }) }),
    section('evasion', 'evasion', { capabilities: ['lossGradient'] }),
    section('evasion-api', 'evasion', { queries: () => ({ min: 1500, want: 70000 }) }),
    section('privacy', 'privacy', { trainingData: true, queries: () => ({ min: 300, want: 4000 }) }),
    section('poisoning', 'poisoning', { trainingData: true }),
    section('retrain', 'poisoning', { trainable: true }),
    section('extraction', 'extraction', { queries: () => ({ min: 1000, want: 20000 }) }),
  ];
  const plan = planAudit(sections, ctx, { threats: ['evasion', 'privacy', 'poisoning', 'extraction', 'provenance'], budget: 3000 });
  const by = new Map(plan.sections.map((p) => [p.section.id, p]));
  assert.match(by.get('evasion')!.skip!, /needs lossGradient, which http:\/\/host\/v2\/models\/m \(http\) does not offer \(it offers predict\)/);
  assert.match(by.get('privacy')!.skip!, /--train-data FILE/);
  assert.match(by.get('retrain')!.skip!, /cannot be trained/);
  // 200 + 1500 + 1000 = 2700 fits in 3000; the 300 left go in proportion to what each wants beyond its minimum.
  const runs = plan.sections.filter((p) => p.skip === null && p.queries! > 0);
  assert.deepEqual(runs.map((p) => p.section.id), ['model', 'evasion-api', 'extraction']);
  const total = runs.reduce((s, p) => s + p.queries!, 0);
  assert.ok(total <= 3000 && total >= 2997, `allocated ${total}`);
  for (const p of runs) assert.ok(p.queries! >= p.wanted!.min && p.queries! <= p.wanted!.want);
  assert.equal(by.get('model')!.queries, 200 + Math.floor((300 * 1800) / (1800 + 68500 + 19000)));
  assert.equal(by.get('evasion-api')!.queries, 1500 + Math.floor((300 * 68500) / (1800 + 68500 + 19000)));

  // A budget too small for the last section's minimum drops it, saying so.
  const tight = planAudit(sections, ctx, { threats: ['evasion', 'extraction'], budget: 2000 });
  const ex = tight.sections.find((p) => p.section.id === 'extraction')!;
  assert.match(ex.skip!, /needs at least 1000 queries, and the budget of 2000 leaves 300.*raise --budget/);
  assert.match(tight.sections.find((p) => p.section.id === 'privacy')!.skip!, /'privacy' is not among the threats asked for/);
  assert.deepEqual(tight.uncovered, []);

  const missing = planAudit([sections[0]], ctx, { threats: ['extraction'], budget: null, missing: { extraction: 'not built' } });
  assert.deepEqual(missing.uncovered, [{ threat: 'extraction', reason: 'not built' }]);
  assert.equal(missing.sections[0].queries, 2000, 'without a budget a section gets what it wants');
});

test('black-box attacks are sized to their allowance', () => {
  const want = { samples: 50, perSample: 1000 };
  const least = { samples: 10, perSample: 100 };
  // Depth per sample first, for the fewest samples that still give a rate; then more samples.
  assert.deepEqual(fitAttack(1660, want, least), { samples: 10, perSample: 166 });
  assert.deepEqual(fitAttack(20000, want, least), { samples: 20, perSample: 1000 });
  assert.deepEqual(fitAttack(60000, want, least), { samples: 50, perSample: 1000 });
  assert.deepEqual(fitAttack(99, want, least), { samples: 0, perSample: 100 });
});

function sampleReport(): Report {
  const sections = [
    {
      id: 'evasion',
      title: 'Evasion',
      threat: 'evasion',
      status: 'ran' as const,
      seconds: 1.5,
      findings: applySeverity([finding('evasion.pgd-robust-accuracy', 0.07), finding('evasion.certified-accuracy', 0.75), finding('model.test-accuracy', 0.96)], SEVERITY_RULES),
    },
    { id: 'privacy', title: 'Privacy <&>', threat: 'privacy', status: 'skipped' as const, reason: 'needs "--train-data"', seconds: 0, findings: [] },
    { id: 'poisoning', title: 'Poisoning', threat: 'poisoning', status: 'failed' as const, reason: 'out of memory', seconds: 0.2, findings: [] },
  ];
  return {
    tool: 'bulwark',
    version: '0.1.0',
    createdAt: '2026-01-01T00:00:00.000Z',
    seed: 42,
    target: { model: 'models/mlp', engine: 'tfjs', dataset: 'digits' },
    summary: summarize(sections, ['evasion', 'privacy', 'poisoning'], 'high'),
    sections,
  };
}

/**
 * The parts of the SARIF 2.1.0 schema (sarif-schema-2.1.0.json, OASIS) that Bulwark's log
 * uses: each object's required properties and the enumerations it takes values from.
 */
const message = { type: 'object', anyOf: [{ required: ['text'] }, { required: ['id'] }], properties: { text: { type: 'string' } } };
const level = { enum: ['none', 'note', 'warning', 'error'] };
const SARIF_SUBSET = {
  type: 'object',
  required: ['version', 'runs'],
  properties: {
    $schema: { type: 'string', format: 'uri' },
    version: { enum: ['2.1.0'] },
    runs: {
      type: 'array',
      items: {
        type: 'object',
        required: ['tool'],
        properties: {
          tool: {
            type: 'object',
            required: ['driver'],
            properties: {
              driver: {
                type: 'object',
                required: ['name'],
                properties: {
                  name: { type: 'string' },
                  version: { type: 'string' },
                  rules: {
                    type: 'array',
                    uniqueItems: true,
                    items: {
                      type: 'object',
                      required: ['id'],
                      properties: {
                        id: { type: 'string' },
                        shortDescription: message,
                        fullDescription: message,
                        help: message,
                        defaultConfiguration: { type: 'object', properties: { level } },
                      },
                    },
                  },
                },
              },
            },
          },
          invocations: {
            type: 'array',
            items: {
              type: 'object',
              required: ['executionSuccessful'],
              properties: {
                executionSuccessful: { type: 'boolean' },
                toolExecutionNotifications: { type: 'array', items: { type: 'object', required: ['message'], properties: { message, level } } },
              },
            },
          },
          results: {
            type: 'array',
            items: {
              type: 'object',
              required: ['message'],
              properties: {
                message,
                ruleId: { type: 'string' },
                ruleIndex: { type: 'integer', minimum: -1 },
                level,
                locations: {
                  type: 'array',
                  items: {
                    type: 'object',
                    properties: {
                      physicalLocation: {
                        type: 'object',
                        anyOf: [{ required: ['address'] }, { required: ['artifactLocation'] }],
                        properties: { artifactLocation: { type: 'object', properties: { uri: { type: 'string' } } } },
                      },
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};

test('SARIF 2.1.0: rules from the table, one result per failed finding, level from severity', () => {
  const report = sampleReport();
  const log = toSarif(report, SEVERITY_RULES, 'models/mlp');
  const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });
  const valid = ajv.validate(SARIF_SUBSET, log);
  assert.ok(valid, JSON.stringify(ajv.errors));
  const run = log.runs[0];
  assert.deepEqual(
    run.tool.driver.rules.map((r) => r.id),
    SEVERITY_RULES.map((r) => r.id),
  );
  assert.equal(run.results.length, 1, 'one failed finding');
  const [r] = run.results;
  assert.equal(r.ruleId, 'evasion.pgd-robust-accuracy');
  assert.equal(run.tool.driver.rules[r.ruleIndex].id, r.ruleId);
  assert.equal(r.level, 'error', 'high is an error');
  assert.equal(r.locations[0].physicalLocation.artifactLocation.uri, 'models/mlp');
  assert.match(r.message.text, /7\.0% \(threshold 0\.5\), severity high\. Fix: bulwark train/);
  assert.equal(run.invocations[0].executionSuccessful, false, 'a section failed');
  assert.ok(run.invocations[0].toolExecutionNotifications.some((n) => /poisoning.*out of memory/.test(n.message.text)));
});

test('JUnit XML: one test case per check, a failure when it failed, skipped and broken sections said so', () => {
  const xml = toJunit(sampleReport());
  assert.match(xml, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites name="bulwark audit" tests="5" failures="1" errors="1" skipped="1" time="1\.700">/);
  const cases = xml.match(/<testcase [^>]*>/g)!;
  assert.equal(cases.length, 5);
  assert.match(xml, /<testcase classname="bulwark\.evasion" name="evasion\.pgd-robust-accuracy: evasion\.pgd-robust-accuracy" time="0">\n\s+<failure message="evasion\.pgd-robust-accuracy 7\.0% crosses 0\.5 \(severity high\)" type="high">/);
  assert.match(xml, /<testsuite name="Privacy &lt;&amp;&gt;" id="privacy"[^>]*>\n\s+<testcase [^>]*>\n\s+<skipped message="needs &quot;--train-data&quot;"\/>/);
  assert.match(xml, /<error message="out of memory" type="section-failed"\/>/);
  // Well-formed enough for a strict parser: every element opened is closed.
  const opened = (xml.match(/<testcase /g) ?? []).length;
  assert.equal((xml.match(/<\/testcase>/g) ?? []).length, opened);
});

test('the summary: one row per threat, verdict from the gate', () => {
  const s = sampleReport().summary!;
  assert.equal(s.verdict, 'fail');
  assert.deepEqual(
    s.threats.map((t) => [t.id, t.status, t.severity]),
    [['model', 'skipped', 'info'], ['evasion', 'ran', 'high'], ['poisoning', 'failed', 'info'], ['privacy', 'skipped', 'info']],
  );
  assert.match(s.threats[1].keyFigure, /7\.0%/);
  assert.equal(summarize(sampleReport().sections, ['evasion'], 'critical').verdict, 'warn');
});
