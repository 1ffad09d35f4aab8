import { BulwarkError } from '../../core/errors.js';
import { checkInputShape, type ModelInfo, type Predictor } from '../../core/model.js';
import { sampleCount, sliceSamples, type Samples } from '../../core/samples.js';

/**
 * How to read what the server returns. 'auto' keeps rows that already are probability
 * vectors (one-hot label answers included) and applies softmax otherwise.
 */
export type HttpOutputPolicy = 'auto' | 'probabilities' | 'logits';

export interface HttpModelOptions {
  /** Model name, when `url` is the server's base URL rather than `/v2/models/NAME`. */
  name?: string;
  /** Model version, when not given in the URL. */
  version?: string;
  /** Default 'auto'. */
  output?: HttpOutputPolicy;
  /** Rows per request. Default 256. */
  maxBatch?: number;
  /** Per request, connect to last byte. Default 10000. */
  timeoutMs?: number;
  headers?: Record<string, string>;
  /** Sent as `Authorization: Bearer KEY`. */
  apiKey?: string;
  /** Extra attempts after a connection error, 502/503/504 or 429. Default 2. */
  retries?: number;
  /** Longest Retry-After wait honoured on 429; a longer one fails at once. Default 5000. */
  maxRetryAfterMs?: number;
}

/** A black-box model: predict only, with the cost of its use counted. */
export interface HttpModel extends Predictor {
  /** Samples sent for inference, retried attempts included: what a server's budget sees. */
  readonly queries: number;
  /** Inference requests sent, retried attempts included; the metadata request is not counted. */
  readonly requests: number;
}

const QUOTE = 200;
const BACKOFF_MS = 100;

export async function connectHttpModel(url: string, opts: HttpModelOptions = {}): Promise<HttpModel> {
  const endpoint = modelEndpoint(url, opts);
  const call = caller(endpoint, opts);
  const policy = opts.output ?? 'auto';
  if (!['auto', 'probabilities', 'logits'].includes(policy)) {
    throw new BulwarkError('E_USAGE', `output must be 'auto', 'probabilities' or 'logits', not '${String(policy)}'`);
  }
  const wantBatch = intOption(opts.maxBatch ?? 256, 'maxBatch', 1);
  const meta = parseMetadata(endpoint, await call('GET', endpoint));
  const maxBatch = meta.fixedBatch ? 1 : wantBatch;
  const info: ModelInfo = { name: endpoint, engine: 'http', inputShape: meta.inputShape, numClasses: meta.numClasses };
  let queries = 0;
  let requests = 0;

  const model: HttpModel = {
    info,
    get queries() {
      return queries;
    },
    get requests() {
      return requests;
    },
    async predict(x: Samples): Promise<Samples> {
      checkInputShape(model, x);
      for (let i = 0; i < x.data.length; i++) {
        if (!Number.isFinite(x.data[i])) {
          throw new BulwarkError('E_DATA_VALUE', `input value ${i} is ${x.data[i]}; a remote model can only be sent finite numbers`);
        }
      }
      const n = sampleCount(x);
      const k = meta.numClasses;
      const out = new Float32Array(n * k);
      for (let start = 0; start < n; start += maxBatch) {
        const chunk = sliceSamples(x, start, start + maxBatch);
        const rows = sampleCount(chunk);
        const body = JSON.stringify({
          inputs: [{ name: meta.inputName, shape: [rows, ...meta.inputShape], datatype: meta.datatype, data: Array.from(chunk.data) }],
        });
        const answer = await call('POST', `${endpoint}/infer`, body, () => {
          requests += 1;
          queries += rows;
        });
        out.set(parseOutputs(endpoint, answer, meta.outputName, rows * k), start * k);
      }
      return { data: applyPolicy(out, k, policy), shape: [n, k] };
    },
  };
  return model;
}

function modelEndpoint(raw: string, opts: HttpModelOptions): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new BulwarkError('E_USAGE', `'${raw}' is not a valid URL; give http(s)://host:port/v2/models/NAME`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new BulwarkError('E_USAGE', `'${raw}' must use http or https, not ${u.protocol}`);
  }
  // Credentials in the URL would end up in error messages and reports; fetch refuses them anyway.
  if (u.username || u.password) {
    throw new BulwarkError('E_USAGE', `'${u.host}': put credentials in apiKey or headers, not in the URL`);
  }
  // Path segments stay percent-encoded as the URL parser left them; only option values are encoded.
  const path = u.pathname.replace(/\/+$/, '');
  const m = /^(.*)\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?$/.exec(path);
  const optName = opts.name !== undefined && opts.name !== '' ? encodeURIComponent(opts.name) : undefined;
  if (m && optName !== undefined && optName !== m[2]) {
    throw new BulwarkError('E_USAGE', `the URL names model '${m[2]}' but the name option says '${opts.name}'; give one`);
  }
  const name = m ? m[2] : optName;
  if (name === undefined) {
    throw new BulwarkError('E_USAGE', `'${raw}' does not name a model: give .../v2/models/NAME or the name option`);
  }
  const version = m?.[3] ?? (opts.version !== undefined ? encodeURIComponent(opts.version) : undefined);
  return `${u.origin}${m ? m[1] : path}/v2/models/${name}${version !== undefined ? `/versions/${version}` : ''}`;
}

