import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BulwarkError, isBulwarkError } from '../../core/errors.js';
import type { Predictor } from '../../core/model.js';
import type { Samples } from '../../core/samples.js';

export interface OipServerOptions {
  /** Model name in the URL path: letters, digits, '.', '_' and '-'. */
  name: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1: a test server should not listen on every interface. */
  host?: string;
}

export interface OipServer {
  /** The model's endpoint, `http://host:port/v2/models/NAME`, ready for connectHttpModel. */
  readonly url: string;
  /** `http://host:port`, for the health routes. */
  readonly baseUrl: string;
  close(): Promise<void>;
}

const MAX_BODY = 32 * 1024 * 1024;
const VERSION = '1';

/**
 * A minimal Open Inference Protocol v2 server (REST, JSON tensors only) around one
 * predictor, for tests and examples. It answers bad requests with 4xx and a
 * `{"error": …}` body and never lets a request bring the process down.
 */
export async function serveOip(model: Predictor, opts: OipServerOptions): Promise<OipServer> {
  if (!/^[A-Za-z0-9._-]+$/.test(opts.name)) {
    throw new BulwarkError('E_USAGE', `model name '${opts.name}' must use only letters, digits, '.', '_' and '-'`);
  }
  const host = opts.host ?? '127.0.0.1';
  const { inputShape, numClasses } = model.info;
  const metadata = {
    name: opts.name,
    versions: [VERSION],
    platform: 'bulwark',
    inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, ...inputShape] }],
    outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [-1, numClasses] }],
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname.replace(/\/+$/, '');
    const method = req.method ?? 'GET';
    if (path === '/v2/health/live') return only(method, 'GET', res, () => send(res, 200, { live: true }));
    if (path === '/v2/health/ready') return only(method, 'GET', res, () => send(res, 200, { ready: true }));
    if (path === '/v2') return only(method, 'GET', res, () => send(res, 200, { name: 'bulwark', version: VERSION, extensions: [] }));
    const m = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(\/ready|\/infer)?$/.exec(path);
    if (!m) return send(res, 404, { error: `no route ${method} ${path}` });
    const name = decodeURIComponent(m[1]);
    if (name !== opts.name) return send(res, 404, { error: `unknown model '${name}'; this server serves '${opts.name}'` });
    if (m[2] !== undefined && decodeURIComponent(m[2]) !== VERSION) {
      return send(res, 404, { error: `model '${name}' has no version '${m[2]}'; it has version ${VERSION}` });
    }
    if (m[3] === undefined) return only(method, 'GET', res, () => send(res, 200, metadata));
    if (m[3] === '/ready') return only(method, 'GET', res, () => send(res, 200, { name, ready: true }));
    if (method !== 'POST') return notAllowed(res, 'POST');

    const body = await readBody(req, res);
    if (body === undefined) return;
    const parsed = parseInfer(body, inputShape);
    if (typeof parsed === 'string') return send(res, 400, { error: parsed });
    let probs;
    try {
      probs = await model.predict(parsed.samples);
    } catch (e) {
      const bad = isBulwarkError(e) && (e.code === 'E_DATA_SHAPE' || e.code === 'E_DATA_VALUE');
      return send(res, bad ? 400 : 500, { error: e instanceof Error ? e.message : String(e) });
    }
    send(res, 200, {
      model_name: name,
      model_version: VERSION,
      ...(parsed.id !== undefined ? { id: parsed.id } : {}),
      outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [...probs.shape], data: Array.from(probs.data) }],
    });
  };

  const server = createServer((req, res) => {
    req.on('error', () => res.destroy());
    route(req, res).catch((e: unknown) => {
      if (!res.headersSent) send(res, 500, { error: e instanceof Error ? e.message : String(e) });
      else res.destroy();
    });
  });
  // A malformed request line or a reset socket must not surface as an uncaught error.
  server.on('clientError', (_e, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    url: `${baseUrl}/v2/models/${opts.name}`,
    baseUrl,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((e) => (e ? reject(e) : resolve()));
        // fetch keeps connections alive; without this close() would wait for them to idle out.
        server.closeAllConnections();
      }),
  };
}

/** A tensor request checked against the model: the samples, or what is wrong with it. */
function parseInfer(body: string, inputShape: readonly number[]): { samples: Samples; id?: string } | string {
  let req: unknown;
  try {
    req = JSON.parse(body);
  } catch (e) {
    return `the body is not valid JSON: ${e instanceof Error ? e.message : String(e)}`;
  }
  const id = asRecord(req)?.id;
  const inputs = asRecord(req)?.inputs;
  if (!Array.isArray(inputs)) return `the request needs an 'inputs' array`;
  if (inputs.length !== 1) return `the request has ${inputs.length} inputs; the model takes exactly one, named 'input'`;
  const input = asRecord(inputs[0]);
  if (!input) return `inputs[0] must be an object with name, shape, datatype and data`;
  if (input.name !== 'input') return `unknown input '${String(input.name)}'; the model's input is named 'input'`;
  if (input.datatype !== 'FP32') return `input 'input' has datatype ${JSON.stringify(input.datatype)}; it must be FP32`;
  const shape = input.shape;
  const want = `[n, ${inputShape.join(', ')}]`;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    return `input shape ${quote(shape)} is not a list of non-negative integers; it must be ${want}`;
  }
  const sample = shape.slice(1) as number[];
  if (sample.length !== inputShape.length || sample.some((d, i) => d !== inputShape[i])) {
    return `input shape [${shape.join(', ')}] does not match the model's ${want}`;
  }
  if (!Array.isArray(input.data)) return `input 'input' needs a 'data' array (binary tensor data is not supported)`;
  const flat = (input.data as unknown[]).flat(Infinity);
  const size = (shape as number[]).reduce((a, b) => a * b, 1);
  if (flat.length !== size) return `input shape [${shape.join(', ')}] needs ${size} values but data holds ${flat.length}`;
  const data = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    const v = flat[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) return `input value ${i} is ${quote(v)}, not a finite number`;
    data[i] = v;
  }
  return { samples: { data, shape: shape as number[] }, id: typeof id === 'string' ? id : undefined };
}

/** The body as text, or undefined once a 413 has been sent or the client went away. */
function readBody(req: IncomingMessage, res: ServerResponse): Promise<string | undefined> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (v: string | undefined): void => {
      if (!done) resolve(v);
      done = true;
    };
    const tooLarge = (): void => {
      res.setHeader('connection', 'close');
      send(res, 413, { error: `the request body is over ${MAX_BODY / 1024 / 1024} MB` });
      // Swallow the rest so the client can read the 413 instead of a reset connection;
      // the server's requestTimeout still bounds a client that never stops sending.
      req.resume();
      finish(undefined);
    };
    if (Number(req.headers['content-length'] ?? 0) > MAX_BODY) return tooLarge();
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > MAX_BODY) return tooLarge();
      chunks.push(chunk);
    });
    req.on('end', () => finish(Buffer.concat(chunks).toString('utf8')));
    req.on('close', () => finish(undefined));
  });
}

function only(method: string, allowed: string, res: ServerResponse, handle: () => void): void {
  if (method === allowed || (allowed === 'GET' && method === 'HEAD')) handle();
  else notAllowed(res, allowed);
}

function notAllowed(res: ServerResponse, allowed: string): void {
  res.setHeader('allow', allowed);
  send(res, 405, { error: `method not allowed; use ${allowed}` });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function quote(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}
