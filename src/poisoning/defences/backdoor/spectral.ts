import type { Dataset, Model } from '../../../core/index.js';
import { principalAxes, project, topSingularVector } from '../pca.js';
import { leadingProjection, robustWhiten } from '../whiten.js';
import { judgeSplit, splitStrength, twoMeans, type ClassVerdict } from './clusters.js';
import { centredRows, detectorInputs, membersOf, persistence, type RowDetection, type RowDetectorOptions } from './common.js';

export interface SpectralOptions extends RowDetectorOptions {
  /**
   * 'robust' (default): besides Tran et al.'s top singular vector of the centred
   * representations, each class's representations are reduced to `dims` principal components
   * and whitened by a FastMCD fit, and their top singular vector is tried too; the split that
   * persists most clearly is used. 'none': Tran et al.'s direction only.
   */
  whiten?: 'robust' | 'none';
  /** Principal components kept before robust whitening (default 10). */
  dims?: number;
}

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
 *
 * When poison is a small share of its class (1% of a dataset: a tenth of the target class),
 * the top singular vector of the raw representations follows the class's own variation and
 * misses it; whitening by a robust covariance first (SPECTRE, Hayase et al. 2021) makes the
 * clean rows isotropic so that the poison's shared offset is what the top direction finds.
 */
export async function spectralSignatures(model: Model, ds: Dataset, opts: SpectralOptions = {}): Promise<RowDetection> {
  const { layer, reps, progress } = await detectorInputs(model, ds, opts, 'spectral signatures');
  const dims = opts.dims ?? 10;
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
    const kept = await persistence(model, ds, members, { seed: (opts.seed ?? 42) + c, trials: 8 });
    // Tran et al.'s direction, and with 'robust' also the robustly whitened one; the split
    // whose suspect end persists most clearly is kept (each alone misses a regime: the plain
    // direction a tenth of a class, the whitened one half of it).
    const candidates = [signatureDirection(z, m, width, 'none', dims, (opts.seed ?? 42) + c)];
    if ((opts.whiten ?? 'robust') === 'robust') candidates.push(signatureDirection(z, m, width, 'robust', dims, (opts.seed ?? 42) + c));
    let best: { proj: Float64Array; labels: Uint8Array; verdict: ReturnType<typeof judgeSplit> } | null = null;
    for (const cand of candidates) {
      const split = twoMeans(cand, m, 1, (opts.seed ?? 42) + c).labels;
      const v = judgeSplit(split, kept, minGap);
      if (!best || splitStrength(v) > splitStrength(best.verdict)) best = { proj: cand, labels: split, verdict: v };
    }
    const { proj, labels, verdict } = best!;
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

/** Each member's signed position along the class's spectral direction. */
function signatureDirection(z: Float64Array, m: number, width: number, whiten: 'robust' | 'none', dims: number, seed: number): Float64Array {
  const k = Math.min(dims, width, m - 2);
  if (whiten === 'none' || k < 2) {
    const v = topSingularVector(z, m, width, 100, seed);
    const proj = new Float64Array(m);
    for (let i = 0; i < m; i++) {
      let s = 0;
      for (let j = 0; j < width; j++) s += z[i * width + j] * v[j];
      proj[i] = s;
    }
    return proj;
  }
  const pca = principalAxes(z, width, k);
  const low = project(z, width, pca.mean, pca.axes, k);
  const { w } = robustWhiten(low, m, k, seed);
  return leadingProjection(w, m, k, seed).projection;
}