interface Metadata {
  inputName: string;
  datatype: 'FP32' | 'FP64';
  inputShape: number[];
  /** The server takes exactly one sample per request (shape [1, ...], no -1). */
  fixedBatch: boolean;
  outputName: string;
  numClasses: number;
}

function parseMetadata(endpoint: string, body: unknown): Metadata {
  const bad = (why: string): BulwarkError =>
    new BulwarkError('E_REMOTE', `${endpoint} answered with model metadata Bulwark cannot use: ${why}`);
  const m = asRecord(body);
  const inputs = m?.inputs;
  const outputs = m?.outputs;
  if (!Array.isArray(inputs) || !Array.isArray(outputs)) throw notOip(endpoint, body, 'no inputs/outputs in the metadata');
  if (inputs.length !== 1) throw bad(`it has ${inputs.length} inputs; only single-input models are supported`);
  if (outputs.length < 1) throw bad('it declares no outputs');
  const input = asRecord(inputs[0]);
  const output = asRecord(outputs[0]);
  if (typeof input?.name !== 'string' || typeof output?.name !== 'string') throw bad('an input or output has no name');
  if (input.datatype !== 'FP32' && input.datatype !== 'FP64') {
    throw bad(`input '${input.name}' has datatype ${String(input.datatype)}; FP32 or FP64 is needed`);
  }
  const shape = intShape(input.shape);
  if (!shape || shape.length < 2) throw bad(`input shape ${JSON.stringify(input.shape)} is not [-1, ...sample shape]`);
  const fixedBatch = shape[0] === 1;
  if (shape[0] !== -1 && !fixedBatch) throw bad(`input shape [${shape.join(', ')}] has no batch dimension (-1 or 1 first)`);
  if (shape.slice(1).some((d) => d <= 0)) throw bad(`input shape [${shape.join(', ')}] has variable dimensions after the batch`);
  const outShape = intShape(output.shape);
  const numClasses = outShape?.[outShape.length - 1] ?? -1;
  if (numClasses <= 0) throw bad(`output '${output.name}' shape ${JSON.stringify(output.shape)} does not give the class count last`);
  return { inputName: input.name, datatype: input.datatype, inputShape: shape.slice(1), fixedBatch, outputName: output.name, numClasses };
}

function parseOutputs(endpoint: string, body: unknown, name: string, expected: number): Float32Array {
  const outputs = asRecord(body)?.outputs;
  if (!Array.isArray(outputs) || outputs.length === 0) throw notOip(endpoint, body, 'no outputs');
  const chosen = asRecord(outputs.find((o) => asRecord(o)?.name === name) ?? outputs[0]);
  if (!Array.isArray(chosen?.data)) throw notOip(endpoint, body, 'the output has no data array');
  const flat = (chosen.data as unknown[]).flat(Infinity);
  if (flat.length !== expected) {
    throw new BulwarkError(
      'E_REMOTE',
      `${endpoint} answered with ${flat.length} output values where ${expected} were expected ` +
        `(rows × classes); the server's model does not match its metadata`,
    );
  }
  const out = new Float32Array(expected);
  for (let i = 0; i < expected; i++) {
    const v = flat[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new BulwarkError('E_REMOTE', `${endpoint} answered with a non-numeric output value at position ${i}: ${quote(v)}`);
    }
    out[i] = v;
  }
  return out;
}

function applyPolicy(m: Float32Array, k: number, policy: HttpOutputPolicy): Float32Array {
  if (policy === 'probabilities' || (policy === 'auto' && allProbabilityRows(m, k))) return m;
  for (let r = 0; r < m.length; r += k) {
    let max = -Infinity;
    for (let j = 0; j < k; j++) max = Math.max(max, m[r + j]);
    let sum = 0;
    for (let j = 0; j < k; j++) sum += Math.exp(m[r + j] - max);
    for (let j = 0; j < k; j++) m[r + j] = Math.exp(m[r + j] - max) / sum;
  }
  return m;
}

// Decided over the whole answer: softmaxing only some rows would mix two scales in one result.
function allProbabilityRows(m: Float32Array, k: number): boolean {
  for (let r = 0; r < m.length; r += k) {
    let sum = 0;
    for (let j = 0; j < k; j++) {
      const v = m[r + j];
      if (v < -1e-6 || v > 1 + 1e-6) return false;
      sum += v;
    }
    if (Math.abs(sum - 1) > 1e-3) return false;
  }
  return true;
}

