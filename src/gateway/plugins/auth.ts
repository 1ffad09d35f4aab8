import type { FastifyInstance } from 'fastify';
import { GatewayError } from '../errors.js';
import { keyId, keyMatches, presentedKey, type ApiKeyRecord } from '../keys.js';
import type { GatewayStore } from '../store/types.js';
import { ROUTE_SCOPE, shared } from './context.js';

export interface AuthOptions extends Record<string, unknown> {
  store: GatewayStore;
}

/** 403 for a key the monitoring suspended: says since when, why, and how an administrator lifts it. */
export function suspendedError(record: ApiKeyRecord): GatewayError {
  const r = record.restriction;
  return new GatewayError(
    403,
    'suspended',
    `key ${record.id} is suspended by the gateway's monitoring since ${r?.since} (${r?.by}: ${r?.reason}); an administrator can lift it with 'bulwark keys restore ${record.id}' or POST /admin/keys/${record.id}/restore`,
  );
}

const CHALLENGE = { 'www-authenticate': 'Bearer realm="bulwark"' };

/**
 * API keys: `Authorization: Bearer KEY` (or `x-api-key`). Every route but the health routes
 * needs a key, unknown routes included, so the server's surface cannot be probed without one.
 * The key is asked of the store on every request, and the stores answer as of their last commit
 * (the SQLite store's cache is cleared by any commit to its file, by any process), so a revocation
 * anywhere takes effect at the next request on every replica; the secret is compared in constant time.
 */
export const authPlugin = shared('bulwark-auth', async (app: FastifyInstance, opts: AuthOptions) => {
  app.addHook('onRequest', async (request) => {
    const kind = request.bulwark.kind;
    if (kind === 'health') return;
    const key = presentedKey(request.headers);
    if (key === undefined) throw new GatewayError(401, 'unauthorized', 'this route needs an API key: send "Authorization: Bearer KEY"', CHALLENGE);
    const id = keyId(key);
    let record = null;
    if (id !== undefined) {
      try {
        record = await opts.store.getKey(id);
      } catch (e) {
        request.log.error({ err: e }, 'key store failed');
        throw new GatewayError(503, 'unavailable', 'the key store is not answering; try again shortly');
      }
    }
    // One message for unknown, malformed, wrong and revoked keys: nothing to learn from the difference.
    if (!record || !keyMatches(key, record) || record.revokedAt !== null) {
      throw new GatewayError(401, 'unauthorized', 'the API key is not valid (unknown or revoked)', CHALLENGE);
    }
    request.bulwark.key = record;
    const need = kind ? ROUTE_SCOPE[kind] : null;
    if (need !== null && !record.scopes.includes(need)) {
      throw new GatewayError(403, 'forbidden', `key ${record.id} lacks the '${need}' scope this route needs (it has: ${record.scopes.join(', ')})`);
    }
    // A suspension is read here, with the key, so it holds on every replica from the next request.
    if (record.restriction?.suspended && (kind === 'infer' || kind === 'model')) throw suspendedError(record);
  });
});
