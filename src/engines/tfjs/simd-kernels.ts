import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { WasmBackendLike } from './wasm-kernels.js';
import { simdKernels, type SimdKernels } from './wasm-simd.js';

/**
 * TF.js kernels (wasm backend only) that run our SIMD loops (wasm-simd.ts). Callers check
 * `tf.getKernel(NAME, tf.getBackend())` and fall back to ordinary TF.js ops elsewhere.
 * None of them has a gradient: they serve the hand-written training step, not tf.grad.
 */

/** Adam update (see adam.ts): inputs w, g, m, v; attrs as `AdamAttrs`; outputs new w, m, v. */
export const ADAM_KERNEL = 'BulwarkAdam';
/**
 * Matrix product: inputs a, b [k, n] and optionally bias [n]; attrs transposeA (a is
 * stored [k, m]) and relu. Output [m, n]. For products whose b is new at every call.
 */
export const GEMM_KERNEL = 'BulwarkGemm';
/**
 * Inverted dropout with its own generator: inputs x and state (int32 [16]), attrs
 * threshold and scale; outputs y = x·mask, mask and the next state.
 */
export const DROPOUT_KERNEL = 'BulwarkDropout';
/** Inputs dy, y and optionally mask (same sizes): dy·mask where y > 0, else 0. */
export const RELU_GRAD_KERNEL = 'BulwarkReluGrad';

const size = (t: TensorInfo) => t.shape.reduce((a, b) => a * b, 1);

/** The SIMD module instantiated on a backend's memory (once per memory). */
const instances = new WeakMap<WebAssembly.Memory, SimdKernels | null>();

function memoryOf(backend: unknown): WebAssembly.Memory | null {
  const memory = (backend as WasmBackendLike)?.wasm?.asm?.memory;
  return memory instanceof WebAssembly.Memory ? memory : null;
}

function kernelsOn(backend: unknown): SimdKernels | null {
  const memory = memoryOf(backend);
  if (!memory) return null;
  if (!instances.has(memory)) instances.set(memory, simdKernels(memory));
  return instances.get(memory) ?? null;
}

/** A kernel body given the SIMD functions, the backend and a tensor's byte offset. */
type SimdKernelFunc = (
  k: SimdKernels,
  b: WasmBackendLike,
  at: (t: TensorInfo) => number,
  args: Parameters<KernelFunc>[0],
) => TensorInfo | TensorInfo[];

function register(kernelName: string, body: SimdKernelFunc): void {
  tf.registerKernel({
    kernelName,
    backendName: 'wasm',
    kernelFunc: (args) => {
      const b = args.backend as unknown as WasmBackendLike;
      // Looked up per call: were the backend ever re-created, its memory would be new.
      const k = kernelsOn(b);
      if (!k) throw new Error(`${kernelName}: the WebAssembly backend's memory is not reachable`);
      const at = (t: TensorInfo): number => {
        const d = b.dataIdMap.get(t.dataId);
        if (!d) throw new Error(`${kernelName}: a tensor has no WebAssembly data`);
        return d.memoryOffset;
      };
      return body(k, b, at, args);
    },
  } as KernelConfig);
}

/**
 * Registers our kernels, and our Transpose in place of the backend's. Called once the wasm
 * backend is up (its memory only exists then). Returns false, registering nothing, where
 * the memory is not reachable or WebAssembly SIMD is missing.
 */
