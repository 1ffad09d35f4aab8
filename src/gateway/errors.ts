/** What became of a request: the label metrics and the audit log use. */
export type Outcome =
  | 'ok'
  | 'unauthorized'
  | 'forbidden'
  | 'suspended'
  | 'rate_limited'
  | 'budget_exhausted'
  | 'invalid'
  | 'too_large'
  | 'unsupported_media'
  | 'not_found'
  | 'method_not_allowed'
  | 'unavailable'
  | 'error';

/** An answer other than 2xx, with the body `{"error": message}`. */
export class GatewayError extends Error {
  constructor(
    readonly status: number,
    readonly outcome: Outcome,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'GatewayError';
  }
}

export const invalid = (message: string): GatewayError => new GatewayError(400, 'invalid', message);
export const notFound = (message: string): GatewayError => new GatewayError(404, 'not_found', message);
