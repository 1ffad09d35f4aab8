import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core's Node bundle registers no gradient functions; tfjs-layers does (as in the engine).
import '@tensorflow/tfjs-layers';
import { initTfjs } from '../../src/engines/tfjs/backend.js';
import { ADAM_KERNEL, DROPOUT_KERNEL, GEMM_KERNEL, RELU_GRAD_KERNEL } from '../../src/engines/tfjs/simd-kernels.js';
import { Rng } from '../../src/core/rng.js';

// Our kernels only exist on the WebAssembly backend, so force it even where tfjs-node is installed.
process.env.BULWARK_TFJS_BACKEND = 'wasm';
const backend = await initTfjs();

test('the WebAssembly backend is active and carries our kernels', () => {
  assert.equal(backend, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assert.ok(tf.getKernel('Conv2DBackpropFilter', 'wasm'), 'Conv2DBackpropFilter is registered on wasm');
  assert.ok(tf.getKernel('Conv2DBackpropInput', 'wasm'));
  assert.ok(tf.getKernel('BatchMatMul', 'wasm'));
  for (const k of [ADAM_KERNEL, GEMM_KERNEL, DROPOUT_KERNEL, RELU_GRAD_KERNEL]) assert.ok(tf.getKernel(k, 'wasm'), `${k} is registered (WebAssembly SIMD works here)`);
});

/**
 * The WebAssembly heap starts at 16 MB and grows on demand; growing detaches every view
 * taken on the old heap, so a kernel that reads through a view taken before an allocation
 * reads nothing. These run first, while the heap is still small, so that the kernels' own
 * allocations are the ones that make it grow. Only the one gradient is taken in each, so no
 * other kernel grows the heap first.
 */
test('the filter gradient is right when its im2col buffer grows the WebAssembly heap', async () => {
  const heapBefore = wasmHeapBytes();
  // im2col: k = 5·5·16 = 400 rows × n = 6·44·44 = 11,616 columns = 18.6 MB, more than the heap's 16 MB.
  const shapes = { x: [6, 48, 48, 16], f: [5, 5, 16, 1] };
  const rng = new Rng(77);
  const x = uniform(rng, shapes.x);
  const f = uniform(rng, shapes.f);
  const compute = () => {
    const xt = tf.tensor4d(x.values, shapes.x as Shape4);
    return [tf.grad((ft: tf.Tensor) => tf.sum(tf.conv2d(xt, ft as tf.Tensor4D, 1, 'valid')))(tf.tensor4d(f.values, shapes.f as Shape4))];
  };
  const [got] = await on('wasm', compute);
  assert.ok(wasmHeapBytes() > heapBefore, 'the heap grew (else this test checks nothing)');
  const [ref] = await on('cpu', compute);
  const d = maxAbsDiff(got.values, ref.values);
  assert.ok(d < 1e-4 * maxAbs(ref.values), `max abs diff ${d}, values up to ${maxAbs(ref.values)}`);
});

test('the input gradient is right when its output buffer grows the WebAssembly heap', async () => {
  // Stride 5 with a 5×5 kernel: the patch matrix is as large as the input. Over these sizes
  // there is one where input + patches still fit in the heap but the gradient's buffer,
  // allocated after the patches, makes it grow (checked: reading the patches through a view
  // taken before that allocation fails here).
  for (const mb of [8, 12, 16, 24]) {
    const b = Math.round((mb * 2 ** 20) / 4 / (250 * 250 * 4));
    const shapes = { x: [b, 250, 250, 4], f: [5, 5, 4, 2] };
    const rng = new Rng(mb);
    const x = uniform(rng, shapes.x);
    const f = uniform(rng, shapes.f);
    const compute = () => {
      const ft = tf.tensor4d(f.values, shapes.f as Shape4);
      return [tf.grad((xt: tf.Tensor) => tf.sum(tf.conv2d(xt as tf.Tensor4D, ft, 5, 'valid')))(tf.tensor4d(x.values, shapes.x as Shape4))];
    };
    const [got] = await on('wasm', compute);
    const [ref] = await on('cpu', compute);
    const d = maxAbsDiff(got.values, ref.values);
    assert.ok(d < 1e-4, `${mb} MB input: max abs diff ${d}`);
  }
});

type Shape4 = [number, number, number, number];

function wasmHeapBytes(): number {
  return (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length;
}

function uniform(rng: Rng, shape: number[]): { values: Float32Array; shape: number[] } {
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) values[i] = rng.next() * 2 - 1;
  return { values, shape };
}

/** Runs `f` on the named backend and reads its results out as plain arrays. */
async function on(name: 'cpu' | 'wasm', f: () => tf.Tensor[]): Promise<{ shape: number[]; values: Float32Array }[]> {
  assert.ok(await tf.setBackend(name), `backend ${name} starts`);
  try {
    const out = tf.tidy(f);
    const read = out.map((t) => ({ shape: t.shape, values: t.dataSync() as Float32Array }));
    tf.dispose(out);
    return read;
  } finally {
    await tf.setBackend('wasm');
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

interface ConvCase {
  name: string;
  x: number[];
  f: number[];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number;
  /** absolute tolerance; larger sums accumulate more float32 rounding */
  tol?: number;
}

const convCases: ConvCase[] = [
  { name: 'valid, stride 1', x: [1, 8, 8, 2], f: [3, 3, 2, 3], strides: 1, pad: 'valid' },
  { name: 'same, stride 2', x: [1, 9, 9, 2], f: [3, 3, 2, 3], strides: 2, pad: 'same' },
  { name: 'same, stride 1, 5×5 kernel, 3→4 channels', x: [1, 10, 10, 3], f: [5, 5, 3, 4], strides: 1, pad: 'same' },
  { name: 'asymmetric input, batch 2, 9×7', x: [2, 9, 7, 2], f: [3, 3, 2, 3], strides: 1, pad: 'valid' },
  { name: 'asymmetric input, batch 2, 9×7, same, strides [2, 1]', x: [2, 9, 7, 3], f: [3, 2, 3, 2], strides: [2, 1], pad: 'same' },
  // Even kernel under 'same': the padding is uneven (more at the bottom/right).
  { name: 'same, even 4×4 kernel', x: [2, 7, 8, 1], f: [4, 4, 1, 2], strides: 1, pad: 'same' },
  // Stride that leaves the last input rows/columns unused by any output.
  { name: 'valid, stride 2, rows left over', x: [1, 8, 10, 2], f: [3, 3, 2, 2], strides: 2, pad: 'valid' },
  { name: 'explicit numeric padding 1', x: [1, 6, 5, 2], f: [3, 3, 2, 3], strides: 1, pad: 1 },
  // Sizes of the zoo CNN's second layer on 28×28 digits.
  { name: 'zoo cnn conv2 sizes', x: [4, 12, 12, 16], f: [5, 5, 16, 32], strides: 1, pad: 'valid', tol: 1e-3 },
];

for (const c of convCases) {
  test(`conv2d gradients wrt x and filter match the cpu backend: ${c.name}`, async () => {
    const rng = new Rng(c.x.reduce((a, b) => a * 31 + b, 7));
    const x = uniform(rng, c.x);
    const f = uniform(rng, c.f);
    // The output shape is needed for the weights; take it from a forward pass.
    const [probe] = await on('cpu', () => [tf.conv2d(tf.tensor4d(x.values, c.x as Shape4), tf.tensor4d(f.values, c.f as Shape4), c.strides, c.pad)]);
    const w = uniform(rng, probe.shape);
    const compute = () => {
      const xt = tf.tensor4d(x.values, c.x as Shape4);
      const ft = tf.tensor4d(f.values, c.f as Shape4);
      const wt = tf.tensor(w.values, w.shape);
      const loss = (a: tf.Tensor4D, b: tf.Tensor4D) => tf.sum(tf.mul(tf.conv2d(a, b, c.strides, c.pad), wt));
      const [dx, df] = tf.grads(loss as (...args: tf.Tensor[]) => tf.Tensor)([xt, ft]);
      return [tf.conv2d(xt, ft, c.strides, c.pad), dx, df];
    };
    const ref = await on('cpu', compute);
    const got = await on('wasm', compute);
    const names = ['forward', 'd/dx', 'd/dfilter'];
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(got[i].shape, ref[i].shape, `${names[i]} shape`);
      const tol = c.tol ?? 1e-4;
      const d = maxAbsDiff(got[i].values, ref[i].values);
      assert.ok(d < tol, `${names[i]}: max abs diff ${d} ≥ ${tol} (values up to ${maxAbs(ref[i].values)})`);
      assert.ok(maxAbs(ref[i].values) > 0.1, `${names[i]} is not trivially zero`);
    }
  });
}

test('conv2d gradients on wasm leave no tensor or backend buffer behind', async () => {
  const rng = new Rng(3);
  const x = uniform(rng, [2, 9, 7, 3]);
  const f = uniform(rng, [3, 3, 3, 4]);
  const xt = tf.tensor4d(x.values, [2, 9, 7, 3]);
  const ft = tf.tensor4d(f.values, [3, 3, 3, 4]);
  const tensors = tf.memory().numTensors;
  const ids = tf.backend().numDataIds();
  tf.tidy(() => {
    const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same')))([xt, ft]);
    dx.dataSync();
    df.dataSync();
  });
  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(tf.backend().numDataIds(), ids, 'intermediate buffers (patches, im2col) are freed');
  tf.dispose([xt, ft]);
});

interface MatMulCase {
  a: number[];
  b: number[];
  ta: boolean;
  tb: boolean;
}

const matCases: MatMulCase[] = [];
for (const ta of [false, true]) {
  for (const tb of [false, true]) {
    const [m, k, n] = [5, 7, 3];
    // 2-D
    matCases.push({ a: ta ? [k, m] : [m, k], b: tb ? [n, k] : [k, n], ta, tb });
    // batched 3-D
    matCases.push({ a: ta ? [4, k, m] : [4, m, k], b: tb ? [4, n, k] : [4, k, n], ta, tb });
    // batched with a broadcast batch dimension
    matCases.push({ a: ta ? [1, k, m] : [1, m, k], b: tb ? [3, n, k] : [3, k, n], ta, tb });
  }
}
// Dense-layer sizes, as in the gradient of a 784-256 layer.
matCases.push({ a: [64, 784], b: [64, 256], ta: true, tb: false });
matCases.push({ a: [64, 256], b: [784, 256], ta: false, tb: true });

for (const c of matCases) {
  test(`matMul a[${c.a}]${c.ta ? 'ᵀ' : ''} · b[${c.b}]${c.tb ? 'ᵀ' : ''} matches the cpu backend`, async () => {
    const rng = new Rng(c.a.length * 1000 + c.a[0] * 10 + c.b[0] + (c.ta ? 1 : 0) * 2 + (c.tb ? 1 : 0));
    const a = uniform(rng, c.a);
    const b = uniform(rng, c.b);
    const compute = () => [tf.matMul(tf.tensor(a.values, a.shape), tf.tensor(b.values, b.shape), c.ta, c.tb)];
    const [ref] = await on('cpu', compute);
    const [got] = await on('wasm', compute);
    assert.deepEqual(got.shape, ref.shape);
    const tol = c.a.includes(784) || c.a.includes(64) ? 1e-4 * Math.max(1, maxAbs(ref.values)) : 1e-4;
    const d = maxAbsDiff(got.values, ref.values);
    assert.ok(d < tol, `max abs diff ${d} ≥ ${tol}`);
  });
}

test('transposed matMul on wasm leaves no tensor or backend buffer behind', () => {
  const rng = new Rng(9);
  const a = uniform(rng, [3, 6, 4]);
  const b = uniform(rng, [3, 5, 6]);
  const at = tf.tensor3d(a.values, [3, 6, 4]);
  const bt = tf.tensor3d(b.values, [3, 5, 6]);
  const tensors = tf.memory().numTensors;
  const ids = tf.backend().numDataIds();
  const r = tf.matMul(at, bt, true, true);
  assert.deepEqual(r.shape, [3, 4, 5]);
  r.dispose();
  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(tf.backend().numDataIds(), ids, 'the explicit transposes are freed');
  tf.dispose([at, bt]);
});

// Our SIMD kernels (simd-kernels.ts). Sizes straddle the 4-row × 8-column tiles of the
// product and the 4-value vectors: the ragged edges take other code.
const gemmCases: { m: number; k: number; n: number }[] = [
  { m: 1, k: 1, n: 1 },
  { m: 4, k: 3, n: 8 },
  { m: 7, k: 5, n: 10 },
  { m: 9, k: 13, n: 19 },
  { m: 33, k: 64, n: 24 },
  { m: 128, k: 784, n: 256 },
];
for (const { m, k, n } of gemmCases) {
  test(`${GEMM_KERNEL} [${m}×${k}]·[${k}×${n}] matches the cpu backend, as stored and transposed, with bias and ReLU`, async () => {
    const rng = new Rng(m * 1000 + k * 10 + n);
    const a = uniform(rng, [m, k]);
    const b = uniform(rng, [k, n]);
    const bias = uniform(rng, [n]);
    const reference = () => {
      const [at, bt] = [tf.tensor2d(a.values, [m, k]), tf.tensor2d(b.values, [k, n])];
      const z = tf.matMul(at, bt);
      return [z, tf.relu(tf.add(z, tf.tensor1d(bias.values)))];
    };
    const ours = () => {
      const at = tf.tensor2d(a.values, [m, k]);
      const bt = tf.tensor2d(b.values, [k, n]);
      const run = (inputs: tf.NamedTensorMap, attrs: { transposeA: boolean; relu: boolean }) => tf.engine().runKernel(GEMM_KERNEL, inputs, attrs) as tf.Tensor;
      return [
        run({ a: at, b: bt }, { transposeA: false, relu: false }),
        run({ a: tf.transpose(at), b: bt }, { transposeA: true, relu: false }),
        run({ a: at, b: bt, bias: tf.tensor1d(bias.values) }, { transposeA: false, relu: true }),
        run({ a: tf.transpose(at), b: bt, bias: tf.tensor1d(bias.values) }, { transposeA: true, relu: true }),
      ];
    };
    const [plain, biased] = await on('cpu', reference);
    const got = await on('wasm', ours);
    const tol = 1e-5 * k;
    for (const [i, want] of [plain, plain, biased, biased].entries()) {
      assert.deepEqual(got[i].shape, [m, n]);
      const d = maxAbsDiff(got[i].values, want.values);
      assert.ok(d < tol, `variant ${i}: max abs diff ${d} ≥ ${tol}`);
    }
  });
}

test('the Transpose kernel: last two axes swapped as on the cpu backend, other permutations untouched', async () => {
  const rng = new Rng(5);
  const cases: [number[], number[]][] = [[[5, 7], [1, 0]], [[3, 4, 9], [0, 2, 1]], [[2, 3, 5, 6], [0, 1, 3, 2]], [[4, 6, 3], [1, 0, 2]], [[0, 3], [1, 0]]];
  for (const [shape, perm] of cases) {
    const x = uniform(rng, shape);
    const compute = () => [tf.transpose(tf.tensor(x.values, shape), perm)];
    const [want] = await on('cpu', compute);
    const [got] = await on('wasm', compute);
    assert.deepEqual(got.shape, want.shape);
    assert.deepEqual(Array.from(got.values), Array.from(want.values), `[${shape}] by [${perm}]`);
  }
});

test(`${RELU_GRAD_KERNEL}: dy·mask where y > 0, else 0, with and without a mask`, () => {
  const rng = new Rng(8);
  for (const size of [1, 4, 7, 130]) {
    const [dy, y, mask] = [uniform(rng, [size]), uniform(rng, [size]), uniform(rng, [size])];
    const r = tf.tidy(() => {
      const t = (v: { values: Float32Array }) => tf.tensor1d(v.values);
      return [
        tf.engine().runKernel(RELU_GRAD_KERNEL, { dy: t(dy), y: t(y), mask: t(mask) }),
        tf.engine().runKernel(RELU_GRAD_KERNEL, { dy: t(dy), y: t(y) }),
      ].map((o) => Array.from((o as tf.Tensor).dataSync()));
    });
    assert.deepEqual(r[0], Array.from(dy.values, (v, i) => (y.values[i] > 0 ? Math.fround(v * mask.values[i]) : 0)), `size ${size}, masked`);
    assert.deepEqual(r[1], Array.from(dy.values, (v, i) => (y.values[i] > 0 ? v : 0)), `size ${size}`);
  }
});

test('our kernels leave no tensor or backend buffer behind', () => {
  const x = tf.ones([6, 10]);
  const state = tf.tensor1d(Int32Array.from({ length: 16 }, (_, i) => i + 1), 'int32');
  const tensors = tf.memory().numTensors;
  const ids = tf.backend().numDataIds();
  tf.tidy(() => {
    tf.engine().runKernel(GEMM_KERNEL, { a: x, b: tf.transpose(x) }, { transposeA: false, relu: true });
    tf.engine().runKernel(DROPOUT_KERNEL, { x, state }, { threshold: 2 ** 31, scale: 2 });
    tf.engine().runKernel(RELU_GRAD_KERNEL, { dy: x, y: x });
    tf.engine().runKernel(ADAM_KERNEL, { w: x, g: x, m: x, v: x }, { beta1: 0.9, beta2: 0.999, biasCorrection1: 0.1, biasCorrection2: 0.001, epsilon: 1e-7, learningRate: 0.1 });
  });
  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(tf.backend().numDataIds(), ids);
  tf.dispose([x, state]);
});
