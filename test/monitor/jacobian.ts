import { Rng, argmaxRows, takeSamples, type Samples } from '../../src/core/index.js';
import type { TfjsModel } from '../../src/engines/index.js';
import { createZooModel } from '../../src/zoo/index.js';

/**
 * A Jacobian-augmentation extraction client (Papernot et al., 2017): starting from a small
 * seed set, each round queries the target for labels, trains a surrogate on everything
 * labelled so far, and adds x + λ·sign(∇x surrogate's output for x's label) for every x.
 * Returns the queries in the order the client sends them.
 */
export async function jacobianQueries(
  target: { predict(x: Samples): Promise<Samples> },
  seed: Samples,
  opts: { budget: number; lambda?: number; seed?: number },
): Promise<Samples> {
  const lambda = opts.lambda ?? 0.1;
  const size = seed.data.length / seed.shape[0];
  const sampleShape = seed.shape.slice(1);
  const surrogate: TfjsModel = createZooModel('logistic', { inputShape: sampleShape, numClasses: 10, seed: opts.seed ?? 7, name: 'surrogate' });
  const sent: Float32Array[] = [];
  let current: Samples = seed;
  let all: Samples = { data: new Float32Array(0), shape: [0, ...sampleShape] };
  let labels = new Int32Array(0);
  try {
    while (sent.length < opts.budget) {
      const n = current.shape[0];
      for (let i = 0; i < n && sent.length < opts.budget; i++) sent.push(current.data.slice(i * size, (i + 1) * size));
      const y = argmaxRows(await target.predict(current));
      all = { data: concat(all.data, current.data), shape: [all.shape[0] + n, ...sampleShape] };
      labels = Int32Array.from([...labels, ...y]);
      await surrogate.fit({ name: 'stolen', x: all, y: labels, classNames: Array.from({ length: 10 }, (_, d) => String(d)) }, { epochs: 10, seed: 1, batchSize: 32 });
      const g = await surrogate.classGradient(all, labels);
      const next = new Float32Array(all.data.length);
      for (let i = 0; i < next.length; i++) next[i] = Math.min(1, Math.max(0, all.data[i] + lambda * Math.sign(g.data[i])));
      current = { data: next, shape: [...all.shape] };
    }
  } finally {
    surrogate.dispose();
  }
  const out = new Float32Array(sent.length * size);
  sent.forEach((r, i) => out.set(r, i * size));
  return { data: out, shape: [sent.length, ...sampleShape] };
}

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** `perClass` rows of each class, the attacker's seed set. */
export function seedSet(x: Samples, y: Int32Array, perClass: number, seed = 3): Samples {
  const order = new Rng(seed).permutation(y.length);
  const picked: number[] = [];
  const counts = new Array<number>(10).fill(0);
  for (const i of order) {
    if (counts[y[i]] < perClass) {
      counts[y[i]]++;
      picked.push(i);
    }
  }
  return takeSamples(x, picked);
}
