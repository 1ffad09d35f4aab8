import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError, type Outcome } from '../errors.js';
import { shared } from './context.js';

const FASTIFY_CODES: Record<string, { status: number; outcome: Outcome; message?: (e: FastifyError) => string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, outcome: 'too_large', message: () => 'rule \'body size\': the request body is larger than this server accepts (validation.maxBodyBytes)' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, outcome: 'unsupported_media', message: () => "rule 'content type': send the request as 'content-type: application/json'" },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, outcome: 'invalid', message: () => "rule 'request': the body is empty; send an inference request as JSON" },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, outcome: 'invalid' },
  FST_ERR_CTP_EMPTY_TYPE: { status: 415, outcome: 'unsupported_media' },
  FST_ERR_CTP_INVALID_TYPE: { status: 415, outcome: 'unsupported_media' },
};

/** Records what the client is told in the request state, for the audit log and metrics. */
export function sendError(request: FastifyRequest, reply: FastifyReply, status: number, outcome: Outcome, message: string, headers: Record<string, string> = {}): FastifyReply {
  request.bulwark ??= { start: process.hrtime.bigint(), receivedAt: new Date().toISOString() };
  request.bulwark.outcome = outcome;
  request.bulwark.error = message;
  return reply.code(status).headers(headers).type('application/json').send({ error: message });
}

/**
 * Every failure becomes `{"error": …}`: 4xx for anything the client sent, 5xx only for the
 * server's own faults (a store that does not answer), never for bad input.
 */
export const errorsPlugin = shared('bulwark-errors', async (app: FastifyInstance) => {
  app.setErrorHandler((error: FastifyError | GatewayError | Error, request, reply) => {
    if (error instanceof GatewayError) return sendError(request, reply, error.status, error.outcome, error.message, error.headers);
    const fe = error as FastifyError;
    const known = fe.code ? FASTIFY_CODES[fe.code] : undefined;
    if (known) return sendError(request, reply, known.status, known.outcome, known.message?.(fe) ?? fe.message);
    if (fe.validation) return sendError(request, reply, 400, 'invalid', fe.message);
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) return sendError(request, reply, fe.statusCode, 'invalid', fe.message);
    request.log.error({ err: error }, 'request failed');
    return sendError(request, reply, 500, 'error', 'internal error; the server log has the details');
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.length > 120 ? `${request.url.slice(0, 120)}…` : request.url;
    return sendError(request, reply, 404, 'not_found', `no route ${request.method} ${path}`);
  });
});
