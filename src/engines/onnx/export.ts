import type { LayersModel } from '@tensorflow/tfjs-layers';
import { randomBytes } from 'node:crypto';
import { mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BulwarkError } from '../../core/errors.js';

/*
 * Protobuf encoding is done by hand rather than with protobufjs or onnx-proto: we only
 * ever *write* ~10 ONNX message types with a handful of fields each, which is ~50 lines
 * of wire format, whereas a dependency would bring a schema (onnx-proto pins the old
 * protobufjs 6) and a code generator for no gain. Reading ONNX is left to onnxruntime.
 */
class Writer {
  private chunks: Uint8Array[] = [];

  private varint(value: number): void {
    // Negative int64 values are encoded as 10-byte two's complement, as protobuf requires.
    let v = BigInt.asUintN(64, BigInt(value));
    const out: number[] = [];
    for (; v >= 0x80n; v >>= 7n) out.push(Number(v & 0x7fn) | 0x80);
    out.push(Number(v));
    this.chunks.push(Uint8Array.from(out));
  }

  int(field: number, value: number): this {
    this.varint(field << 3);
    this.varint(value);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.varint((field << 3) | 2);
    this.varint(value.length);
    this.chunks.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, Buffer.from(value, 'utf8'));
  }

  message(field: number, build: (w: Writer) => void): this {
    const inner = new Writer();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  packedInts(field: number, values: readonly number[]): this {
    const inner = new Writer();
    for (const v of values) inner.varint(v);
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    return Buffer.concat(this.chunks);
  }
}

// Field numbers and enum values from onnx/onnx.proto.
const FLOAT = 1;
const ATTR_INT = 2;
const ATTR_INTS = 7;

type Attr = { name: string } & ({ i: number } | { ints: readonly number[] });
interface OnnxNode {
  op: string;
  name: string;
  inputs: string[];
  output: string;
  attrs: Attr[];
}
interface Initializer {
  name: string;
  dims: number[];
  data: Float32Array;
}
type Dim = number | string;
/** A layer's input shape, batch dimension included. */
type Shape = readonly (number | null)[];

function writeNode(w: Writer, n: OnnxNode): void {
  for (const i of n.inputs) w.string(1, i);
  w.string(2, n.output).string(3, n.name).string(4, n.op);
  for (const a of n.attrs) {
    w.message(5, (aw) => {
      aw.string(1, a.name);
      if ('i' in a) aw.int(3, a.i).int(20, ATTR_INT);
      else aw.packedInts(8, a.ints).int(20, ATTR_INTS);
    });
  }
}

function writeTensor(w: Writer, t: Initializer): void {
  w.packedInts(1, t.dims).int(2, FLOAT).string(8, t.name);
  // raw_data is little-endian by spec whatever the host byte order.
  const raw = new Uint8Array(t.data.length * 4);
  const view = new DataView(raw.buffer);
  t.data.forEach((v, i) => view.setFloat32(i * 4, v, true));
  w.bytes(9, raw);
}

function writeValueInfo(w: Writer, name: string, shape: readonly Dim[]): void {
  w.string(1, name).message(2, (tw) =>
    tw.message(1, (tt) =>
      tt.int(1, FLOAT).message(2, (sw) => {
        for (const d of shape) sw.message(1, (dw) => (typeof d === 'number' ? dw.int(1, d) : dw.string(2, d)));
      }),
    ),
  );
}

/** Minimal structural view of a tfjs layer: only what the exporter reads. */
interface LayerLike {
  name: string;
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  getWeights(): { dataSync(): ArrayLike<number> & Iterable<number>; shape: number[] }[];
  input: unknown;
  output: unknown;
}

/**
 * Translates a chain of layers into ONNX nodes. TF.js keeps images NHWC while ONNX Conv
 * and pooling want NCHW, so the builder tracks the layout the running tensor is in and
 * transposes only when a layer needs the other one: once before the first spatial layer
 * and once back before anything (Flatten, Dense, the output) that sees the channel order.
 */
