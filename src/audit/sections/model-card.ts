import { Rng, argmaxRows, subset, type Finding } from '../../core/index.js';
import type { AuditContext, AuditSection } from '../sections.js';

/** Below this test accuracy a model is flagged: every later figure is measured against it. */
const MIN_ACCURACY = 0.9;

export const modelCardSection: AuditSection = {
  id: 'model',
  title: 'Model card',
  threat: 'model',
  about: {
    tested: 'how accurate the model is on the held-out data, overall and per class: the baseline every later figure is measured against',
    how: 'the model predicts every held-out sample (a seeded subset when a query budget is tight) and the answers are compared with the labels',
  },
  estimate: { full: 1, quick: 1 },
  needs: {
    queries: (ctx) => ({ min: Math.min(500, ctx.test.y.length), want: ctx.test.y.length }),
  },
  async run(ctx: AuditContext): Promise<Finding[]> {
    const { model } = ctx;
    const all = ctx.test;
    const limit = ctx.queries ?? Infinity;
    const test = all.y.length <= limit ? all : subset(all, new Rng(ctx.seed).permutation(all.y.length).subarray(0, limit));
    ctx.progress.start('model card: predicting', 1);
    const probs = await model.predict(test.x);
    ctx.progress.advance(1);
    ctx.progress.done();
    const predicted = argmaxRows(probs);
    const k = Math.max(model.info.numClasses, test.classNames.length);
    const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
    let correct = 0;
    for (let i = 0; i < predicted.length; i++) {
      confusion[test.y[i]][predicted[i]]++;
      if (predicted[i] === test.y[i]) correct++;
    }
    const n = predicted.length;
    const accuracy = correct / n;
    const names = test.classNames.length === k ? [...test.classNames] : Array.from({ length: k }, (_, i) => String(i));
    const perClass = confusion.map((row, c) => {
      const total = row.reduce((a, b) => a + b, 0);
      return total === 0 ? NaN : row[c] / total;
    });
    const worst = perClass
      .map((a, c) => ({ a, c }))
      .filter((e) => Number.isFinite(e.a))
      .sort((x, y) => x.a - y.a)[0];
    return [
      {
        area: 'model',
        id: 'model.test-accuracy',
        title: 'Test accuracy',
        severity: accuracy >= MIN_ACCURACY ? 'info' : 'medium',
        metric: 'test accuracy',
        value: accuracy,
        threshold: MIN_ACCURACY,
        passed: accuracy >= MIN_ACCURACY,
        evidence: [
          `${correct} of ${n} held-out samples of '${test.name}' classified correctly${n < all.y.length ? ` (a seeded subset of ${all.y.length}, to stay within the query budget)` : ''}`,
          `model: ${model.info.name} (${model.info.engine}), input [${model.info.inputShape.join(', ')}], ${model.info.numClasses} classes`,
        ],
      },
      {
        area: 'model',
        id: 'model.per-class-accuracy',
        title: 'Per-class accuracy',
        severity: 'info',
        metric: 'lowest class accuracy',
        value: worst ? worst.a : NaN,
        evidence: worst ? [`weakest class: '${names[worst.c]}' at ${(worst.a * 100).toFixed(2)}%`] : ['no class has test samples'],
        chart: { kind: 'bar', title: 'Accuracy per class', labels: names, values: perClass.map((a) => (Number.isFinite(a) ? a : 0)), unit: 'accuracy', max: 1 },
      },
      {
        area: 'model',
        id: 'model.confusion',
        title: 'Confusion matrix',
        severity: 'info',
        metric: 'misclassified samples',
        value: n - correct,
        evidence: topConfusions(confusion, names),
        chart: {
          kind: 'heatmap',
          title: 'Confusion matrix (rows: true class, columns: predicted)',
          rowLabels: names,
          colLabels: names,
          values: confusion,
          rowAxis: 'true class',
          colAxis: 'predicted class',
        },
      },
    ];
  },
};

function topConfusions(confusion: number[][], names: string[]): string[] {
  const pairs: { t: number; p: number; count: number }[] = [];
  confusion.forEach((row, t) => row.forEach((count, p) => t !== p && count > 0 && pairs.push({ t, p, count })));
  pairs.sort((a, b) => b.count - a.count);
  if (pairs.length === 0) return ['no sample is misclassified'];
  return pairs.slice(0, 3).map((e) => `'${names[e.t]}' taken for '${names[e.p]}' ${e.count} time${e.count === 1 ? '' : 's'}`);
}
