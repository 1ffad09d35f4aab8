import { InferenceSession, Tensor } from 'onnxruntime-node';
import { stat } from 'node:fs/promises';
import { BulwarkError } from '../../core/errors.js';
import { checkInputShape, type ModelInfo, type Predictor } from '../../core/model.js';
import type { Samples } from '../../core/samples.js';

export interface LoadOnnxOptions {
  /**
   * What the model's output holds. 'auto' (default) applies softmax to a predict call's
   * output when any row is not a probability vector (a negative value, or a sum off 1 by
   * more than 1e-3); 'logits' always applies it; 'probabilities' never does.
   */
  output?: 'auto' | 'probabilities' | 'logits';
  /** One name per class, in output order. */
  classNames?: string[];
}

/** An ONNX model run by onnxruntime: predict only (no gradients through the runtime). */
export interface OnnxModel extends Predictor {
  /** Releases the runtime session; predict fails afterwards. Safe to call twice. */
  close(): Promise<void>;
}

// Caps the size of a single tensor handed to the runtime so huge inputs do not spike memory.
const MAX_BATCH = 1024;

export async function loadOnnxModel(path: string, opts: LoadOnnxOptions = {}): Promise<OnnxModel> {
  const mode = opts.output ?? 'auto';
  if (!['auto', 'probabilities', 'logits'].includes(mode)) {
    throw new BulwarkError('E_USAGE', `output '${String(mode)}' is not one of auto, probabilities, logits`);
  }
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new BulwarkError('E_FILE_READ', `ONNX model '${path}' is not a file`);
  } catch (e) {
    if (e instanceof BulwarkError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new BulwarkError('E_FILE_NOT_FOUND', `ONNX model file '${path}' does not exist`, { cause: e });
    throw new BulwarkError('E_FILE_READ', `cannot read ONNX model '${path}': ${(e as Error).message}`, { cause: e });
  }

  let session: InferenceSession;
  try {
    session = await InferenceSession.create(path);
  } catch (e) {
    throw new BulwarkError('E_MODEL_FORMAT', `cannot load ONNX model '${path}': ${(e as Error).message}`, { cause: e });
  }
  try {
    return await OnnxPredictor.open(session, path, mode, opts.classNames);
  } catch (e) {
    await session.release().catch(() => undefined);
    throw e;
  }
}

function bad(path: string, why: string): BulwarkError {
  return new BulwarkError('E_MODEL_FORMAT', `ONNX model '${path}' cannot be used: ${why}`);
}

function tensorMeta(path: string, meta: InferenceSession.ValueMetadata | undefined, what: string): InferenceSession.TensorValueMetadata {
  if (!meta || !meta.isTensor) throw bad(path, `its ${what} '${meta?.name ?? '?'}' is not a tensor`);
  return meta;
}

/** A dimension the graph leaves open (symbolic name, or a negative/absent size). */
function isOpen(d: number | string): boolean {
  return typeof d === 'string' || d < 0;
}

interface Graph {
  session: InferenceSession;
  name: string;
  inputName: string;
  outputName: string;
  inputShape: readonly number[];
}

/** Runs `rows` samples through the graph and returns the output as [rows, k]. */
async function runGraph(g: Graph, data: Float32Array, rows: number): Promise<{ values: Float32Array; k: number }> {
  // The binding honours the view's byteOffset, so batch slices go in without a copy.
  const feed = new Tensor('float32', data, [rows, ...g.inputShape]);
  let result: InferenceSession.ReturnType;
  try {
    result = await g.session.run({ [g.inputName]: feed }, [g.outputName]);
  } catch (e) {
    throw new BulwarkError('E_MODEL_FORMAT', `ONNX model '${g.name}' failed to run: ${(e as Error).message}`, { cause: e });
  }
  const out = result[g.outputName] as Tensor;
  if (out.type !== 'float32' && out.type !== 'float64') {
    throw bad(g.name, `its output '${g.outputName}' is ${out.type}; class scores must be float32 or float64`);
  }
  const values = out.data instanceof Float32Array ? out.data : Float32Array.from(out.data as Float64Array);
  const k = out.dims.length > 1 ? out.dims[out.dims.length - 1] : 1;
  if (out.dims[0] !== rows || values.length !== rows * k) {
    throw bad(g.name, `its output '${g.outputName}' has shape [${out.dims.join(', ')}] for ${rows} samples; expected [${rows}, classes]`);
  }
  return { values, k };
}

class OnnxPredictor implements OnnxModel {
  private closed = false;

  private constructor(
    private readonly graph: Graph,
    readonly info: ModelInfo,
    /** A fixed batch size baked into the graph, or null when any batch size is accepted. */
    private readonly fixedBatch: number | null,
    private readonly mode: 'auto' | 'probabilities' | 'logits',
  ) {}