class GraphBuilder {
  nodes: OnnxNode[] = [];
  inits: Initializer[] = [];
  current = 'input';
  nchw = false;
  private counter = 0;

  add(layer: string, op: string, inputs: string[] = [], attrs: Attr[] = []): void {
    const output = `${layer}/${op}_${this.counter++}`;
    this.nodes.push({ op, name: output, inputs: [this.current, ...inputs], output, attrs });
    this.current = output;
  }

  init(name: string, dims: number[], data: Float32Array): string {
    this.inits.push({ name, dims, data });
    return name;
  }

  toNchw(layer: string): void {
    if (!this.nchw) this.add(layer, 'Transpose', [], [{ name: 'perm', ints: [0, 3, 1, 2] }]);
    this.nchw = true;
  }

  toNhwc(layer: string): void {
    if (this.nchw) this.add(layer, 'Transpose', [], [{ name: 'perm', ints: [0, 2, 3, 1] }]);
    this.nchw = false;
  }

  activation(layer: LayerLike, kind: unknown, rank: number): void {
    const ops: Record<string, string> = { relu: 'Relu', sigmoid: 'Sigmoid', tanh: 'Tanh' };
    if (kind === 'linear' || kind === undefined || kind === null) return;
    if (typeof kind === 'string' && ops[kind]) this.add(layer.name, ops[kind]);
    // TF's softmax runs over the last axis, which is the channel axis: axis 1 in NCHW.
    else if (kind === 'softmax') this.add(layer.name, 'Softmax', [], [{ name: 'axis', i: this.nchw ? 1 : rank - 1 }]);
    else fail(layer, `activation '${String(kind)}' is not supported (linear, relu, sigmoid, tanh, softmax are)`);
  }
}

function fail(layer: LayerLike, why: string): never {
  throw new BulwarkError('E_MODEL_FORMAT', `cannot export layer '${layer.name}' (${layer.getClassName()}) to ONNX: ${why}`);
}

function pair(v: unknown): [number, number] {
  return Array.isArray(v) ? [Number(v[0]), Number(v[1])] : [Number(v), Number(v)];
}

/** Explicit [top, left, bottom, right] pads reproducing TF's 'same' (extra pad at the end). */
function tfPads(layer: LayerLike, shape: Shape, padding: unknown, kernel: number[], strides: number[]): number[] {
  if (padding === 'valid') return [0, 0, 0, 0];
  if (padding !== 'same') fail(layer, `padding '${String(padding)}' is not supported (valid, same are)`);
  const before: number[] = [];
  const after: number[] = [];
  for (let d = 0; d < 2; d++) {
    const size = shape[1 + d];
    if (size === null) fail(layer, "'same' padding needs known spatial dimensions");
    const out = Math.ceil(size / strides[d]);
    const total = Math.max((out - 1) * strides[d] + kernel[d] - size, 0);
    before.push(Math.floor(total / 2));
    after.push(total - Math.floor(total / 2));
  }
  return [...before, ...after];
}

function checkChannelsLast(layer: LayerLike, cfg: Record<string, unknown>): void {
  if (cfg.dataFormat !== undefined && cfg.dataFormat !== 'channelsLast') fail(layer, `dataFormat '${String(cfg.dataFormat)}' is not supported (channelsLast is)`);
}

function weights(layer: LayerLike, useBias: boolean): { kernel: Float32Array; kshape: number[]; bias?: Float32Array } {
  // getWeights returns the layer's own variables (no copies), so nothing here needs disposing.
  const [k, b] = layer.getWeights();
  return { kernel: Float32Array.from(k.dataSync()), kshape: k.shape, bias: useBias && b ? Float32Array.from(b.dataSync()) : undefined };
}

function exportDense(g: GraphBuilder, layer: LayerLike, cfg: Record<string, unknown>, rank: number): void {
  g.toNhwc(layer.name);
  const { kernel, kshape, bias } = weights(layer, cfg.useBias !== false);
  // MatMul + Add rather than Gemm: TF's Dense also applies to rank > 2 inputs (last axis).
  g.add(layer.name, 'MatMul', [g.init(`${layer.name}/kernel`, kshape, kernel)]);
  if (bias) g.add(layer.name, 'Add', [g.init(`${layer.name}/bias`, [bias.length], bias)]);
  g.activation(layer, cfg.activation, rank);
}

