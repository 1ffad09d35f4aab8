import { F32, I32, V128, assemble, forLoop, op, type FuncDef } from './wasm-asm.js';

/**
 * The loops that training the dense layers spends its time in, written as WebAssembly SIMD
 * and run on the TF.js WebAssembly backend's own memory (the module imports it), so
 * tensors are read and written where they live. simd-kernels.ts registers them as TF.js
 * kernels. Each exists because the backend's way was measured slower on the digits MLP
 * (784-256-10, batch 128); the figures are in the comments of their callers.
 *
 * The module is assembled at start-up rather than shipped as a binary so that what runs
 * can be read here; it is about 2 kB.
 *
 * Every function takes byte offsets into memory and float32 data; none allocates.
 */
export interface SimdKernels {
  /** See `adam`. */
  adam(
    w: number, g: number, m: number, v: number, outW: number, outM: number, outV: number, n: number,
    beta1: number, oneMinusBeta1: number, beta2: number, oneMinusBeta2: number,
    biasCorrection1: number, biasCorrection2: number, epsilon: number, negLearningRate: number,
  ): void;
  transpose(src: number, dst: number, batch: number, rows: number, cols: number): void;
  /** A stored [m, k] (aRow = 4k, aK = 4). */
  gemm(a: number, b: number, c: number, bias: number, m: number, n: number, k: number, aRow: number, aK: number, relu: number): void;
  /** A stored transposed, [k, m] (aRow = 4, aK = 4m). */
  gemmT(a: number, b: number, c: number, bias: number, m: number, n: number, k: number, aRow: number, aK: number, relu: number): void;
  reluGrad(dy: number, y: number, mask: number, out: number, n: number): void;
  dropout(x: number, y: number, mask: number, state: number, n: number, threshold: number, scale: number): void;
}

const g = op.get;

/** Byte offset `base` + `i`, with both in locals. */
const at = (base: number, i: number) => [...g(base), ...g(i), ...op.i32Add];

/** END = 4n bytes and END4 = 4·(n rounded down to a multiple of 4): where the SIMD part stops. */
const ends = (n: number, end4: number, end: number) => [
  ...g(n), ...op.i32(2), ...op.i32Shl, ...op.set(end),
  ...g(n), ...op.i32(-4), ...op.i32And, ...op.i32(2), ...op.i32Shl, ...op.set(end4),
];

/**
 * adam(w, g, m, v, outW, outM, outV, n, β1, 1−β1, β2, 1−β2, 1−β1ᵗ, 1−β2ᵗ, ε, −lr), per element
 * exactly as tfjs-core's AdamOptimizer (same float32 operations in the same order):
 *   m' = m·β1 + g·(1−β1);  v' = v·β2 + g²·(1−β2)
 *   w' = ((m'/(1−β1ᵗ)) / (√(v'/(1−β2ᵗ)) + ε))·(−lr) + w
 */
