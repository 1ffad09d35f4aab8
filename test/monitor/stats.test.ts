import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chiSquareCounts, ks2Samp, ksPValue, psi, shapiroWilk } from '../../src/monitor/index.js';
import { chi2Sf as chiSquareSf, normalQuantile } from '../../src/core/special.js';
import { kolmogorovOneSampleSf } from '../../src/monitor/stats.js';

// Reference values from scipy 1.10.1 (Debian python3-scipy) at /usr/bin/python3, computed once on the
// same deterministic sequences as seq() below, e.g. `scipy.stats.shapiro(u)`, `scipy.stats.ks_2samp(a, b)`.
const PHI = 0.6180339887498949;
function seq(n: number, a = PHI, off = 0): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => ((i + 1) * a + off) % 1);
}

function close(actual: number, expected: number, rel: number, what: string) {
  const tol = rel * Math.max(Math.abs(expected), 1e-300);
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: got ${actual}, scipy says ${expected}`);
}

test('Shapiro–Wilk (Royston AS R94) matches scipy.stats.shapiro for n from 3 to 5000', () => {
  const small: [number[], number, number][] = [
    [[1.0025, 1.5975, 0.4517], 0.9995042085647583, 0.9574671387672424],
    [[-0.7812, 0.0907, -0.9833, 1.1203], 0.9155710339546204, 0.5124102830886841],
    [[3.6804, 0.0156, -0.2409, 1.9797, 1.7138], 0.9266396760940552, 0.5736417174339294],
    [[1.2108, -0.8609, 0.9415, 2.3906, -1.6884, 0.0848], 0.982718825340271, 0.9642469882965088],
    [[-2.8024, -1.5791, -2.6835, 0.5298, -1.5349, 1.5425, 1.3135, 0.6261, -4.0335, -0.0774, 0.903], 0.9146040678024292, 0.2762247622013092],
    [[1.2266, -2.0603, 0.0445, -0.957, -0.6177, 3.1218, -0.6151, 0.935, 2.7688, -0.1672, 0.7766, 1.2209], 0.9641884565353394, 0.8415164947509766],
    [
      [1.4044, 3.7954, 1.7481, 2.243, 0.1449, 0.3026, 0.2388, 1.1482, 1.2233, 0.1272, 0.3839, 1.0679, 0.0687, 0.0982, 0.8714, 1.874, 2.6964, 0.7061, 1.3061, 0.7635],
      0.8911527395248413,
      0.02823829837143421,
    ],
  ];
  // scipy's swilk works in single precision, hence the 1e-5 tolerances.
  for (const [x, w, p] of small) {
    const r = shapiroWilk(x);
    close(r.statistic, w, 1e-5, `W for n=${x.length}`);
    assert.ok(Math.abs(r.pValue - p) < 1e-4, `p for n=${x.length}: got ${r.pValue}, scipy says ${p}`);
  }
  // u: uniform-like, z: normal quantiles of u, e: exponential-like.
  const big: Record<number, { u: [number, number]; z: [number, number]; e: [number, number] }> = {
    50: { u: [0.952642560005188, 0.04384729266166687], z: [0.994859516620636, 0.9987690448760986], e: [0.8717501163482666, 6.3466424762737e-5] },
    100: { u: [0.9539552330970764, 0.0015258247731253505], z: [0.9982905983924866, 0.9999929666519165], e: [0.8522313833236694, 1.4350312937949639e-8] },
    1000: { u: [0.9547687768936157, 5.28971446903045e-17], z: [0.999452531337738, 0.9957732558250427], e: [0.8273453116416931, 1.7234187163634492e-31] },
    5000: { u: [0.9548978209495544, 9.35578690947723e-37], z: [0.999498724937439, 0.21092769503593445], e: [0.8291553258895874, 0] },
  };
  for (const [nStr, ref] of Object.entries(big)) {
    const n = Number(nStr);
    const u = seq(n);
    const z = u.map((v) => normalQuantile(0.001 + 0.998 * v));
    const e = u.map((v) => -Math.log(1 - 0.999 * v));
    for (const [name, data] of [['u', u], ['z', z], ['e', e]] as const) {
      const r = shapiroWilk(data);
      const [w, p] = ref[name];
      close(r.statistic, w, 2e-5, `W of ${name}, n=${n}`);
      if (p > 1e-300) close(r.pValue, p, 0.02, `p of ${name}, n=${n}`);
      else assert.ok(r.pValue < 1e-40, `p of ${name}, n=${n}: scipy's single precision gives 0, got ${r.pValue}`);
    }
  }
  assert.throws(() => shapiroWilk([1, 2]), /between 3 and 5000/);
  assert.deepEqual(shapiroWilk([2, 2, 2, 2]), { statistic: 1, pValue: 1 });
});