function exportConv(g: GraphBuilder, layer: LayerLike, cfg: Record<string, unknown>, shape: Shape): void {
  checkChannelsLast(layer, cfg);
  if (pair(cfg.dilationRate ?? 1).some((d) => d !== 1)) fail(layer, 'dilation rates other than 1 are not supported');
  const { kernel, kshape, bias } = weights(layer, cfg.useBias !== false);
  const [kh, kw, cin, cout] = kshape;
  const oihw = new Float32Array(kernel.length);
  for (let h = 0; h < kh; h++)
    for (let w = 0; w < kw; w++)
      for (let i = 0; i < cin; i++)
        for (let o = 0; o < cout; o++) oihw[((o * cin + i) * kh + h) * kw + w] = kernel[((h * kw + w) * cin + i) * cout + o];
  const strides = pair(cfg.strides ?? 1);
  g.toNchw(layer.name);
  const inputs = [g.init(`${layer.name}/kernel`, [cout, cin, kh, kw], oihw)];
  if (bias) inputs.push(g.init(`${layer.name}/bias`, [cout], bias));
  g.add(layer.name, 'Conv', inputs, [
    { name: 'kernel_shape', ints: [kh, kw] },
    { name: 'strides', ints: strides },
    { name: 'pads', ints: tfPads(layer, shape, cfg.padding, [kh, kw], strides) },
  ]);
  g.activation(layer, cfg.activation, 4);
}

function exportPool(g: GraphBuilder, layer: LayerLike, cfg: Record<string, unknown>, shape: Shape, op: string): void {
  checkChannelsLast(layer, cfg);
  const kernel = pair(cfg.poolSize ?? 2);
  const strides = pair(cfg.strides ?? kernel);
  g.toNchw(layer.name);
  // AveragePool's default count_include_pad=0 matches TF, which averages only real cells.
  g.add(layer.name, op, [], [
    { name: 'kernel_shape', ints: kernel },
    { name: 'strides', ints: strides },
    { name: 'pads', ints: tfPads(layer, shape, cfg.padding, kernel, strides) },
  ]);
}

function exportLayer(g: GraphBuilder, layer: LayerLike, shape: Shape): void {
  const cfg = layer.getConfig();
  const rank = shape.length;
  switch (layer.getClassName()) {
    case 'Dropout':
      return;
    case 'Dense':
      return exportDense(g, layer, cfg, rank);
    case 'Conv2D':
      return exportConv(g, layer, cfg, shape);
    case 'MaxPooling2D':
      return exportPool(g, layer, cfg, shape, 'MaxPool');
    case 'AveragePooling2D':
      return exportPool(g, layer, cfg, shape, 'AveragePool');
    case 'Flatten':
      checkChannelsLast(layer, cfg);
      g.toNhwc(layer.name);
      return g.add(layer.name, 'Flatten', [], [{ name: 'axis', i: 1 }]);
    case 'Activation':
      return g.activation(layer, cfg.activation, rank);
    case 'ReLU': {
      if (cfg.maxValue === undefined || cfg.maxValue === null) return g.activation(layer, 'relu', rank);
      const lo = g.init(`${layer.name}/min`, [], Float32Array.of(0));
      return g.add(layer.name, 'Clip', [lo, g.init(`${layer.name}/max`, [], Float32Array.of(Number(cfg.maxValue)))]);
    }
    default:
      fail(layer, 'this layer type is not supported (InputLayer, Dense, Conv2D, MaxPooling2D, AveragePooling2D, Flatten, Dropout, Activation, ReLU are)');
  }
}