type Call = (method: 'GET' | 'POST', url: string, body?: string, onSend?: () => void) => Promise<unknown>;

/** One logical call: retried where a retry cannot do harm, answered as parsed JSON. */
function caller(endpoint: string, opts: HttpModelOptions): Call {
  const timeoutMs = intOption(opts.timeoutMs ?? 10000, 'timeoutMs', 1);
  const retries = intOption(opts.retries ?? 2, 'retries', 0);
  const maxRetryAfterMs = intOption(opts.maxRetryAfterMs ?? 5000, 'maxRetryAfterMs', 0);
  const base: Record<string, string> = { accept: 'application/json', ...opts.headers };
  if (opts.apiKey !== undefined) base.authorization = `Bearer ${opts.apiKey}`;
  try {
    new Headers(base);
  } catch (e) {
    // Caught here, fetch would report it as a failure to reach the server.
    throw new BulwarkError('E_USAGE', `invalid header: ${e instanceof Error ? e.message : String(e)}`);
  }

  return async (method, url, body, onSend) => {
    const headers = body === undefined ? base : { ...base, 'content-type': 'application/json' };
    for (let attempt = 0; ; attempt++) {
      const last = attempt >= retries;
      const backoff = BACKOFF_MS * 2 ** attempt;
      let res: Response;
      let text: string;
      onSend?.();
      try {
        res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(timeoutMs) });
        text = await res.text();
      } catch (e) {
        if (isTimeout(e)) {
          throw new BulwarkError('E_TIMEOUT', `${url} did not answer within ${timeoutMs} ms (timeoutMs)`, { cause: e });
        }
        if (last) throw new BulwarkError('E_REMOTE', `cannot reach ${url}: ${reason(e)}`, { cause: e });
        await sleep(backoff);
        continue;
      }
      if (res.status === 429) {
        const wait = retryAfterMs(res.headers.get('retry-after')) ?? backoff;
        if (last || wait > maxRetryAfterMs) {
          const asked =
            wait > maxRetryAfterMs ? `asks to wait ${wait} ms, over maxRetryAfterMs ${maxRetryAfterMs}` : `still refuses after ${attempt + 1} attempts`;
          throw new BulwarkError('E_REMOTE', `${url}: the server is rate limiting (429) and ${asked}; slow down or raise its limit`);
        }
        await sleep(wait);
        continue;
      }
      if ((res.status === 502 || res.status === 503 || res.status === 504) && !last) {
        await sleep(backoff);
        continue;
      }
      if (!res.ok) {
        const detail = errorText(text);
        throw new BulwarkError('E_REMOTE', `${url} answered ${res.status} ${res.statusText}${detail ? `: ${detail}` : ''}`);
      }
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw notOip(endpoint, text, 'the body is not JSON');
      }
    }
  };
}

function notOip(endpoint: string, body: unknown, why: string): BulwarkError {
  return new BulwarkError(
    'E_REMOTE',
    `${endpoint} answered with something that is not an Open Inference Protocol response (${why}): ${quote(body)}`,
  );
}

function errorText(text: string): string {
  try {
    const e = asRecord(JSON.parse(text))?.error;
    if (e !== undefined) return quote(e);
  } catch {
    // Not JSON: quote the raw text below.
  }
  return quote(text.trim());
}

function quote(v: unknown): string {
  const s = typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  return s.length > QUOTE ? `${s.slice(0, QUOTE)}…` : s;
}

function retryAfterMs(h: string | null): number | undefined {
  if (h === null) return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(h)) return Math.round(Number(h) * 1000);
  const date = Date.parse(h);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function isTimeout(e: unknown): boolean {
  return e instanceof Error && (e.name === 'TimeoutError' || (e.cause instanceof Error && e.cause.name === 'TimeoutError'));
}

/** fetch hides the useful part (ECONNREFUSED, ENOTFOUND…) in its cause. */
function reason(e: unknown): string {
  const cause = e instanceof Error ? e.cause : undefined;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return typeof code === 'string' && !cause.message.includes(code) ? `${code} ${cause.message}` : cause.message;
  }
  return e instanceof Error ? e.message : String(e);
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function intShape(v: unknown): number[] | undefined {
  return Array.isArray(v) && v.every((d) => Number.isInteger(d)) ? (v as number[]) : undefined;
}

function intOption(v: number, what: string, min: number): number {
  if (!Number.isInteger(v) || v < min) throw new BulwarkError('E_USAGE', `${what} must be an integer of at least ${min}, not ${v}`);
  return v;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
