// A client for the jobstore REST API (v1) on node:http with a keep-alive pool (SSE on fetch):
// the same surface as the Python client (clients/python). Retries, with exponential backoff until the call's deadline
// (retryFor, 30 s): a 503 (jobstore wrote nothing) for every call; a lost connection and a
// proxy's 502/504 only for calls safe to repeat: reads, creates (each carries an
// Idempotency-Key, generated when none is given) and writes sent with ifMatch (a repeat of one
// that landed gets 412, never a second change). A request whose reused keep-alive connection
// closed before any answer byte is repeated whatever its kind (the server read none of it).

import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeAgent, origin, send } from './transport.js';
import { ConnectionFailed, HitlTimeout, JobstoreError, Truncated, Unavailable, errorFromResponse } from './errors.js';

const MAX_WAIT = 60; // the server's long-poll ceiling, seconds

// The fields that are set (one loop, no arrays: it runs for every entry of every request).
const present = (fields) => {
  const out = {};
  for (const key of Object.keys(fields)) {
    const value = fields[key];
    if (value !== undefined && value !== null) out[key] = value;
  }
  return out;
};
const jobPath = (id, suffix = '') => `/jobs/${encodeURIComponent(id)}${suffix}`;
const schedulePath = (id) => `/schedules/${encodeURIComponent(id)}`;
const clampWait = (wait) => (wait ? Math.min(wait, MAX_WAIT) : undefined);

export class JobstoreClient {
  /**
   * @param {string} [baseUrl] e.g. http://127.0.0.1:8000
   * @param {{token?: string, userId?: string, timeout?: number, retryFor?: number, backoff?: number}} [options]
   *   timeout: seconds a call that does not long-poll may take (a long-poll's wait is added).
   */
  constructor(baseUrl = 'http://127.0.0.1:8000', { token, userId, timeout = 30, retryFor = 30, backoff = 0.1 } = {}) {
    const url = new URL(baseUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError(`baseUrl must be http(s)://host:port, not ${baseUrl}`);
    }
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.token = token;
    this.userId = userId;
    this.timeout = timeout;
    this.retryFor = retryFor;
    this.backoff = backoff;
    this.agent = makeAgent(url.protocol);
    this.origin = origin(this.baseUrl);
  }

  /** Closes the pooled connections (idle ones close by themselves after 4 s). */
  close() { this.agent.destroy(); }