export interface ExportOnnxOptions {
  /** ONNX opset to declare, 13 to 21 (default 13). */
  opset?: number;
  /** Recorded as the model's producer_name (default 'bulwark'). */
  producer?: string;
  /**
   * Fixes the batch dimension instead of leaving it symbolic ('N'), for runtimes that
   * need static shapes; it is also what torch.onnx produces without dynamic axes.
   */
  batchSize?: number;
}

/**
 * Serialises a Sequential-style TF.js model to an ONNX ModelProto whose input is `input`
 * [N, ...inputShape] and whose output is `probabilities` (logits if the model has no
 * final softmax). Reads weights without creating tensors.
 */
export function exportToOnnx(model: LayersModel, opts: ExportOnnxOptions = {}): Uint8Array {
  const opset = opts.opset ?? 13;
  // 13 is where Softmax took its per-axis meaning; 21 is the newest opset whose ops we use unchanged.
  if (!Number.isInteger(opset) || opset < 13 || opset > 21) throw new BulwarkError('E_USAGE', `opset ${opset} is not supported: use 13 to 21`);
  const batch = opts.batchSize ?? 'N';
  if (typeof batch === 'number' && (!Number.isInteger(batch) || batch < 1)) throw new BulwarkError('E_USAGE', `batchSize ${batch} is not a positive integer`);
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new BulwarkError('E_MODEL_FORMAT', `cannot export model '${model.name}' to ONNX: it has ${model.inputs.length} inputs and ${model.outputs.length} outputs, only single-input single-output models are supported`);
  }
  const inShape = model.inputs[0].shape.slice(1);
  if (inShape.some((d) => d === null)) throw new BulwarkError('E_MODEL_FORMAT', `cannot export model '${model.name}' to ONNX: its input shape [${inShape.join(', ')}] has unknown dimensions`);
  if (model.inputs[0].dtype !== 'float32') throw new BulwarkError('E_MODEL_FORMAT', `cannot export model '${model.name}' to ONNX: its input is ${model.inputs[0].dtype}, only float32 is supported`);

  const g = new GraphBuilder();
  let previous: unknown = model.inputs[0];
  for (const layer of model.layers as unknown as LayerLike[]) {
    if (layer.getClassName() === 'InputLayer') continue;
    let input: unknown;
    try {
      input = layer.input;
    } catch {
      fail(layer, 'it is shared between several places in the graph; only a plain chain of layers can be exported');
    }
    if (input !== previous) fail(layer, 'the model is not a plain chain of layers (each layer fed by the one before)');
    exportLayer(g, layer, (input as { shape: Shape }).shape);
    previous = layer.output;
  }
  if (previous !== model.outputs[0]) throw new BulwarkError('E_MODEL_FORMAT', `cannot export model '${model.name}' to ONNX: its output is not the last layer's output`);
  g.toNhwc('output');
  if (g.nodes.length === 0) g.add('output', 'Identity', []);
  g.nodes[g.nodes.length - 1].output = 'probabilities';

  const outShape = model.outputs[0].shape.slice(1) as number[];
  const irVersion = opset <= 18 ? 8 : opset <= 20 ? 9 : 10;
  return new Writer()
    .int(1, irVersion)
    .string(2, opts.producer ?? 'bulwark')
    .message(7, (gw) => {
      for (const n of g.nodes) gw.message(1, (nw) => writeNode(nw, n));
      gw.string(2, model.name);
      for (const t of g.inits) gw.message(5, (tw) => writeTensor(tw, t));
      gw.message(11, (vw) => writeValueInfo(vw, 'input', [batch, ...(inShape as number[])]));
      gw.message(12, (vw) => writeValueInfo(vw, 'probabilities', [batch, ...outShape]));
    })
    .message(8, (ow) => ow.string(1, '').int(2, opset))
    .finish();
}

/** Exports and writes to `path` through a temporary file and a rename, so readers never see half a model. */
export async function saveOnnx(model: LayersModel, path: string, opts: ExportOnnxOptions = {}): Promise<void> {
  const bytes = exportToOnnx(model, opts);
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw new BulwarkError('E_OUTPUT', `could not write ONNX model to '${path}': ${(e as Error).message}`, { cause: e });
  }
}
