import type { Report } from '../../src/core/index.js';

/**
 * A report with every part the HTML can show: a summary, every chart kind, a skipped and a
 * failed section, remedies with commands, and hostile strings. Shared by the render and
 * browser tests.
 */

const K = 10;
// Distinct values (1000 + 10·row + col) so each cell's number can be found in the markup.
export const confusion = Array.from({ length: K }, (_, r) => Array.from({ length: K }, (_, c) => 1000 + r * 10 + c));
const digit = Array.from({ length: 28 * 28 }, (_, i) => (i % 28) / 27);

export const HOSTILE_TITLE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">';

export function fullReport(): Report {
  return {
    tool: 'bulwark',
    version: '0.1.0',
    createdAt: '2024-05-01T12:34:56.000Z',
    seed: 42,
    target: { model: 'mnist-cnn.onnx', engine: 'onnx', dataset: 'mnist (test, 1000)' },
    summary: {
      verdict: 'fail',
      failOn: 'high',
      threats: [
        { id: 'model', title: 'Model quality', status: 'ran', severity: 'info', keyFigure: 'test accuracy 98.77%' },
        { id: 'evasion', title: 'Evasion', status: 'ran', severity: 'critical', keyFigure: 'robust accuracy 18.77% at ε = 0.1' },
        { id: 'privacy', title: 'Privacy', status: 'skipped', severity: 'info', keyFigure: 'not run' },
        { id: 'poisoning', title: 'Poisoning', status: 'failed', severity: 'medium', keyFigure: 'did not finish' },
      ],
    },
    run: { quick: true, threats: ['evasion', 'privacy', 'poisoning'], budget: 5000, queriesUsed: 1234, access: 'predict-only', trainable: false, trainingData: false },
    sections: [
      {
        id: 'model',
        title: 'Model quality',
        status: 'ran',
        about: { tested: 'How often the model is right on held-out data, per class.', how: 'Predictions on 1000 test samples against their labels.' },
        seconds: 1.234,
        findings: [
          {
            area: 'model',
            id: 'model.accuracy',
            title: 'Clean test accuracy',
            severity: 'info',
            metric: 'test accuracy',
            value: 0.98765,
            threshold: 0.9,
            passed: true,
            evidence: ['9877 of 10000 correct', 'evaluated with batch size 256'],
            chart: { kind: 'bar', title: 'Per-class accuracy', labels: ['0', '1', '2', '3'], values: [0.99, 0.97, 0.95, 0.9], unit: 'accuracy', max: 1 },
          },
          {
            area: 'model',
            title: 'Confusion matrix',
            severity: 'low',
            metric: 'largest off-diagonal count',
            value: 1098,
            evidence: ['rows are true classes & columns predictions'],
            chart: {
              kind: 'heatmap',
              title: 'Confusion matrix',
              rowLabels: confusion.map((_, i) => String(i)),
              colLabels: confusion.map((_, i) => String(i)),
              values: confusion,
              rowAxis: 'true class',
              colAxis: 'predicted class',
            },
          },
        ],
      },
      {
        id: 'evasion',
        title: 'Evasion',
        threat: 'evasion',
        status: 'ran',
        queries: { allowed: 500, used: 312 },
        about: { tested: 'Whether small input changes flip the prediction.', how: 'PGD (L∞, 40 steps) at several ε on 200 test samples.' },
        seconds: 12.5,
        findings: [
          {
            area: 'evasion',
            id: 'evasion.pgd-robust-accuracy',
            title: HOSTILE_TITLE,
            severity: 'critical',
            metric: 'attack success rate',
            value: 0.8123,
            threshold: 0.2,
            passed: false,
            evidence: ['PGD L∞ ε=0.1, 40 steps <b>bold</b>'],
            chart: {
              kind: 'line',
              title: 'Robust accuracy vs ε',
              xLabel: 'ε',
              yLabel: 'accuracy',
              series: [
                { name: 'undefended', points: [[0, 0.98], [0.05, 0.6], [0.1, 0.19], [0.2, 0.01]] },
                { name: 'adv-trained', points: [[0, 0.96], [0.05, 0.9], [0.1, 0.72], [0.2, 0.3]] },
              ],
            },
            remedies: [
              {
                defence: 'Adversarial training',
                command: 'bulwark train --model mlp --adversarial pgd --eps 0.1 --out models/mlp-adv',
                why: 'Training on attacked inputs raises accuracy under attack the most.',
              },
              { defence: 'Feature-squeezing detector', command: "bulwark defend squeeze --model 'models/<your model>' --fpr 0.05" },
            ],
          },
          {
            area: 'evasion',
            title: 'Adversarial examples',
            severity: 'high',
            metric: 'mean L2 perturbation',
            value: Number.NaN,
            evidence: [],
            chart: {
              kind: 'images',
              title: 'Clean and adversarial',
              width: 28,
              height: 14,
              images: [
                { caption: 'clean: 7', pixels: digit.slice(0, 28 * 14) },
                { caption: 'adv: 3 "x"', pixels: digit.slice(28 * 14) },
              ],
            },
          },
        ],
      },
      {
        id: 'privacy',
        title: 'Privacy',
        status: 'skipped',
        reason: 'membership inference needs the training data; give --train-data',
        about: { tested: 'Whether the model gives away which samples it was trained on.', how: 'Loss-threshold attack on members and non-members.' },
        seconds: 0,
        findings: [],
      },
      {
        id: 'poisoning',
        title: 'Poisoning',
        status: 'failed',
        reason: 'E_MODEL_CAPABILITY: the model cannot be retrained (fit is missing)',
        seconds: 0.5,
        findings: [],
      },
    ],
  };
}

/** Charts in fullReport drawn as SVG (bar, line, heatmap) and images in its image strips. */
export const FULL_REPORT_SVG_CHARTS = 3;
export const FULL_REPORT_IMAGES = 2;