  static async open(
    session: InferenceSession,
    path: string,
    mode: 'auto' | 'probabilities' | 'logits',
    classNames: string[] | undefined,
  ): Promise<OnnxPredictor> {
    if (session.inputNames.length !== 1) {
      throw bad(path, `it has ${session.inputNames.length} inputs (${session.inputNames.join(', ')}); Bulwark feeds exactly one`);
    }
    const input = tensorMeta(path, session.inputMetadata[0], 'input');
    const output = tensorMeta(path, session.outputMetadata[0], 'output');
    if (input.type !== 'float32') throw bad(path, `its input '${input.name}' is ${input.type}; only float32 inputs are supported`);
    if (input.shape.length === 0) throw bad(path, `its input '${input.name}' declares no shape (a batch dimension is needed)`);
    const [batch, ...rest] = input.shape;
    const open = rest.findIndex(isOpen);
    if (open >= 0) {
      throw bad(path, `its input '${input.name}' has an unknown dimension '${String(rest[open])}' at position ${open + 1} ` +
        `of [${input.shape.join(', ')}]; only the batch dimension may be left open. Re-export the model with a fixed sample shape.`);
    }
    const inputShape = rest as number[];
    const fixedBatch = isOpen(batch) ? null : (batch as number);
    if (fixedBatch === 0) throw bad(path, `its input '${input.name}' has a batch dimension of 0`);

    const graph: Graph = { session, name: path, inputName: input.name, outputName: output.name, inputShape };
    const last = output.shape[output.shape.length - 1];
    let numClasses: number;
    if (last !== undefined && !isOpen(last)) numClasses = last as number;
    else {
      // The graph leaves the class count open: one run on a zero sample reveals it.
      const size = inputShape.reduce((a, b) => a * b, 1);
      numClasses = (await runGraph(graph, new Float32Array(size * (fixedBatch ?? 1)), fixedBatch ?? 1)).k;
    }
    if (!Number.isInteger(numClasses) || numClasses < 1) throw bad(path, `its output '${output.name}' has ${numClasses} classes`);
    if (classNames && classNames.length !== numClasses) {
      throw new BulwarkError('E_USAGE', `${classNames.length} class names were given but ONNX model '${path}' has ${numClasses} classes`);
    }
    const info: ModelInfo = { name: path, engine: 'onnx', inputShape, numClasses, ...(classNames ? { classNames: [...classNames] } : {}) };
    return new OnnxPredictor(graph, info, fixedBatch, mode);
  }

  async predict(x: Samples): Promise<Samples> {
    if (this.closed) throw new BulwarkError('E_USAGE', `ONNX model '${this.info.name}' was closed`);
    checkInputShape(this, x);
    const n = x.shape[0];
    const size = this.info.inputShape.reduce((a, b) => a * b, 1);
    const k = this.info.numClasses;
    const out = new Float32Array(n * k);
    const step = this.fixedBatch ?? MAX_BATCH;
    for (let start = 0; start < n; start += step) {
      const rows = Math.min(step, n - start);
      let chunk = x.data.subarray(start * size, (start + rows) * size);
      if (this.fixedBatch !== null && rows < this.fixedBatch) {
        // A graph with a fixed batch size takes nothing else: pad the tail with zeros and drop their rows.
        const padded = new Float32Array(this.fixedBatch * size);
        padded.set(chunk);
        chunk = padded;
      }
      const { values, k: got } = await runGraph(this.graph, chunk, this.fixedBatch ?? rows);
      if (got !== k) throw bad(this.info.name, `its output has ${got} classes in one run and ${k} in another`);
      out.set(values.subarray(0, rows * k), start * k);
    }
    if (this.mode === 'logits' || (this.mode === 'auto' && !areProbabilities(out, k))) softmaxRows(out, k);
    return { data: out, shape: [n, k] };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.graph.session.release();
  }
}

function areProbabilities(m: Float32Array, k: number): boolean {
  for (let r = 0; r < m.length; r += k) {
    let sum = 0;
    for (let j = r; j < r + k; j++) {
      if (m[j] < 0) return false;
      sum += m[j];
    }
    if (Math.abs(sum - 1) > 1e-3) return false;
  }
  return true;
}

function softmaxRows(m: Float32Array, k: number): void {
  for (let r = 0; r < m.length; r += k) {
    let max = -Infinity;
    for (let j = r; j < r + k; j++) max = Math.max(max, m[j]);
    let sum = 0;
    for (let j = r; j < r + k; j++) sum += Math.exp(m[j] - max);
    for (let j = r; j < r + k; j++) m[j] = Math.exp(m[j] - max) / sum;
  }
}