export function registerSimdKernels(backend: unknown): boolean {
  if (tf.getKernel(ADAM_KERNEL, 'wasm')) return true;
  if (!kernelsOn(backend) || typeof (backend as WasmBackendLike).dataIdMap?.get !== 'function') return false;

  // The backend's Transpose takes ~3–5 ns a value (350–650 µs for a 128×784 batch on this
  // machine, loaded); the 4×4-tile one ~90–150 µs. The transposed products of tf.grad and
  // of the convolution gradients go through it: a tf.grad training step of the digits MLP
  // went ~8% faster.
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (transpose) {
    const original = transpose.kernelFunc;
    tf.unregisterKernel('Transpose', 'wasm');
    register('Transpose', (k, b, at, args) => {
      const { x } = args.inputs as { x: TensorInfo };
      const { perm } = args.attrs as unknown as { perm: number[] };
      const r = x.shape.length;
      const swapsLast2 = r >= 2 && x.dtype === 'float32' && perm.length === r && perm.every((p, i) => p === (i < r - 2 ? i : i === r - 2 ? r - 1 : r - 2));
      if (!swapsLast2) return original(args) as TensorInfo;
      const [rows, cols] = x.shape.slice(r - 2);
      const out = b.makeOutput([...x.shape.slice(0, r - 2), cols, rows], 'float32');
      k.transpose(at(x), at(out), size(x) / Math.max(1, rows * cols), rows, cols);
      return out;
    });
  }

  register(GEMM_KERNEL, (k, b, at, { inputs, attrs }) => {
    const { a, b: w, bias } = inputs as { a: TensorInfo; b: TensorInfo; bias?: TensorInfo };
    const { transposeA, relu } = attrs as unknown as { transposeA: boolean; relu: boolean };
    if (a.shape.length !== 2 || w.shape.length !== 2 || a.dtype !== 'float32' || w.dtype !== 'float32') {
      throw new Error(`${GEMM_KERNEL} takes two float32 matrices, got [${a.shape}] ${a.dtype} and [${w.shape}] ${w.dtype}`);
    }
    const [m, kA] = transposeA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
    const [kB, n] = w.shape;
    if (kA !== kB || (bias && (bias.dtype !== 'float32' || size(bias) !== n))) {
      throw new Error(`${GEMM_KERNEL}: shapes do not fit: [${a.shape}]${transposeA ? 'ᵀ' : ''} · [${w.shape}]${bias ? ` + [${bias.shape}]` : ''}`);
    }
    const out = b.makeOutput([m, n], 'float32');
    if (m * n === 0) return out;
    const [aRow, aK] = transposeA ? [4, 4 * m] : [4 * kA, 4];
    (transposeA ? k.gemmT : k.gemm)(at(a), at(w), at(out), bias ? at(bias) : 0, m, n, kA, aRow, aK, relu ? 1 : 0);
    return out;
  });

  register(RELU_GRAD_KERNEL, (k, b, at, { inputs }) => {
    const { dy, y, mask } = inputs as { dy: TensorInfo; y: TensorInfo; mask?: TensorInfo };
    for (const t of [dy, y, ...(mask ? [mask] : [])]) {
      if (t.dtype !== 'float32' || size(t) !== size(dy)) throw new Error(`${RELU_GRAD_KERNEL}: sizes differ: [${dy.shape}] and [${t.shape}]`);
    }
    const out = b.makeOutput([...dy.shape], 'float32');
    k.reluGrad(at(dy), at(y), mask ? at(mask) : 0, at(out), size(dy));
    return out;
  });

  register(DROPOUT_KERNEL, (k, b, at, { inputs, attrs }) => {
    const { x, state } = inputs as { x: TensorInfo; state: TensorInfo };
    const { threshold, scale } = attrs as unknown as { threshold: number; scale: number };
    if (x.dtype !== 'float32' || state.dtype !== 'int32' || size(state) !== 16) {
      throw new Error(`${DROPOUT_KERNEL} takes float32 x and an int32 [16] state, got ${x.dtype} and ${state.dtype} [${state.shape}]`);
    }
    const y = b.makeOutput([...x.shape], 'float32');
    const mask = b.makeOutput([...x.shape], 'float32');
    const next = b.makeOutput([16], 'int32');
    // Views after the allocations: an allocation may grow (and so detach) the heap.
    b.typedArrayFromHeap(next).set(b.typedArrayFromHeap(state));
    k.dropout(at(x), at(y), at(mask), at(next), size(x), threshold, scale);
    return [y, mask, next];
  });

  register(ADAM_KERNEL, (k, b, at, { inputs, attrs }) => {
    const { w, g, m, v } = inputs as { w: TensorInfo; g: TensorInfo; m: TensorInfo; v: TensorInfo };
    const a = attrs as unknown as { beta1: number; beta2: number; biasCorrection1: number; biasCorrection2: number; epsilon: number; learningRate: number };
    for (const t of [w, g, m, v]) {
      if (t.dtype !== 'float32' || size(t) !== size(w)) throw new Error(`${ADAM_KERNEL}: sizes differ: [${w.shape}] and [${t.shape}]`);
    }
    const [ow, om, ov] = [0, 1, 2].map(() => b.makeOutput([...w.shape], 'float32'));
    k.adam(at(w), at(g), at(m), at(v), at(ow), at(om), at(ov), size(w),
      a.beta1, 1 - a.beta1, a.beta2, 1 - a.beta2, a.biasCorrection1, a.biasCorrection2, a.epsilon, -a.learningRate);
    return [ow, om, ov];
  });
  return true;
}
