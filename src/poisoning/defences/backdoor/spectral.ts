import type { Dataset, Model } from '../../../core/index.js';
import { topSingularVector } from '../pca.js';
import { judgeSplit, twoMeans, type ClassVerdict } from './clusters.js';
import { centredRows, detectorInputs, membersOf, persistence, type RowDetection, type RowDetectorOptions } from './common.js';

/**
 * Spectral signatures (Tran, Li & Madry 2018). Within each class, the representations at a
 * layer are centred and projected on their top singular vector; a backdoor pushes its rows
 * to one end of that direction. Tran et al. remove the 1.5ε rows with the largest squared
 * projections, which works while poison is a small minority of its class but not when it is
 * half of it (a tenth of a dataset poisoned all-to-one), where both ends are equally far.
 * So the signed projections are split in two by 2-means and the end is chosen by behaviour
 * (see judgeSplit: rows carrying a trigger keep their class under superimposition); a class
 * is flagged only when that end clearly persists more, and then its rows are removed along
 * with any row of the class as persistent as they are.
 */
export async function spectralSignatures(model: Model, ds: Dataset, opts: RowDetectorOptions = {}): Promise<RowDetection> {
  const { layer, reps, progress } = await detectorInputs(model, ds, opts, 'spectral signatures');
  const n = ds.y.length;
  const score = new Float64Array(n);
  const flagged = new Uint8Array(n);
  const classes: ClassVerdict[] = [];
  const minGap = opts.minGap ?? 0.4;
  progress.start('spectral signatures', ds.classNames.length);
  for (let c = 0; c < ds.classNames.length; c++) {
    const members = membersOf(ds.y, c);
    const m = members.length;
    progress.advance(1);
    if (m < 4) continue;
    const { z, width } = centredRows(reps, members);
    const v = topSingularVector(z, m, width, 100, (opts.seed ?? 42) + c);
    const proj = new Float64Array(m);
    for (let i = 0; i < m; i++) {
      let s = 0;
      for (let j = 0; j < width; j++) s += z[i * width + j] * v[j];
      proj[i] = s;
    }
    const kept = await persistence(model, ds, members, { seed: (opts.seed ?? 42) + c, trials: 8 });
    const labels = twoMeans(proj, m, 1, (opts.seed ?? 42) + c).labels;
    const verdict = judgeSplit(labels, kept, minGap);
    const [suspectP, otherP] = verdict.persistence;
    // Flagged in an infected class: the suspect end, and any row as persistent as the typical
    // suspect row (poison the split left on the clean side: BadNets needs only a dozen rows).
    // Score: how much more a row persists than the clean end of its class, ties broken by its
    // signed position along the direction, towards the suspect end.
    const centre = [0, 0];
    const count = [0, 0];
    let sq = 0;
    for (let i = 0; i < m; i++) {
      centre[labels[i]] += proj[i];
      count[labels[i]]++;
      sq += proj[i] * proj[i];
    }
    const dir = Math.sign(centre[verdict.suspect] / Math.max(1, count[verdict.suspect]) - centre[1 - verdict.suspect] / Math.max(1, count[1 - verdict.suspect])) || 1;
    const sd = Math.sqrt(sq / m) || 1;
    for (let i = 0; i < m; i++) {
      score[members[i]] = kept[i] - otherP + 0.1 * Math.tanh((dir * proj[i]) / sd);
      if (verdict.infected && (labels[i] === verdict.suspect || kept[i] >= suspectP)) flagged[members[i]] = 1;
    }
    classes.push({ classIndex: c, className: ds.classNames[c], rows: m, suspectRows: Math.round(verdict.share * m), share: verdict.share, suspectPersistence: verdict.persistence[0], otherPersistence: verdict.persistence[1], infected: verdict.infected });
  }
  progress.done();
  return { method: 'spectral signatures', layer, score, flagged, classes, infectedClasses: classes.filter((k) => k.infected).map((k) => k.classIndex) };
}