function adam(): FuncDef {
  const [W, G, M, V, OW, OM, OV, N] = [0, 1, 2, 3, 4, 5, 6, 7];
  const SCALARS = 8; // β1, 1−β1, β2, 1−β2, 1−β1ᵗ, 1−β2ᵗ, ε, −lr
  const [I, END4, END] = [16, 17, 18];
  const SPLAT = 19; // the eight scalars splatted, same order
  const [GV, MV, VV] = [27, 28, 29];
  const [GS, MS, VS] = [30, 31, 32];
  /**
   * One update: `load`/`store` are the vector or scalar memory ops, `k(j)` pushes scalar j,
   * and the arithmetic ops are those of the same width.
   */
  const update = (w: { load: number[]; store: number[]; k: (j: number) => number[]; add: number[]; mul: number[]; div: number[]; sqrt: number[]; gl: number; ml: number; vl: number }) => [
    ...at(G, I), ...w.load, ...op.set(w.gl),
    ...at(OM, I),
    ...at(M, I), ...w.load, ...w.k(0), ...w.mul,
    ...g(w.gl), ...w.k(1), ...w.mul, ...w.add, ...op.tee(w.ml),
    ...w.store,
    ...at(OV, I),
    ...at(V, I), ...w.load, ...w.k(2), ...w.mul,
    ...g(w.gl), ...g(w.gl), ...w.mul, ...w.k(3), ...w.mul, ...w.add, ...op.tee(w.vl),
    ...w.store,
    ...at(OW, I),
    ...g(w.ml), ...w.k(4), ...w.div,
    ...g(w.vl), ...w.k(5), ...w.div, ...w.sqrt, ...w.k(6), ...w.add,
    ...w.div, ...w.k(7), ...w.mul,
    ...at(W, I), ...w.load, ...w.add,
    ...w.store,
  ];
  const vector = update({
    load: op.v128Load(), store: op.v128Store(), k: (j) => g(SPLAT + j),
    add: op.f32x4Add, mul: op.f32x4Mul, div: op.f32x4Div, sqrt: op.f32x4Sqrt, gl: GV, ml: MV, vl: VV,
  });
  const scalar = update({
    load: op.f32Load(), store: op.f32Store(), k: (j) => g(SCALARS + j),
    add: op.f32Add, mul: op.f32Mul, div: op.f32Div, sqrt: op.f32Sqrt, gl: GS, ml: MS, vl: VS,
  });
  const code = [
    ...ends(N, END4, END),
    ...Array.from({ length: 8 }, (_, j) => [...g(SCALARS + j), ...op.f32x4Splat, ...op.set(SPLAT + j)]).flat(),
    ...forLoop(I, op.i32(0), g(END4), 16, vector),
    ...forLoop(I, g(END4), g(END), 4, scalar),
  ];
  return { name: 'adam', params: [...Array(8).fill(I32), ...Array(8).fill(F32)], locals: [[3, I32], [11, V128], [3, F32]], code };
}

/**
 * transpose(src, dst, batch, rows, cols): each of `batch` row-major [rows, cols] matrices
 * into [cols, rows]. 4×4 tiles go through registers with lane shuffles; the ragged edge
 * is copied one value at a time.
 */
function transpose(): FuncDef {
  const [SRC, DST, BATCH, ROWS, COLS] = [0, 1, 2, 3, 4];
  const [B, I, J, ROWS4, COLS4, P, Q] = [5, 6, 7, 8, 9, 10, 11];
  const [R0, R1, R2, R3, T0, T1, T2, T3] = [12, 13, 14, 15, 16, 17, 18, 19];
  // byte address of (row, col) of matrix B in a [nr, nc] layout at base
  const addr = (base: number, row: number, col: number, nr: number, nc: number) => [
    ...g(base),
    ...g(B), ...g(nr), ...op.i32Mul, ...g(row), ...op.i32Add, ...g(nc), ...op.i32Mul, ...g(col), ...op.i32Add,
    ...op.i32(2), ...op.i32Shl, ...op.i32Add,
  ];
  /** base + k·(stride bytes) */
  const plus = (base: number, k: number, stride: number) =>
    k === 0 ? g(base) : [...g(base), ...g(stride), ...op.i32(4 * k), ...op.i32Mul, ...op.i32Add];
  const tile = [
    ...addr(SRC, I, J, ROWS, COLS), ...op.set(P),
    ...[R0, R1, R2, R3].flatMap((r, k) => [...plus(P, k, COLS), ...op.v128Load(), ...op.set(r)]),
    ...g(R0), ...g(R1), ...op.shuffle32([0, 4, 1, 5]), ...op.set(T0),
    ...g(R0), ...g(R1), ...op.shuffle32([2, 6, 3, 7]), ...op.set(T1),
    ...g(R2), ...g(R3), ...op.shuffle32([0, 4, 1, 5]), ...op.set(T2),
    ...g(R2), ...g(R3), ...op.shuffle32([2, 6, 3, 7]), ...op.set(T3),
    ...addr(DST, J, I, COLS, ROWS), ...op.set(Q),
    ...plus(Q, 0, ROWS), ...g(T0), ...g(T2), ...op.shuffle32([0, 1, 4, 5]), ...op.v128Store(),
    ...plus(Q, 1, ROWS), ...g(T0), ...g(T2), ...op.shuffle32([2, 3, 6, 7]), ...op.v128Store(),
    ...plus(Q, 2, ROWS), ...g(T1), ...g(T3), ...op.shuffle32([0, 1, 4, 5]), ...op.v128Store(),
    ...plus(Q, 3, ROWS), ...g(T1), ...g(T3), ...op.shuffle32([2, 3, 6, 7]), ...op.v128Store(),
  ];
  const one = [...addr(DST, J, I, COLS, ROWS), ...addr(SRC, I, J, ROWS, COLS), ...op.f32Load(), ...op.f32Store()];
  const code = [
    ...g(ROWS), ...op.i32(-4), ...op.i32And, ...op.set(ROWS4),
    ...g(COLS), ...op.i32(-4), ...op.i32And, ...op.set(COLS4),
    ...forLoop(B, op.i32(0), g(BATCH), 1, [
      ...forLoop(I, op.i32(0), g(ROWS4), 4, forLoop(J, op.i32(0), g(COLS4), 4, tile)),
      // the right edge of the tiled rows, then the bottom rows whole
      ...forLoop(I, op.i32(0), g(ROWS4), 1, forLoop(J, g(COLS4), g(COLS), 1, one)),
      ...forLoop(I, g(ROWS4), g(ROWS), 1, forLoop(J, op.i32(0), g(COLS), 1, one)),
    ]),
  ];
  return { name: 'transpose', params: Array(5).fill(I32), locals: [[7, I32], [8, V128]], code };
}

