import * as tf from '@tensorflow/tfjs-core';
// Registers the gradient functions (tfjs-core's Node build registers none) that tf.grad needs.
import '@tensorflow/tfjs-layers';
import { createRequire } from 'node:module';
import { registerSimdKernels } from './simd-kernels.js';
import { patchWasmKernels } from './wasm-kernels.js';

/**
 * TF.js runs on WebAssembly by default: it needs no native download, so `npm ci` works
 * anywhere. When the user has installed @tensorflow/tfjs-node, its native TensorFlow
 * backend is used instead. BULWARK_TFJS_BACKEND=wasm|cpu|tensorflow forces a choice.
 */
let ready: Promise<string> | null = null;

export function initTfjs(): Promise<string> {
  ready ??= choose();
  return ready;
}

async function choose(): Promise<string> {
  const forced = process.env.BULWARK_TFJS_BACKEND;
  if ((forced === undefined || forced === 'tensorflow') && (await tryNode())) return 'tensorflow';
  if (forced === 'cpu') {
    await import('@tensorflow/tfjs-backend-cpu');
    await tf.setBackend('cpu');
    return 'cpu';
  }
  // The Emscripten runtime inside the wasm backend installs process-wide handlers that
  // rethrow every uncaught error with its whole minified source attached; we take them
  // back out so errors surface normally.
  const before = {
    uncaughtException: new Set(process.listeners('uncaughtException')),
    unhandledRejection: new Set(process.listeners('unhandledRejection')),
  };
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  // In Node the .wasm files are read from the package's own dist folder.
  const require = createRequire(import.meta.url);
  const dist = require.resolve('@tensorflow/tfjs-backend-wasm').replace(/[^/\\]+$/, '');
  wasm.setWasmPaths(dist.endsWith('/') ? dist : `${dist}/`);
  patchWasmKernels();
  if (!(await tf.setBackend('wasm'))) throw new Error('could not start the TF.js WebAssembly backend');
  await tf.ready();
  registerSimdKernels(tf.backend());
  for (const l of process.listeners('uncaughtException')) {
    if (!before.uncaughtException.has(l)) process.removeListener('uncaughtException', l);
  }
  for (const l of process.listeners('unhandledRejection')) {
    if (!before.unhandledRejection.has(l)) process.removeListener('unhandledRejection', l);
  }
  return 'wasm';
}

async function tryNode(): Promise<boolean> {
  try {
    // Optional peer: only present when the user installed it. The specifier is built at
    // run time so TypeScript does not require its types.
    const name = '@tensorflow/tfjs-node';
    await import(name);
    return await tf.setBackend('tensorflow');
  } catch {
    return false;
  }
}
