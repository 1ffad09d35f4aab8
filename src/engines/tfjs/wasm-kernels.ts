import * as tf from '@tensorflow/tfjs-core';
import { backend_util, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';

/**
 * Two gaps in @tensorflow/tfjs-backend-wasm 4.x that training runs into, closed here:
 *
 * 1. Conv2DBackpropFilter (the filter gradient of a convolution) has no WebAssembly
 *    kernel, so a CNN cannot train. We register one: lay the input patches out as a
 *    [kh·kw·cin, n·oh·ow] matrix (im2col, transposed) in WebAssembly memory and let the
 *    backend's own XNNPACK matrix product multiply it by the output gradient.
 * 2. BatchMatMul with transposeA/transposeB takes a slow generic path (10–20× slower than
 *    the plain product), and every dense-layer gradient needs a transposed product. We
 *    wrap the kernel: transpose explicitly with the backend's Transpose kernel, then
 *    multiply untransposed.
 */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array;
  disposeData(dataId: object): void;
}

let patched = false;

export function patchWasmKernels(): void {
  if (patched) return;
  patched = true;
  const matmul = tf.getKernel('BatchMatMul', 'wasm');
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (!matmul || !transpose) return;
  const plainMatMul = matmul.kernelFunc;
  const transposeFn = transpose.kernelFunc;

  const transposeLast2 = (x: TensorInfo, backend: unknown): TensorInfo => {
    const r = x.shape.length;
    const perm = [...Array(r - 2).keys(), r - 1, r - 2];
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

  if (!tf.getKernel('Conv2DBackpropFilter', 'wasm')) {
    tf.registerKernel({
      kernelName: 'Conv2DBackpropFilter',
      backendName: 'wasm',
      kernelFunc: ({ inputs, backend, attrs }) => {
        const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
        const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as {
          strides: [number, number] | number;
          pad: 'valid' | 'same' | number;
          dataFormat: 'NHWC' | 'NCHW';
          dimRoundingMode?: 'floor' | 'round' | 'ceil';
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
        const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
        const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
        const padTop = info.padInfo.top;
        const padLeft = info.padInfo.left;
        const k = kh * kw * inChannels;
        const n = batchSize * outHeight * outWidth;
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