/**
 * gemm(a, b, c, bias, m, n, k, aRow, aK, relu): C[m, n] = A·B (+ bias[n]) (then ReLU if
 * relu ≠ 0). B is row-major [k, n]; element (i, p) of A is at a + i·aRow + p·aK bytes, so
 * A is read either as stored or as the transpose of what is stored, without moving it.
 *
 * C is computed in 4×8 tiles held in eight vector accumulators: each step along k loads
 * one row segment of B (two vectors) and broadcasts four values of A. B is read in place:
 * no packing (which is what makes XNNPACK slow for a B it has not seen before). The sums
 * run in the same order as XNNPACK's, so results match tf.matMul bit for bit. Tiles of 5
 * and 6 rows measured slower (the accumulators no longer fit in registers), as did loading
 * four steps of A as one vector.
 *
 * `columnsOfA` (gemmT): A stored transposed, so a tile's four values of A for one k are
 * adjacent: one vector load and four lane shuffles instead of four loads.
 */
function gemm(columnsOfA: boolean): FuncDef {
  const [A, Bm, C, BIAS, M, N, K, AROW, AK, RELU] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const R = 4; // rows per tile
  const [I, J, P, MR, N8, BP, NB] = [10, 11, 12, 13, 14, 15, 16];
  const aPtr = [17, 18, 19, 20];
  const [B0, B1, AV, AVEC] = [21, 22, 23, 24];
  const ACC = [25, 26, 27, 28, 29, 30, 31, 32]; // row r, half h at ACC[2r + h]
  const SUM = 33; // f32
  const rowOf = (r: number) => [...g(I), ...(r ? [...op.i32(r), ...op.i32Add] : [])];
  /** A tile of `rows` (R or 1) rows × 8 columns at (I, J). */
  const tile = (rows: number) => {
    const vectorA = columnsOfA && rows === 4;
    const code: number[] = [];
    for (let r = 0; r < rows; r++) {
      code.push(...g(A), ...rowOf(r), ...g(AROW), ...op.i32Mul, ...op.i32Add, ...op.set(aPtr[r]));
      code.push(...op.v128Zero, ...op.set(ACC[2 * r]), ...op.v128Zero, ...op.set(ACC[2 * r + 1]));
    }
    code.push(...g(Bm), ...g(J), ...op.i32(2), ...op.i32Shl, ...op.i32Add, ...op.set(BP));
    const step = [...g(BP), ...op.v128Load(0), ...op.set(B0), ...g(BP), ...op.v128Load(16), ...op.set(B1)];
    if (vectorA) step.push(...g(aPtr[0]), ...op.v128Load(), ...op.set(AVEC));
    for (let r = 0; r < rows; r++) {
      if (vectorA) step.push(...g(AVEC), ...g(AVEC), ...op.shuffle32([r, r, r, r]), ...op.set(AV));
      else step.push(...g(aPtr[r]), ...op.f32Load(), ...op.f32x4Splat, ...op.set(AV));
      for (let h = 0; h < 2; h++) {
        step.push(...g(ACC[2 * r + h]), ...g(AV), ...g(h ? B1 : B0), ...op.f32x4Mul, ...op.f32x4Add, ...op.set(ACC[2 * r + h]));
      }
      if (!vectorA || r === 0) step.push(...g(aPtr[r]), ...g(AK), ...op.i32Add, ...op.set(aPtr[r]));
    }
    step.push(...g(BP), ...g(NB), ...op.i32Add, ...op.set(BP));
    code.push(...forLoop(P, op.i32(0), g(K), 1, step));
    for (let r = 0; r < rows; r++) {
      for (let h = 0; h < 2; h++) {
        const acc = ACC[2 * r + h];
        code.push(
          ...g(BIAS), ...op.if,
          ...g(acc), ...g(BIAS), ...g(J), ...op.i32(2), ...op.i32Shl, ...op.i32Add, ...op.v128Load(16 * h), ...op.f32x4Add, ...op.set(acc),
          ...op.end,
          ...g(RELU), ...op.if, ...g(acc), ...op.v128Zero, ...op.f32x4Pmax, ...op.set(acc), ...op.end,
          // c + ((i + r)·n + j)·4
          ...g(C), ...rowOf(r), ...g(N), ...op.i32Mul, ...g(J), ...op.i32Add, ...op.i32(2), ...op.i32Shl, ...op.i32Add,
          ...g(acc), ...op.v128Store(16 * h),
        );
      }
    }
    return code;
  };
  // One value of C at (I, J), for the columns past the last multiple of 8.
  const A0 = aPtr[0];
  const single = [
    ...op.f32Zero, ...op.set(SUM),
    ...g(A), ...g(I), ...g(AROW), ...op.i32Mul, ...op.i32Add, ...op.set(A0),
    ...g(Bm), ...g(J), ...op.i32(2), ...op.i32Shl, ...op.i32Add, ...op.set(BP),
    ...forLoop(P, op.i32(0), g(K), 1, [
      ...g(SUM), ...g(A0), ...op.f32Load(), ...g(BP), ...op.f32Load(), ...op.f32Mul, ...op.f32Add, ...op.set(SUM),
      ...g(A0), ...g(AK), ...op.i32Add, ...op.set(A0),
      ...g(BP), ...g(NB), ...op.i32Add, ...op.set(BP),
    ]),
    ...g(BIAS), ...op.if,
    ...g(SUM), ...g(BIAS), ...g(J), ...op.i32(2), ...op.i32Shl, ...op.i32Add, ...op.f32Load(), ...op.f32Add, ...op.set(SUM),
    ...op.end,
    ...g(RELU), ...op.if, ...g(SUM), ...op.f32Zero, ...op.f32Max, ...op.set(SUM), ...op.end,
    ...g(C), ...g(I), ...g(N), ...op.i32Mul, ...g(J), ...op.i32Add, ...op.i32(2), ...op.i32Shl, ...op.i32Add,
    ...g(SUM), ...op.f32Store(),
  ];
  const code = [
    ...g(M), ...g(M), ...op.i32(R), ...op.i32RemU, ...op.i32Sub, ...op.set(MR),
    ...g(N), ...op.i32(-8), ...op.i32And, ...op.set(N8),
    ...g(N), ...op.i32(2), ...op.i32Shl, ...op.set(NB),
    // Loop order, as measured: for A·B one 8-column panel of B at a time (it stays in cache
    // across the row blocks; ~10% faster than rows outer); for Aᵀ·B row blocks outer.
    ...(columnsOfA
      ? forLoop(I, op.i32(0), g(MR), R, forLoop(J, op.i32(0), g(N8), 8, tile(R)))
      : forLoop(J, op.i32(0), g(N8), 8, forLoop(I, op.i32(0), g(MR), R, tile(R)))),
    ...forLoop(I, g(MR), g(M), 1, forLoop(J, op.i32(0), g(N8), 8, tile(1))),
    ...forLoop(I, op.i32(0), g(M), 1, forLoop(J, g(N8), g(N), 1, single)),
  ];
  return { name: columnsOfA ? 'gemmT' : 'gemm', params: Array(10).fill(I32), locals: [[11, I32], [12, V128], [1, F32]], code };
}

