/** Every error the server sends: `{ error: { code, message, details } }` with the catalog's status. */
import type { FastifyError, FastifyReply } from 'fastify';
import { PlughostError } from '../errors';

export interface ErrorBody {
  error: { code: string; message: string; details: Record<string, unknown> };
}

export function errorBody(err: PlughostError): ErrorBody {
  return { error: { code: err.code, message: err.message, details: err.details } };
}

export function sendError(reply: FastifyReply, err: PlughostError): FastifyReply {
  return reply.status(err.status).type('application/json').send(errorBody(err));
}

/** Fastify's own errors (body limits, bad JSON, content types) in the same shape. */
export function fromFastifyError(err: FastifyError): { status: number; body: ErrorBody } {
  const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
  const code = err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 'PLUGHOST_ERR_BODY_TOO_LARGE'
    : err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'PLUGHOST_ERR_UNSUPPORTED_CONTENT_TYPE'
    : err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ? 'PLUGHOST_ERR_BAD_JSON'
    : err.validation ? 'PLUGHOST_ERR_BAD_BODY'
    : status >= 500 ? 'PLUGHOST_ERR_INTERNAL' : 'PLUGHOST_ERR_BAD_REQUEST';
  const message = status >= 500 ? 'internal server error' : err.message;
  return { status, body: { error: { code, message, details: {} } } };
}
