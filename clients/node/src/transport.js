// One HTTP exchange on node:http(s) with a keep-alive pool. fetch costs two to three times the
// client CPU per request (measured in bench/RESULTS.md, "The Node client's transport"), which on
// a shared machine is throughput taken from the server. SSE stays on fetch (one long request).
//
// The pool drops a connection idle for IDLE_MS, before the server's 5 s keep-alive timeout, so
// a reused connection is rarely one the server is closing; when it is (the write crosses the
// server's close), the error carries `reused` and `answered: false`, and the caller may repeat
// the request: nothing of it was read.

import http from 'node:http';
import https from 'node:https';
import { urlToHttpOptions } from 'node:url';

const IDLE_MS = 4000;

/** A keep-alive agent for baseUrl's protocol; idle connections close after IDLE_MS. */
export function makeAgent(protocol) {
  const Agent = protocol === 'https:' ? https.Agent : http.Agent;
  return new Agent({ keepAlive: true, timeout: IDLE_MS, scheduling: 'lifo' });
}

/**
 * The parts of baseUrl that every request shares, parsed once (http.request would parse the
 * URL string of each request anew): pass it to send with the request's path.
 */
export function origin(baseUrl) {
  const { protocol, hostname, port, auth, pathname } = urlToHttpOptions(new URL(baseUrl));
  return { protocol, hostname, port, auth, basePath: pathname.replace(/\/+$/, '') };
}

/**
 * Sends one request to `path` (below the origin's base path); resolves {status, contentType,
 * headers (a Headers, built when first read), text}. Rejects with the socket's error (err.code
 * such as ECONNREFUSED), with err.reused (the connection had served an earlier request) and
 * err.answered (a response had begun); on timeoutMs, a TimeoutError; on signal, its reason.
 */
export function send(origin, path, { method, headers, payload, timeoutMs, signal, agent }) {
  return new Promise((resolve, reject) => {
    const lib = origin.protocol === 'https:' ? https : http;
    let answered = false;
    let settled = false;
    const finish = (fn, value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      fn(value);
    };
    const req = lib.request({ protocol: origin.protocol, hostname: origin.hostname, port: origin.port,
      auth: origin.auth, path: origin.basePath + path, method, agent, headers: payload === undefined ? headers
        : { ...headers, 'content-length': Buffer.byteLength(payload) } });
    const onAbort = () => req.destroy(signal.reason);
    const timer = setTimeout(() => {
      const err = new Error(`no answer within ${timeoutMs} ms`);
      err.name = 'TimeoutError';
      req.destroy(err);
    }, timeoutMs);
    if (signal) {
      if (signal.aborted) { onAbort(); } else signal.addEventListener('abort', onAbort, { once: true });
    }
    req.on('error', (err) => {
      err.reused = req.reusedSocket;
      err.answered = answered;
      finish(reject, err);
    });
    req.on('response', (res) => {
      answered = true;
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { text += chunk; });
      res.on('error', (err) => { err.reused = req.reusedSocket; err.answered = true; finish(reject, err); });
      res.on('end', () => {
        let built;
        finish(resolve, { status: res.statusCode, contentType: res.headers['content-type'] || '', text,
          get headers() { return (built ??= toHeaders(res.headers)); } });
      });
    });
    req.end(payload);
  });
}

function toHeaders(raw) {
  const out = new Headers();
  for (const [name, value] of Object.entries(raw)) {
    if (Array.isArray(value)) for (const v of value) out.append(name, v);
    else if (value !== undefined) out.set(name, value);
  }
  return out;
}