/**
 * reluGrad(dy, y, mask, out, n): out = y > 0 ? dy·mask : 0 (mask = 0: no mask). The
 * gradient through a ReLU whose output y went through inverted dropout, in one pass.
 */
function reluGrad(): FuncDef {
  const [DY, Y, MASK, OUT, N] = [0, 1, 2, 3, 4];
  const [I, END4, END] = [5, 6, 7];
  const V = 8;
  const S = 9;
  const vector = (masked: boolean) => forLoop(I, op.i32(0), g(END4), 16, [
    ...at(DY, I), ...op.v128Load(), ...(masked ? [...at(MASK, I), ...op.v128Load(), ...op.f32x4Mul] : []), ...op.set(V),
    ...at(OUT, I), ...g(V), ...at(Y, I), ...op.v128Load(), ...op.v128Zero, ...op.f32x4Gt, ...op.v128And, ...op.v128Store(),
  ]);
  const scalar = (masked: boolean) => forLoop(I, g(END4), g(END), 4, [
    ...at(DY, I), ...op.f32Load(), ...(masked ? [...at(MASK, I), ...op.f32Load(), ...op.f32Mul] : []), ...op.set(S),
    ...at(OUT, I), ...g(S), ...op.f32Zero, ...at(Y, I), ...op.f32Load(), ...op.f32Zero, ...op.f32Gt, ...op.select, ...op.f32Store(),
  ]);
  const code = [
    ...ends(N, END4, END),
    ...g(MASK), ...op.if, ...vector(true), ...scalar(true), ...op.else, ...vector(false), ...scalar(false), ...op.end,
  ];
  return { name: 'reluGrad', params: Array(5).fill(I32), locals: [[3, I32], [1, V128], [1, F32]], code };
}

