/**
 * Just enough of a WebAssembly encoder to write a few SIMD loops by hand (wasm-simd.ts):
 * value types, instructions as byte arrays, a counted loop, and a module that imports its
 * memory. Opcodes are those of the WebAssembly 2.0 core and fixed-width SIMD specs.
 */

export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const name = (s: string): number[] => [...uleb(s.length), ...Array.from(Buffer.from(s, 'utf8'))];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const simd = (code: number, ...imm: number[]) => [0xfd, ...uleb(code), ...imm];

/** Instructions. Memory accesses take an optional constant byte offset. */
export const op = {
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  tee: (i: number) => [0x22, ...uleb(i)],
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  if: [0x04, 0x40],
  else: [0x05],
  end: [0x0b],
  br: (depth: number) => [0x0c, ...uleb(depth)],
  brIf: (depth: number) => [0x0d, ...uleb(depth)],
  select: [0x1b],

  i32: (v: number) => [0x41, ...sleb(v)],
  i32LtU: [0x49],
  i32GeU: [0x4f],
  i32Add: [0x6a],
  i32Sub: [0x6b],
  i32Mul: [0x6c],
  i32RemU: [0x70],
  i32And: [0x71],
  i32Shl: [0x74],

  f32Zero: [0x43, 0, 0, 0, 0],
  f32Load: (offset = 0) => [0x2a, 2, ...uleb(offset)],
  f32Store: (offset = 0) => [0x38, 2, ...uleb(offset)],
  f32Gt: [0x5e],
  f32Sqrt: [0x91],
  f32Add: [0x92],
  f32Mul: [0x94],
  f32Div: [0x95],
  f32Max: [0x97],

  // Unaligned v128 accesses are legal; the alignment hint (16) only says what to expect.
  v128Load: (offset = 0) => simd(0x00, 4, ...uleb(offset)),
  v128Store: (offset = 0) => simd(0x0b, 4, ...uleb(offset)),
  v128Zero: simd(0x0c, ...Array(16).fill(0)),
  /** i8x16.shuffle picking four 32-bit lanes (0–3 from the first operand, 4–7 from the second). */
  shuffle32: (lanes: number[]) => simd(0x0d, ...lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3])),
  i32x4Splat: simd(0x11),
  f32x4Splat: simd(0x13),
  f32x4ExtractLane: (lane: number) => simd(0x1f, lane),
  i32x4GeU: simd(0x40),
  f32x4Gt: simd(0x44),
  v128And: simd(0x4e),
  v128Or: simd(0x50),
  v128Xor: simd(0x51),
  i32x4Shl: simd(0xab),
  i32x4ShrU: simd(0xad),
  i32x4Mul: simd(0xb5),
  f32x4Sqrt: simd(0xe3),
  f32x4Add: simd(0xe4),
  f32x4Mul: simd(0xe6),
  f32x4Div: simd(0xe7),
  f32x4Pmax: simd(0xeb),
};

/**
 * `for (i = start; i < end; i += step) body`, start and end being expressions, compared
 * unsigned. `body` must not branch out of the loop.
 */
export function forLoop(i: number, start: number[], end: number[], step: number, body: number[]): number[] {
  return [
    ...start, ...op.set(i),
    ...op.block, ...op.loop,
    ...op.get(i), ...end, ...op.i32GeU, ...op.brIf(1),
    ...body,
    ...op.get(i), ...op.i32(step), ...op.i32Add, ...op.set(i),
    ...op.br(0),
    ...op.end, ...op.end,
  ];
}

export interface FuncDef {
  name: string;
  params: number[];
  /** Runs of locals after the parameters: [count, type]. */
  locals: [number, number][];
  code: number[];
}

/**
 * A module of exported functions (no results) that imports its memory as env.memory, with
 * no size limits so that it accepts the memory whatever it has grown to.
 */
export function assemble(funcs: readonly FuncDef[]): Uint8Array<ArrayBuffer> {
  const type = (f: FuncDef) => [0x60, ...vec(f.params.map((t) => [t])), ...vec([])];
  const body = (f: FuncDef) => {
    const b = [...vec(f.locals.map(([n, t]) => [...uleb(n), t])), ...f.code, ...op.end];
    return [...uleb(b.length), ...b];
  };
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(funcs.map(type))),
    ...section(2, vec([[...name('env'), ...name('memory'), 0x02, 0x00, 0x00]])),
    ...section(3, vec(funcs.map((_, i) => uleb(i)))),
    ...section(7, vec(funcs.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]))),
    ...section(10, vec(funcs.map(body))),
  ]);
}