test('two-sample KS matches scipy.stats.ks_2samp (exact and asymptotic p-values)', () => {
  const R2 = 0.4142135623730951;
  const cases: { a: Float64Array; b: Float64Array; d: number; p: number; asymp: number }[] = [
    { a: seq(20), b: seq(30, R2).map(Math.sqrt), d: 0.2833333333333333, p: 0.25707602554737674, asymp: 0.2404779562960755 },
    { a: seq(50), b: seq(50, 0.7320508075688772).map((v) => v * 1.05), d: 0.06, p: 0.9999952562961608, asymp: 0.9999324884088667 },
    { a: seq(200), b: seq(500, R2).map((v) => v * 1.3), d: 0.234, p: 2.4860922811402943e-7, asymp: 2.2733209829574955e-7 },
    { a: seq(500), b: seq(8000, R2).map((v) => v * 1.02), d: 0.021625, p: 0.9774460062726601, asymp: 0.9769272885449589 },
    // max(n1, n2) > 10,000: scipy's 'auto' switches to the asymptotic distribution.
    { a: seq(300), b: seq(12000, R2).map((v) => v * 1.03), d: 0.03216666666666668, p: 0.912475134163048, asymp: 0.912475134163048 },
  ];
  for (const c of cases) {
    const r = ks2Samp(c.a, c.b);
    close(r.statistic, c.d, 1e-12, `D for ${c.a.length}×${c.b.length}`);
    close(r.pValue, c.p, 1e-6, `exact/auto p for ${c.a.length}×${c.b.length}`);
    close(ks2Samp(c.a, c.b, { method: 'asymp' }).pValue, c.asymp, 0.01, `asymptotic p for ${c.a.length}×${c.b.length}`);
  }
  // scipy.stats.kstwo.sf(0.05, 400), kstwo.sf(0.2, 30)
  close(kolmogorovOneSampleSf(0.05, 400), 0.26121244607129124, 1e-6, 'kstwo.sf(0.05, 400)');
  close(kolmogorovOneSampleSf(0.2, 30), 0.15796916101547398, 1e-6, 'kstwo.sf(0.2, 30)');
  assert.equal(ksPValue(0, 10, 10), 1);
});

test('chi-square, PSI and the normal quantile match scipy / numpy', () => {
  // scipy.stats.chisquare([40,30,10,12,8], f_exp = [120,80,50,30,20] scaled to 100)
  const chi = chiSquareCounts([120, 80, 50, 30, 20], [40, 30, 10, 12, 8]);
  close(chi.statistic, 3.7499999999999996, 1e-12, 'chi-square statistic');
  close(chi.pValue, 0.44089552967916945, 1e-9, 'chi-square p');
  close(chiSquareSf(3.5, 4), 0.477878344488724, 1e-12, 'chi2.sf(3.5, 4)');
  close(chiSquareSf(250, 9), 9.976151469298895e-49, 1e-9, 'chi2.sf(250, 9)');
  assert.deepEqual(chiSquareCounts([10, 0], [5, 3]), { statistic: Infinity, pValue: 0 });
  // Evidently-style PSI in numpy: 30 np.histogram_bin_edges bins over both samples, empty shares → 0.0001.
  close(psi(seq(1000), seq(300, 0.4142135623730951).map((v) => v * v)), 0.45105653647897437, 1e-9, 'PSI');
  assert.equal(psi([1, 1, 1], [1, 1]), 0, 'constant data has PSI 0, not NaN');
  const ps = [1e-10, 0.001, 0.3, 0.5, 0.97, 1 - 1e-6];
  const qs = [-6.361340902404056, -3.090232306167813, -0.5244005127080409, 0, 1.8807936081512509, 4.753424308817087];
  ps.forEach((p, i) => assert.ok(Math.abs(normalQuantile(p) - qs[i]) < 1e-9 * Math.max(1, Math.abs(qs[i])), `ppf(${p})`));
});
