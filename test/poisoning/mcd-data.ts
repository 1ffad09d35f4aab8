import { Rng } from '../../src/core/index.js';

/**
 * The small fixed dataset the MCD test compares against scikit-learn: 150 rows of a
 * correlated 4-D normal plus 15 outliers, from a seeded generator (so the same rows are
 * made here and, via make-mcd-fixture.ts, fed to scikit-learn).
 */
export function mcdTestData(): { x: Float64Array; n: number; d: number; outliers: number[] } {
  const rng = new Rng(2024);
  const d = 4;
  const clean = 150;
  const bad = 15;
  const n = clean + bad;
  const x = new Float64Array(n * d);
  const outliers: number[] = [];
  for (let i = 0; i < n; i++) {
    const z = Array.from({ length: d }, () => rng.normal());
    // A fixed mixing matrix gives the clean rows correlated columns with different scales.
    const row = [2 * z[0] + 1, z[0] + 0.5 * z[1] - 3, 0.3 * z[2] + 0.2 * z[1], 5 * z[3] + z[2]];
    if (i >= clean) {
      outliers.push(i);
      row[0] += 6;
      row[2] -= 2;
    }
    for (let j = 0; j < d; j++) x[i * d + j] = Math.round(row[j] * 1e6) / 1e6;
  }
  return { x, n, d, outliers };
}
