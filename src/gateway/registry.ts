import { BulwarkError, type Predictor } from '../core/index.js';
import { initTfjs, openModel, type ModelCard } from '../engines/index.js';
import { loadPublicKey, verifyPath } from '../provenance/index.js';
import { notFound, GatewayError } from './errors.js';
import type { GatewayStore, LiveVersion } from './store/types.js';

export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface ModelVersion {
  name: string;
  version: string;
  model: Predictor;
  card?: ModelCard;
  /** What it was loaded from: a directory, a file or a URL. */
  source: string;
  /** How it was admitted: its signature verified, or --allow-unsigned. */
  admitted: 'signature' | 'unsigned';
  /** The signed subject's digest, when a signature verified. */
  sha256?: string;
  loadedAt: string;
}

export interface LoadVersionOptions {
  name: string;
  version: string;
  /** Public key (PEM file) and signature bundle: the model loads only when they verify. */
  pub?: string;
  sig?: string;
  /** Loads without a signature: for development only. */
  allowUnsigned?: boolean;
  /** API key for a remote (URL) model. */
  apiKey?: string;
}

/** Opens a model for serving, refusing it unless its signature verifies (or unsigned models are allowed). */
export async function loadModelVersion(spec: string, opts: LoadVersionOptions): Promise<ModelVersion> {
  checkName(opts.name, 'model name');
  checkName(opts.version, 'version');
  let sha256: string | undefined;
  const remote = /^https?:\/\//i.test(spec);
  if (opts.sig !== undefined || opts.pub !== undefined) {
    if (opts.sig === undefined || opts.pub === undefined) throw new BulwarkError('E_USAGE', `model ${spec}: give both --pub and --sig to verify it`);
    if (remote) throw new BulwarkError('E_USAGE', `model ${spec} is remote: its files cannot be verified here; use --allow-unsigned for a URL model`);
    const result = await verifyPath(spec, opts.sig, await loadPublicKey(opts.pub));
    if (!result.valid) {
      const changed = result.changes.slice(0, 5).map((c) => `${c.kind} ${c.path}`).join(', ');
      const why = [result.reason, changed].filter((x) => x).join(': ') || 'files differ from what was signed';
      throw new BulwarkError('E_DATA_VALUE', `model ${spec} fails its signature ${opts.sig}: ${why}; refusing to serve it`);
    }
    sha256 = result.subject?.sha256;
  } else if (!opts.allowUnsigned) {
    throw new BulwarkError('E_USAGE', `model ${spec} has no signature to check: give --pub KEY --sig SIG (made with 'bulwark sign'), or --allow-unsigned to serve it anyway`);
  }
  if (!remote && !/\.onnx$/i.test(spec)) await initTfjs();
  const opened = await openModel(spec, { apiKey: opts.apiKey });
  return {
    name: opts.name,
    version: opts.version,
    model: opened.model,
    ...(opened.card ? { card: opened.card } : {}),
    source: spec,
    admitted: sha256 !== undefined ? 'signature' : 'unsigned',
    ...(sha256 !== undefined ? { sha256 } : {}),
    loadedAt: new Date().toISOString(),
  };
}

function checkName(v: string, what: string): void {
  if (!NAME_RE.test(v)) throw new BulwarkError('E_USAGE', `${what} '${v}' must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`);
}

interface Entry {
  versions: Map<string, ModelVersion>;
  live: LiveVersion;
}

/**
 * The models a gateway serves, each in one or more versions, one of them live. A request takes
 * its ModelVersion once, at the start, and keeps it: switching the live version changes what the
 * next request gets and never touches one in flight (versions stay loaded).
 */
export class ModelRegistry {
  private readonly models = new Map<string, Entry>();

  constructor(private readonly store?: GatewayStore) {}

  /** Adds a loaded version; the first version of a model becomes live. */
  add(v: ModelVersion): void {
    const e = this.models.get(v.name);
    if (!e) {
      this.models.set(v.name, { versions: new Map([[v.version, v]]), live: { version: v.version, history: [], changedAt: v.loadedAt } });
      return;
    }
    if (e.versions.has(v.version)) throw new BulwarkError('E_USAGE', `model '${v.name}' already has a version '${v.version}'`);
    const first = [...e.versions.values()][0];
    const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
    if (!same(first.model.info.inputShape, v.model.info.inputShape) || first.model.info.numClasses !== v.model.info.numClasses) {
      throw new BulwarkError('E_DATA_SHAPE', `version '${v.version}' of '${v.name}' takes [${v.model.info.inputShape.join(', ')}] → ${v.model.info.numClasses} classes, unlike version '${first.version}'; serve it under another name`);
    }
    e.versions.set(v.version, v);
  }

  names(): string[] {
    return [...this.models.keys()];
  }

  has(name: string): boolean {
    return this.models.has(name);
  }

  versions(name: string): ModelVersion[] {
    return [...this.entry(name).versions.values()];
  }

  live(name: string): LiveVersion {
    const l = this.entry(name).live;
    return { ...l, history: [...l.history] };
  }

  /** The version to serve: the named one, or the live one. */
  resolve(name: string, version?: string): ModelVersion {
    const e = this.entry(name);
    const v = e.versions.get(version ?? e.live.version);
    if (!v) throw notFound(`model '${name}' has no version '${version}'; it has ${[...e.versions.keys()].join(', ')}`);
    return v;
  }

  /** Makes `version` live, here and (through the store) on every replica. */
  async switchLive(name: string, version: string): Promise<LiveVersion> {
    const e = this.entry(name);
    if (!e.versions.has(version)) throw notFound(`model '${name}' has no version '${version}'; it has ${[...e.versions.keys()].join(', ')}`);
    if (e.live.version === version) return this.live(name);
    const next: LiveVersion = { version, history: [...e.live.history, e.live.version].slice(-50), changedAt: new Date().toISOString() };
    await this.store?.setLive(name, next);
    e.live = next;
    return this.live(name);
  }

  /** Returns to the version that was live before the current one. */
  async rollback(name: string): Promise<LiveVersion> {
    const e = this.entry(name);
    const previous = e.live.history.at(-1);
    if (previous === undefined) throw new GatewayError(409, 'invalid', `model '${name}' has no earlier live version to roll back to`);
    if (!e.versions.has(previous)) throw new GatewayError(409, 'invalid', `model '${name}' was last on version '${previous}', which this server has not loaded`);
    const next: LiveVersion = { version: previous, history: e.live.history.slice(0, -1), changedAt: new Date().toISOString() };
    await this.store?.setLive(name, next);
    e.live = next;
    return this.live(name);
  }

  /**
   * Adopts the live versions recorded in the store (by another replica's admin call). A version
   * this process has not loaded is ignored, so a replica keeps serving what it can.
   */
  async sync(): Promise<void> {
    if (!this.store) return;
    for (const [name, e] of this.models) {
      const stored = await this.store.getLive(name);
      if (stored && e.versions.has(stored.version) && stored.changedAt >= e.live.changedAt) e.live = stored;
    }
  }

  private entry(name: string): Entry {
    const e = this.models.get(name);
    if (!e) throw notFound(`unknown model '${name.length > 80 ? `${name.slice(0, 80)}…` : name}'; this server serves ${this.names().map((n) => `'${n}'`).join(', ') || 'no models'}`);
    return e;
  }
}