/**
 * dropout(x, y, mask, state, n, threshold, scale): inverted dropout drawing its own random
 * numbers. Four xoshiro128** generators run side by side, one per SIMD lane; their state
 * (s0, s1, s2, s3, four lanes each: 16 words) is read from and written back to `state`.
 * Value i takes lane i mod 4 of step ⌊i/4⌋ and is kept when that 32-bit output, unsigned,
 * is ≥ threshold: mask = kept ? scale : 0, y = x·mask. `dropoutMaskJs` is the same in JS.
 */
function dropout(): FuncDef {
  const [X, Y, MASK, STATE, N, THRESHOLD, SCALE] = [0, 1, 2, 3, 4, 5, 6];
  const [I, END4, END] = [7, 8, 9];
  const [S0, S1, S2, S3, T, R, TH, SC, MV] = [10, 11, 12, 13, 14, 15, 16, 17, 18];
  const rotl = (v: number[], k: number) => [...v, ...op.i32(k), ...op.i32x4Shl, ...v, ...op.i32(32 - k), ...op.i32x4ShrU, ...op.v128Or];
  const xor = (a: number, b: number) => [...g(a), ...g(b), ...op.v128Xor, ...op.set(a)];
  /** One xoshiro128** step of the four lanes, leaving the mask vector in MV. */
  const next = [
    // r = rotl(s1·5, 7)·9;  t = s1 << 9
    ...rotl([...g(S1), ...op.i32(5), ...op.i32x4Splat, ...op.i32x4Mul], 7), ...op.i32(9), ...op.i32x4Splat, ...op.i32x4Mul, ...op.set(R),
    ...g(S1), ...op.i32(9), ...op.i32x4Shl, ...op.set(T),
    ...xor(S2, S0), ...xor(S3, S1), ...xor(S1, S2), ...xor(S0, S3), ...xor(S2, T),
    ...rotl(g(S3), 11), ...op.set(S3),
    ...g(R), ...g(TH), ...op.i32x4GeU, ...g(SC), ...op.v128And, ...op.set(MV),
  ];
  const code = [
    ...ends(N, END4, END),
    ...g(THRESHOLD), ...op.i32x4Splat, ...op.set(TH),
    ...g(SCALE), ...op.f32x4Splat, ...op.set(SC),
    ...[S0, S1, S2, S3].flatMap((s, k) => [...g(STATE), ...op.v128Load(16 * k), ...op.set(s)]),
    ...forLoop(I, op.i32(0), g(END4), 16, [
      ...next,
      ...at(MASK, I), ...g(MV), ...op.v128Store(),
      ...at(Y, I), ...g(MV), ...at(X, I), ...op.v128Load(), ...op.f32x4Mul, ...op.v128Store(),
    ]),
    // the last 1–3 values: one more step, its lanes stored one by one
    ...g(END4), ...g(END), ...op.i32LtU, ...op.if,
    ...next,
    ...[0, 1, 2].flatMap((lane) => [
      ...g(END4), ...op.i32(4 * lane), ...op.i32Add, ...g(END), ...op.i32LtU, ...op.if,
      ...at(MASK, END4), ...g(MV), ...op.f32x4ExtractLane(lane), ...op.f32Store(4 * lane),
      ...at(Y, END4), ...g(MV), ...op.f32x4ExtractLane(lane), ...at(X, END4), ...op.f32Load(4 * lane), ...op.f32Mul, ...op.f32Store(4 * lane),
      ...op.end,
    ]),
    ...op.end,
    ...[S0, S1, S2, S3].flatMap((s, k) => [...g(STATE), ...g(s), ...op.v128Store(16 * k)]),
  ];
  return { name: 'dropout', params: [...Array(6).fill(I32), F32], locals: [[3, I32], [9, V128]], code };
}

