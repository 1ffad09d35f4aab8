import * as tf from '@tensorflow/tfjs-core';
import { backend_util, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';

/**
 * Three gaps in @tensorflow/tfjs-backend-wasm 4.x that training runs into, closed here:
 *
 * 1. Conv2DBackpropFilter (the filter gradient of a convolution) has no WebAssembly
 *    kernel, so a CNN cannot train. We register one: lay the input patches out as a
 *    [kh·kw·cin, n·oh·ow] matrix (im2col, transposed) in WebAssembly memory and let the
 *    backend's own XNNPACK matrix product multiply it by the output gradient.
 * 2. Conv2DBackpropInput (the input gradient) exists but is a naive loop, about 30× slower
 *    than the forward convolution. We replace it the same way: one XNNPACK product of the
 *    output gradient with the transposed filter gives every patch's gradient, which a
 *    col2im pass adds back into the input's shape.
 * 3. BatchMatMul with transposeA/transposeB takes a slow generic path (10–20× slower than
 *    the plain product), and every dense-layer gradient needs a transposed product. We
 *    wrap the kernel: transpose explicitly with the registered Transpose kernel (ours from
 *    simd-kernels.ts where WebAssembly SIMD works), then multiply untransposed.
 *
 * simd-kernels.ts adds the kernels of the training step that run our own SIMD code.
 */
/** The parts of the wasm backend (BackendWasm, not exported as a type) that kernels use. */
export interface WasmBackendLike {
  makeOutput(shape: number[], dtype: 'float32' | 'int32'): TensorInfo;
  /** A view of the tensor's memory (an Int32Array for int32 tensors). */
  typedArrayFromHeap(t: TensorInfo): Float32Array;
  disposeData(dataId: object): void;
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  wasm: { asm?: { memory?: unknown } };
}

type ConvAttrs = {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
};

function geometry(info: backend_util.Conv2DInfo) {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const kh = info.filterHeight;
  const kw = info.filterWidth;
  return {
    batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, kh, kw,
    sh: info.strideHeight,
    sw: info.strideWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
    /** values in one patch */
    k: kh * kw * inChannels,
    /** patches (output positions) in the batch */
    n: batchSize * outHeight * outWidth,
  };
}

let patched = false;

export function patchWasmKernels(): void {
  if (patched) return;
  patched = true;
  const matmul = tf.getKernel('BatchMatMul', 'wasm');
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (!matmul || !transpose) return;
  const plainMatMul = matmul.kernelFunc;

  const transposeLast2 = (x: TensorInfo, backend: unknown): TensorInfo => {
    const r = x.shape.length;
    const perm = [...Array(r - 2).keys(), r - 1, r - 2];
    // Looked up per call: registerSimdKernels (simd-kernels.ts) may have replaced it since.
    const transposeFn = (tf.getKernel('Transpose', 'wasm') ?? transpose).kernelFunc;
    return transposeFn({ inputs: { x }, backend, attrs: { perm } } as never) as TensorInfo;
  };

  const fastMatMul: KernelFunc = ({ inputs, backend, attrs }) => {
    const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
    if (!transposeA && !transposeB) return plainMatMul({ inputs, backend, attrs });
    const wb = backend as unknown as WasmBackendLike;
    const a2 = transposeA ? transposeLast2(a, backend) : a;
    const b2 = transposeB ? transposeLast2(b, backend) : b;
    const out = plainMatMul({ inputs: { a: a2, b: b2 }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } });
    if (a2 !== a) wb.disposeData(a2.dataId);
    if (b2 !== b) wb.disposeData(b2.dataId);
    return out;
  };
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({ ...matmul, kernelFunc: fastMatMul } as KernelConfig);

  tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
  tf.registerKernel({
    kernelName: 'Conv2DBackpropInput',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
      const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as ConvAttrs & {
        inputShape: [number, number, number, number];
      };
      if (dataFormat === 'NCHW') throw new Error('Conv2DBackpropInput on wasm supports NHWC only');
      const wb = backend as unknown as WasmBackendLike;
      const info = backend_util.computeConv2DInfo(inputShape, filter.shape as [number, number, number, number], strides, 1, pad, dimRoundingMode, false, 'channelsLast');
      const g = geometry(info);
      // patches[n, k] = dy[n, co] · filter[k, co]ᵀ
      const dy2 = { ...dy, shape: [1, g.n, g.outChannels] };
      const f2 = { ...filter, shape: [1, g.k, g.outChannels] };
      const patches = fastMatMul({ inputs: { a: dy2, b: f2 }, backend, attrs: { transposeA: false, transposeB: true } }) as TensorInfo;
      const dx = wb.makeOutput([...inputShape], 'float32');
      const pv = wb.typedArrayFromHeap(patches);
      const dv = wb.typedArrayFromHeap(dx);
      dv.fill(0);
      const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, kh, kw, sh, sw, padTop, padLeft, k } = g;
      let row = 0;
      for (let bi = 0; bi < batchSize; bi++) {
        const xb = bi * inHeight * inWidth * inChannels;
        for (let oy = 0; oy < outHeight; oy++) {
          for (let ox = 0; ox < outWidth; ox++, row++) {
            const base = row * k;
            for (let fy = 0; fy < kh; fy++) {
              const iy = oy * sh - padTop + fy;
              if (iy < 0 || iy >= inHeight) continue;
              for (let fx = 0; fx < kw; fx++) {
                const ix = ox * sw - padLeft + fx;
                if (ix < 0 || ix >= inWidth) continue;
                const src = base + (fy * kw + fx) * inChannels;
                const dst = xb + (iy * inWidth + ix) * inChannels;
                for (let c = 0; c < inChannels; c++) dv[dst + c] += pv[src + c];
              }
            }
          }
        }
      }
      wb.disposeData(patches.dataId);
      return dx;
    },
  });

  if (!tf.getKernel('Conv2DBackpropFilter', 'wasm')) {
    tf.registerKernel({
      kernelName: 'Conv2DBackpropFilter',
      backendName: 'wasm',
      kernelFunc: ({ inputs, backend, attrs }) => {
        const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
        const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as ConvAttrs & {
          filterShape: [number, number, number, number];
        };
        if (dataFormat === 'NCHW') throw new Error('Conv2DBackpropFilter on wasm supports NHWC only');
        const wb = backend as unknown as WasmBackendLike;
        const info = backend_util.computeConv2DInfo(
          x.shape as [number, number, number, number],
          filterShape,
          strides,
          1,
          pad,
          dimRoundingMode,
          false,
          'channelsLast',
        );
        const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, kh, kw, sh, sw, padTop, padLeft, k, n } = geometry(info);
        // Allocate before taking heap views: an allocation may grow (and detach) the heap.
        const cols = wb.makeOutput([1, k, n], 'float32');
        const xv = wb.typedArrayFromHeap(x);
        const cv = wb.typedArrayFromHeap(cols);
        for (let fy = 0; fy < kh; fy++) {
          for (let fx = 0; fx < kw; fx++) {
            for (let c = 0; c < inChannels; c++) {
              const row = ((fy * kw + fx) * inChannels + c) * n;
              let col = 0;
              for (let bi = 0; bi < batchSize; bi++) {
                const xb = bi * inHeight * inWidth * inChannels;
                for (let oy = 0; oy < outHeight; oy++) {
                  const iy = oy * sh - padTop + fy;
                  const inside = iy >= 0 && iy < inHeight;
                  for (let ox = 0; ox < outWidth; ox++, col++) {
                    const ix = ox * sw - padLeft + fx;
                    cv[row + col] = inside && ix >= 0 && ix < inWidth ? xv[xb + (iy * inWidth + ix) * inChannels + c] : 0;
                  }
                }
              }
            }
          }
        }
        const dy3 = { ...dy, shape: [1, n, outChannels] };
        const out = plainMatMul({ inputs: { a: cols, b: dy3 }, backend, attrs: { transposeA: false, transposeB: false } }) as TensorInfo;
        wb.disposeData(cols.dataId);
        return { ...out, shape: [...filterShape] };
      },
    });
  }
}
