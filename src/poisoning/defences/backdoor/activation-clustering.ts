import type { Dataset, Model } from '../../../core/index.js';
import { principalAxes, project } from '../pca.js';
import { robustWhiten } from '../whiten.js';
import { judgeSplit, silhouette, splitStrength, twoMeans, type ClassVerdict } from './clusters.js';
import { centredRows, detectorInputs, membersOf, persistence, type RowDetection, type RowDetectorOptions } from './common.js';

/**
 * Activation clustering (Chen et al. 2018): each class's representations are reduced to 10
 * dimensions (principal components) and split by 2-means; a poisoned class splits into its
 * clean rows and the poison. Chen et al. flag the smaller cluster, judged by its relative
 * size and the silhouette score (both reported); since the smaller cluster is a coin toss
 * when poison is half the class, the cluster flagged is the one whose rows keep their class
 * under superimposition (see judgeSplit), as in spectral signatures here. With `whiten:
 * 'robust'` (the default) the reduced rows are also clustered after whitening by a FastMCD
 * fit, which separates a poison that is a tenth of its class (1% of the data) where Chen et
 * al.'s clustering alone splits the class in half; the split that persists most clearly wins.
 */
export async function activationClustering(model: Model, ds: Dataset, opts: RowDetectorOptions & { dims?: number; whiten?: 'robust' | 'none' } = {}): Promise<RowDetection> {
  const { layer, reps, progress } = await detectorInputs(model, ds, opts, 'activation clustering');
  const n = ds.y.length;
  const dims = opts.dims ?? 10;
  const score = new Float64Array(n);
  const flagged = new Uint8Array(n);
  const classes: ClassVerdict[] = [];
  const minGap = opts.minGap ?? 0.4;
  progress.start('activation clustering', ds.classNames.length);
  for (let c = 0; c < ds.classNames.length; c++) {
    const members = membersOf(ds.y, c);
    const m = members.length;
    progress.advance(1);
    if (m < 4) continue;
    const { z, width } = centredRows(reps, members);
    const k = Math.min(dims, width, m - 1);
    const pca = principalAxes(z, width, k);
    const reduced = Float64Array.from(project(z, width, pca.mean, pca.axes, k));
    const kept = await persistence(model, ds, members, { seed: (opts.seed ?? 42) + c, trials: 8 });
    // Chen et al.'s clustering of the reduced representations, and with 'robust' also of the
    // same rows whitened by a FastMCD fit (a tenth of a class is lost in the class's own
    // spread until the clean rows are made isotropic); the split that persists most clearly wins.
    const spaces: Float64Array[] = [reduced];
    if ((opts.whiten ?? 'robust') === 'robust' && m > 2 * k) spaces.push(robustWhiten(reduced, m, k, (opts.seed ?? 42) + c).w);
    let best: { low: Float64Array; labels: Uint8Array; verdict: ReturnType<typeof judgeSplit> } | null = null;
    for (const space of spaces) {
      const split = twoMeans(space, m, k, (opts.seed ?? 42) + c).labels;
      const v = judgeSplit(split, kept, minGap);
      if (!best || splitStrength(v) > splitStrength(best.verdict)) best = { low: space, labels: split, verdict: v };
    }
    const { low, labels, verdict } = best!;
    const [suspectP, otherP] = verdict.persistence;
    const centres = [new Float64Array(k), new Float64Array(k)];
    const count = [0, 0];
    for (let i = 0; i < m; i++) {
      count[labels[i]]++;
      for (let t = 0; t < k; t++) centres[labels[i]][t] += low[i * k + t];
    }
    for (let g = 0; g < 2; g++) for (let t = 0; t < k; t++) centres[g][t] /= Math.max(1, count[g]);
    for (let i = 0; i < m; i++) {
      let toSuspect = 0;
      let toOther = 0;
      for (let t = 0; t < k; t++) {
        toSuspect += (low[i * k + t] - centres[verdict.suspect][t]) ** 2;
        toOther += (low[i * k + t] - centres[1 - verdict.suspect][t]) ** 2;
      }
      score[members[i]] = kept[i] - otherP + 0.1 * Math.tanh(Math.sqrt(toOther) - Math.sqrt(toSuspect));
      if (verdict.infected && (labels[i] === verdict.suspect || kept[i] >= suspectP)) flagged[members[i]] = 1;
    }
    classes.push({
      classIndex: c,
      className: ds.classNames[c],
      rows: m,
      suspectRows: Math.round(verdict.share * m),
      share: verdict.share,
      suspectPersistence: verdict.persistence[0],
      otherPersistence: verdict.persistence[1],
      silhouette: silhouette(low, m, k, labels, 800, opts.seed ?? 42),
      infected: verdict.infected,
    });
  }
  progress.done();
  return { method: 'activation clustering', layer, score, flagged, classes, infectedClasses: classes.filter((k) => k.infected).map((k) => k.classIndex) };
}
