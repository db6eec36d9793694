// Errors named after the API contract's codes: every error answer is
// {"error": {"code", "message"}}; a proxy's HTML page becomes BadGateway, GatewayTimeout or a
// JobstoreError with its status and first bytes.

/** Base of every error the client throws. */
export class JobstoreError extends Error {
  /** @param {string} message @param {{status?: number, code?: string, body?: any}} [info] */
  constructor(message, { status = 0, code = 'error', body = {} } = {}) {
    super(message);
    this.name = new.target.name;
    /** HTTP status (0: no answer). */
    this.status = status;
    /** The contract's error code, e.g. "invalid_transition". */
    this.code = code;
    /** The decoded error body ({} when none). */
    this.body = body;
  }
}

const byCode = {};
const define = (name, code) => {
  const cls = { [name]: class extends JobstoreError {} }[name];
  cls.code = code;
  byCode[code] = cls;
  return cls;
};
export const InvalidArgument = define('InvalidArgument', 'invalid_argument');
export const Unauthenticated = define('Unauthenticated', 'unauthenticated');
export const Forbidden = define('Forbidden', 'forbidden');
export const NotFound = define('NotFound', 'not_found');
export const InvalidTransition = define('InvalidTransition', 'invalid_transition');
export const AlreadyExists = define('AlreadyExists', 'already_exists');
export const VersionMismatch = define('VersionMismatch', 'version_mismatch');
export const Truncated = define('Truncated', 'truncated');
export const PayloadTooLarge = define('PayloadTooLarge', 'payload_too_large');
export const IdempotencyKeyReused = define('IdempotencyKeyReused', 'idempotency_key_reused');
export const Unavailable = define('Unavailable', 'unavailable');
export const BadGateway = define('BadGateway', 'bad_gateway');
export const GatewayTimeout = define('GatewayTimeout', 'gateway_timeout');
/** The server could not be reached (after the retries the call allows). */
export const ConnectionFailed = define('ConnectionFailed', 'connection_failed');
/** waitForHitlResponse gave up before anyone answered. */
export const HitlTimeout = define('HitlTimeout', 'hitl_wait_timeout');

const byStatus = { 502: BadGateway, 503: Unavailable, 504: GatewayTimeout };

/** The error for an answer with status >= 400. @returns {JobstoreError} */
export function errorFromResponse(status, body, text) {
  const error = body && typeof body === 'object' && body.error && typeof body.error === 'object'
    ? body.error : {};
  const cls = byCode[error.code] || byStatus[status] || JobstoreError;
  let message = typeof error.message === 'string' ? error.message : '';
  if (!message) {
    const first = (text || '').slice(0, 200).trim();
    message = `HTTP ${status}` + (first ? `: ${first}` : '');
  }
  return new cls(message, {
    status, code: error.code || cls.code || 'error',
    body: body && typeof body === 'object' ? body : {},
  });
}

/** The error a refused entry of POST /jobs/finish stands for ({job_id, status, error}). */
export function finishError(result) {
  return errorFromResponse(result.status, { error: result.error }, '');
}