/** The kernels, instantiated on `memory`; null where WebAssembly SIMD is not available. */
export function simdKernels(memory: WebAssembly.Memory): SimdKernels | null {
  const bytes = assemble([adam(), transpose(), gemm(false), gemm(true), reluGrad(), dropout()]);
  if (!WebAssembly.validate(bytes)) return null;
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  return instance.exports as unknown as SimdKernels;
}

/**
 * `dropout`'s mask computed in JS, value for value (for backends without our kernels, and
 * inside tf.grad): advances `state` (16 words, as above) exactly as the kernel does.
 */
export function dropoutMaskJs(state: Uint32Array, n: number, threshold: number, scale: number): Float32Array {
  const mask = new Float32Array(n);
  const s = Int32Array.from(state);
  for (let i = 0; i < n; i += 4) {
    for (let lane = 0; lane < 4; lane++) {
      const s0 = s[lane];
      const s1 = s[4 + lane];
      let s2 = s[8 + lane];
      let s3 = s[12 + lane];
      const q = Math.imul(s1, 5);
      const r = Math.imul((q << 7) | (q >>> 25), 9) >>> 0;
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s[4 + lane] = s1 ^ s2;
      s[lane] = s0 ^ s3;
      s[8 + lane] = s2 ^ t;
      s[12 + lane] = (s3 << 11) | (s3 >>> 21);
      if (i + lane < n) mask[i + lane] = r >= threshold ? scale : 0;
    }
  }
  state.set(new Uint32Array(s.buffer));
  return mask;
}