  /**
   * One request; resolves {status, body, headers}. Throws the contract's error for >= 400.
   * @param {string} method @param {string} path
   * @param {{body?: any, query?: Record<string, any>, headers?: Record<string, string|undefined>, safe?: boolean, wait?: number, signal?: AbortSignal}} [opts]
   */
  async request(method, path, { body, query, headers, safe = false, wait = 0, signal } = {}) {
    let target = path.startsWith('/healthz') || path.startsWith('/metrics') ? path : `/api/v1${path}`;
    if (query) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) {
        if (v === undefined || v === null) continue;
        for (const item of Array.isArray(v) ? v : [v]) params.append(k, String(item));
      }
      const qs = params.toString();
      if (qs) target += `?${qs}`;
    }
    const all = { accept: 'application/json', ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
      ...(this.userId ? { 'x-user-id': this.userId } : {}) };
    for (const [k, v] of Object.entries(headers || {})) if (v !== undefined) all[k.toLowerCase()] = v;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload !== undefined) all['content-type'] = 'application/json';
    safe = safe || 'if-match' in all;
    const deadline = Date.now() + this.retryFor * 1000;
    for (let attempt = 1; ; attempt++) {
      let response;
      try {
        response = await send(this.origin, target, { method, headers: all, payload, signal,
          timeoutMs: (this.timeout + wait) * 1000, agent: this.agent });
      } catch (err) {
        if (signal?.aborted) throw err; // the caller cancelled: no retry
        // Refused, or a reused connection the server closed before answering: nothing was done.
        // Otherwise the request may have been carried out: only a safe call goes again.
        const unsent = err?.code === 'ECONNREFUSED' || (err?.reused && !err?.answered &&
          (err?.code === 'ECONNRESET' || err?.code === 'EPIPE'));
        if ((safe || unsent) && Date.now() < deadline) {
          await this.#pause(attempt, signal);
          continue;
        }
        throw new ConnectionFailed(`${method} ${path}: ${err?.message}`, { code: 'connection_failed' });
      }
      const { text, status } = response;
      let decoded = null;
      if (text && response.contentType.includes('json')) {
        try { decoded = JSON.parse(text); } catch { decoded = null; }
      }
      if ((status === 503 || ((status === 502 || status === 504) && safe)) && Date.now() < deadline) {
        await this.#pause(attempt, signal);
        continue;
      }
      if (status >= 400) throw errorFromResponse(status, decoded, text);
      return { status, body: decoded, get headers() { return response.headers; } };
    }
  }

  async #pause(attempt, signal) {
    const delay = Math.min(this.backoff * 2 ** (attempt - 1), 5);
    await sleep((delay + Math.random() * delay / 2) * 1000, undefined, signal ? { signal } : undefined);
  }

  // ------------------------------------------------------------------------------- jobs

  /** Creates a job; retries never duplicate it (an Idempotency-Key is always sent). */
  async create(type = 'default', { description, input, labels, userId, ttlSeconds, maxAttempts, jobId,
    idempotencyKey, priority, runAt, delaySeconds, retry } = {}) {
    const body = present({ type, description, input, labels, user_id: userId ?? this.userId,
      ttl_seconds: ttlSeconds, max_attempts: maxAttempts, job_id: jobId, priority, run_at: runAt,
      delay_seconds: delaySeconds, retry });
    const { body: job } = await this.request('POST', '/jobs', { body, safe: true,
      headers: { 'idempotency-key': idempotencyKey || randomUUID() } });
    return job;
  }

  /**
   * Creates up to 1000 jobs in one durable write, all or none. With minimal, the answer lists
   * only each job's {job_id, version} (Prefer: return=minimal): less to render and to parse.
   */
  async createBatch(jobs, { minimal = false } = {}) {
    const { body } = await this.request('POST', '/jobs/batch', { body: { jobs },
      headers: minimal ? { prefer: 'return=minimal' } : undefined });
    return body.jobs;
  }

  /** The job; with wait, long-polls until its version exceeds afterVersion (default: current). */
  async get(jobId, { wait, afterVersion, signal } = {}) {
    wait = clampWait(wait);
    const { body } = await this.request('GET', jobPath(jobId), { safe: true, wait: wait || 0, signal,
      query: { wait, after_version: afterVersion } });
    return body;
  }

  /** Every matching job, newest first, following the cursor. */
  async *list({ status, type, userId, labels, pageSize = 100 } = {}) {
    let cursor;
    for (;;) {
      const query = { status: Array.isArray(status) ? status.join(',') : status, type, user_id: userId,
        limit: pageSize, cursor, label: Object.entries(labels || {}).map(([k, v]) => `${k}:${v}`) };
      const { body } = await this.request('GET', '/jobs', { query, safe: true });
      yield* body.jobs;
      cursor = body.next_cursor;
      if (!cursor) return;
    }
  }

  /** Replaces progress, merge-patches data, merges labels (null removes one), sets priority. */
  async update(jobId, { progress, data, labels, priority, ifMatch } = {}) {
    const { body } = await this.request('PATCH', jobPath(jobId), {
      body: present({ progress, data, labels, priority }), headers: this.#ifMatch(ifMatch) });
    return body;
  }

  start(jobId, { worker, leaseSeconds, ifMatch } = {}) {
    return this.#post(jobId, '/start', present({ worker, lease_seconds: leaseSeconds }), ifMatch);
  }

  heartbeat(jobId, { leaseSeconds, progress, ifMatch } = {}) {
    return this.#post(jobId, '/heartbeat', present({ lease_seconds: leaseSeconds, progress }), ifMatch);
  }

  /** Leases the oldest pending job (of types) to worker; null when none (after wait seconds). */
  async claim(worker, { types, leaseSeconds, wait, signal } = {}) {
    wait = clampWait(wait);
    const { status, body } = await this.request('POST', '/jobs/claim', { signal, wait: wait || 0,
      query: { wait }, body: claimBody(worker, types, leaseSeconds) });
    return status === 200 ? body : null;
  }

  /** Leases up to maxJobs (1-100) pending jobs in claim order, in one write: [] when none. */
  async claimMany(worker, { maxJobs, types, leaseSeconds, wait, signal } = {}) {
    wait = clampWait(wait);
    const { status, body } = await this.request('POST', '/jobs/claim', { signal, wait: wait || 0,
      query: { wait }, body: { ...claimBody(worker, types, leaseSeconds), max_jobs: maxJobs ?? 1 } });
    return status === 200 ? body.jobs : [];
  }

  complete(jobId, result = null, { ifMatch } = {}) {
    return this.#post(jobId, '/complete', { result }, ifMatch);
  }

  /** Completes the job and claims the next one in the same durable write: [job, next|null]. */
  async completeAndClaim(jobId, result, worker, { types, leaseSeconds, ifMatch } = {}) {
    const { body } = await this.request('POST', jobPath(jobId, '/complete'), { headers: this.#ifMatch(ifMatch),
      body: { result, next: claimBody(worker, types, leaseSeconds) } });
    return [body.job, body.next];
  }

  /**
   * Finishes several jobs in one durable write, each on its own, then (with next) claims up to
   * next.maxJobs (1-100) more in the same write. entries: [{jobId, complete: {result}} or
   * {jobId, fail: {error, retryable}}, each with an optional ifMatch]. Resolves
   * {results: [{job_id, status, version?, job?, error?}], next: [jobs]}; a refused entry is a
   * result with its status and error (finishError turns it into the error its own call throws).
   */
  async finish(entries, { next, minimal = false } = {}) {
    const jobs = entries.map(({ jobId, ifMatch, complete, fail }) => present({ job_id: jobId,
      if_match: ifMatch, complete: complete && { result: complete.result ?? null },
      fail: fail && present({ error: fail.error, retryable: fail.retryable }) }));
    const nextBody = next && present({ ...claimBody(next.worker, next.types, next.leaseSeconds),
      max_jobs: next.maxJobs });
    const { body } = await this.request('POST', '/jobs/finish', {
      headers: minimal ? { prefer: 'return=minimal' } : undefined, body: present({ jobs, next: nextBody }) });
    return { results: body.results, next: body.next ?? [] };
  }

  /** Fails the attempt; error is a message or {code, message}. */
  fail(jobId, error, { retryable, ifMatch } = {}) {
    return this.#post(jobId, '/fail', present({ error, retryable }), ifMatch);
  }

  /** fail, then claim the next pending job in the same write: [job, next|null]. */
  async failAndClaim(jobId, error, worker, { retryable, types, leaseSeconds, ifMatch } = {}) {
    const { body } = await this.request('POST', jobPath(jobId, '/fail'), { headers: this.#ifMatch(ifMatch),
      body: present({ error, retryable, next: claimBody(worker, types, leaseSeconds) }) });
    return [body.job, body.next];
  }

  retry(jobId, { ifMatch } = {}) { return this.#post(jobId, '/retry', {}, ifMatch); }

  cancel(jobId, reason, { ifMatch } = {}) {
    return this.#post(jobId, '/cancel', present({ reason }), ifMatch);
  }

  /** The job's history, oldest first. */
  async events(jobId) {
    const { body } = await this.request('GET', jobPath(jobId, '/events'), { safe: true });
    return body.events;
  }

  // ---------------------------------------------------------------- human in the loop

  /** Asks a person (running -> pending_hitl); key names the question for a re-run. */
  requestHitl(jobId, type, prompt, { timeout, key } = {}) {
    return this.#post(jobId, '/hitl', present({ type, prompt, timeout_seconds: timeout, key }));
  }

  /** Answers the open question (pending_hitl -> running). */
  respondHitl(jobId, requestId, response) {
    return this.#post(jobId, '/hitl/response', { request_id: requestId, response });
  }

  /** Waits (long-polls) for the answer; HitlTimeout after timeout seconds (none: forever). */
  async waitForHitlResponse(jobId, { timeout, signal } = {}) {
    const deadline = timeout === undefined ? undefined : Date.now() + timeout * 1000;
    for (;;) {
      const left = deadline === undefined ? MAX_WAIT : (deadline - Date.now()) / 1000;
      if (left <= 0) throw new HitlTimeout(`no answer for job ${jobId} within ${timeout} s`, { code: 'hitl_wait_timeout' });
      const wait = Math.round(Math.min(left, MAX_WAIT) * 1000) / 1000;
      const { status, body } = await this.request('GET', jobPath(jobId, '/hitl/response'), {
        query: { wait }, safe: true, wait, signal });
      if (status === 200) return body.response;
    }
  }

  // ------------------------------------------------------------------------------- feed

  /** One page of the global feed: {events, next_after, head, first}. */
  async feed(after = 0, { limit = 100, wait, type, jobId, signal } = {}) {
    const { body } = await this.request('GET', '/events', { safe: true, wait: wait || 0, signal,
      query: { after, limit, wait, type, job_id: jobId } });
    return body;
  }

  /** Every event after `after`, forever (long-polls; resumes after a lost connection). */
  async *follow(after = 0, { type, jobId, wait = 30, signal } = {}) {
    for (;;) {
      let page;
      try {
        page = await this.feed(after, { limit: 1000, wait, type, jobId, signal });
      } catch (err) {
        if (err instanceof ConnectionFailed || err instanceof Unavailable) {
          await this.#pause(1, signal);
          continue;
        }
        if (err instanceof Truncated) {
          throw new Truncated(`history after seq ${after} is gone; the first retained seq is ${err.body.first}`,
            { status: err.status, code: 'truncated', body: err.body });
        }
        throw err;
      }
      for (const event of page.events) {
        after = event.seq;
        yield event;
      }
      after = Math.max(after, page.next_after);
    }
  }

  /**
   * The feed as Server-Sent Events (/events/stream, or one job's /jobs/{id}/stream): yields
   * {seq, type, data} per event; after a dropped stream (or a 502/503/504 while the server
   * restarts) it reconnects with Last-Event-ID, so no event is lost or repeated. Ends when
   * `signal` aborts.
   */
  async *stream({ after = 0, jobId, signal } = {}) {
    const path = jobId ? `/api/v1${jobPath(jobId, '/stream')}` : '/api/v1/events/stream';
    let last = after;
    while (!signal?.aborted) {
      let response;
      try {
        response = await fetch(`${this.baseUrl}${path}?after=${last}`, { signal, headers: {
          accept: 'text/event-stream', 'last-event-id': String(last),
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
          ...(this.userId ? { 'x-user-id': this.userId } : {}) } });
      } catch (err) {
        if (signal?.aborted) return;
        await this.#pause(1, signal).catch(() => {});
        continue;
      }
      if ([502, 503, 504].includes(response.status)) {  // starting, or a proxy: try again
        await response.body?.cancel();
        await this.#pause(1, signal).catch(() => {});
        continue;
      }
      if (response.status >= 400) {
        const text = await response.text();
        let decoded = null;
        try { decoded = JSON.parse(text); } catch { /* a proxy's page */ }
        throw errorFromResponse(response.status, decoded, text);
      }
      try {
        for await (const event of parseSse(response.body)) {
          last = event.seq;
          yield event;
        }
      } catch (err) {
        if (signal?.aborted) return;
      }
    }
  }

  // -------------------------------------------------------------------------- schedules

  async createSchedule(scheduleId, cron, { timezone, job, paused } = {}) {
    const { body } = await this.request('POST', '/schedules', {
      body: present({ schedule_id: scheduleId, cron, timezone, job, paused }) });
    return body;
  }

  async getSchedule(scheduleId) {
    return (await this.request('GET', schedulePath(scheduleId), { safe: true })).body;
  }

  async listSchedules() {
    return (await this.request('GET', '/schedules', { safe: true })).body.schedules;
  }

  async updateSchedule(scheduleId, { cron, timezone, job, paused, ifMatch } = {}) {
    const { body } = await this.request('PATCH', schedulePath(scheduleId), {
      body: present({ cron, timezone, job, paused }), headers: this.#ifMatch(ifMatch) });
    return body;
  }

  async deleteSchedule(scheduleId, { ifMatch } = {}) {
    await this.request('DELETE', schedulePath(scheduleId), { headers: this.#ifMatch(ifMatch) });
  }

  // -------------------------------------------------------------------------------- ops

  async stats() { return (await this.request('GET', '/stats', { safe: true })).body; }

  async healthy() {
    try {
      return (await this.request('GET', '/healthz', { safe: true })).status === 200;
    } catch (err) {
      if (err instanceof JobstoreError) return false;
      throw err;
    }
  }

  async #post(jobId, suffix, body, ifMatch) {
    const { body: job } = await this.request('POST', jobPath(jobId, suffix), { body, headers: this.#ifMatch(ifMatch) });
    return job;
  }

  #ifMatch(version) {
    return version === undefined || version === null ? undefined : { 'if-match': `"${version}"` };
  }
}

function claimBody(worker, types, leaseSeconds) {
  return present({ worker, types: types?.length ? types : undefined, lease_seconds: leaseSeconds });
}

/** Server-Sent Events from a fetch body: {seq, type, data} per event; comments skipped. */
async function* parseSse(body) {
  const decoder = new TextDecoder();
  let buffer = '';
  let event = { id: undefined, type: undefined, data: [] };
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, '');
      buffer = buffer.slice(newline + 1);
      if (line === '') {
        if (event.data.length) {
          yield { seq: Number(event.id), type: event.type, data: JSON.parse(event.data.join('\n')) };
        }
        event = { id: undefined, type: undefined, data: [] };
      } else if (!line.startsWith(':')) {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') event.id = value;
        else if (field === 'event') event.type = value;
        else if (field === 'data') event.data.push(value);
      }
    }
  }
}
