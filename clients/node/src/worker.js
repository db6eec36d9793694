// The worker kit: claims jobs, keeps their leases alive while the handler runs, lets the
// handler report progress and ask a person, and finishes the job with the handler's result or
// exception, claiming the slot's next job in the same request (one request per job).
//
//   const worker = new Worker(client, ['report'], async (ctx) => {
//     await ctx.progress({ percent: 10 });
//     const answer = await ctx.ask('approve', { q: 'ship it?' }, { key: 'ship' });
//     return { shipped: answer };
//   }, { concurrency: 8 });
//   await worker.run();   // until worker.stop(), or SIGINT/SIGTERM with handleSignals
//
// The handler's return value completes the job (it must be JSON: anything else fails the job
// with result_not_json); a thrown error fails the attempt with {code: its name, message}
// (retryable, unless it is a PermanentFailure). Finishing is retried with If-Match until the
// lease would end, so a lost answer never lands twice. A stop starts no new claim, gives the
// jobs in hand shutdownGrace seconds, and makes ctx.ask throw WorkerStopping at once (the
// question stays open).

import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { BadGateway, ConnectionFailed, GatewayTimeout, InvalidTransition, JobstoreError, NotFound,
  Unavailable, VersionMismatch } from './errors.js';

/** Thrown by a handler for a failure another attempt cannot fix: the job fails for good. */
export class PermanentFailure extends Error {
  constructor(message) { super(message); this.name = 'PermanentFailure'; }
}

/** Thrown inside ctx.ask when the worker stops while the question is open. */
export class WorkerStopping extends Error {
  constructor(message) { super(message); this.name = 'WorkerStopping'; }
}

const TRANSIENT = [ConnectionFailed, Unavailable, BadGateway, GatewayTimeout];
const UNANSWERED = Symbol('unanswered');

export class JobContext {
  constructor(worker, job) {
    this.worker = worker;
    this.job = job;
    this.jobId = job.job_id;
    this.input = job.input;
    this.asking = false;
    this.leaseUntil = Date.now() + worker.leaseSeconds * 1000;
  }

  /** Aborts when the worker stops: pass it to long calls to wind up early. */
  get signal() { return this.worker.stopSignal; }

  /** Records progress (an event) and extends the lease. */
  async progress({ percent, phase, message } = {}) {
    const progress = Object.fromEntries(Object.entries({ percent, phase, message }).filter(([, v]) => v !== undefined));
    this.job = await this.worker.client.heartbeat(this.jobId, { progress, leaseSeconds: this.worker.leaseSeconds });
    this.leaseUntil = Date.now() + this.worker.leaseSeconds * 1000;
  }

  /** Merge-patches the job's data and labels. */
  async update({ data, labels } = {}) {
    this.job = await this.worker.client.update(this.jobId, { data, labels });
  }

  /**
   * Asks a person and resolves with the answer (from any process). With key, a re-run of the
   * job gets the answer already given to that question from the job's history.
   */
  async ask(type, prompt, { timeout, key } = {}) {
    const client = this.worker.client;
    if (key !== undefined) {
      const answered = recordedAnswer(await client.events(this.jobId), key);
      if (answered !== UNANSWERED) return answered;
    }
    this.asking = true;
    try {
      this.job = await client.requestHitl(this.jobId, type, prompt, { timeout, key });
      let answer;
      try {
        answer = await client.waitForHitlResponse(this.jobId, { signal: this.worker.stopSignal });
      } catch (err) {
        if (this.worker.stopping) {
          throw new WorkerStopping(`the worker stopped while job ${this.jobId} waited for an answer; the question stays open`);
        }
        throw err;
      }
      this.job = await client.get(this.jobId);
      this.leaseUntil = Date.now() + this.worker.leaseSeconds * 1000;
      return answer;
    } finally {
      this.asking = false;
    }
  }
}

/** The newest answer a job's history holds for a question asked with key. */
function recordedAnswer(events, key) {
  const asked = new Map();
  let answer = UNANSWERED;
  for (const e of events) {
    const data = e.data || {};
    if (e.type === 'job.hitl_requested') asked.set(data.request_id, data.key === key);
    else if (e.type === 'job.hitl_answered' && asked.get(data.request_id)) answer = data.response;
  }
  return answer;
}

export class Worker {
  /**
   * @param {import('./client.js').JobstoreClient} client
   * @param {string[]|null} types
   * @param {(ctx: JobContext) => any} handler
   * @param {{concurrency?: number, leaseSeconds?: number, name?: string, pollSeconds?: number, shutdownGrace?: number, handleSignals?: boolean}} [options]
   */
  constructor(client, types, handler, { concurrency = 1, leaseSeconds = 30, name, pollSeconds = 1,
    shutdownGrace = 30, handleSignals = false } = {}) {
    if (leaseSeconds < 3) throw new RangeError('leaseSeconds must be at least 3');
    this.client = client;
    this.types = types && types.length ? [...types] : undefined;
    this.handler = handler;
    this.concurrency = concurrency;
    this.leaseSeconds = leaseSeconds;
    this.name = name || `${hostname()}-${process.pid}`;
    this.pollSeconds = Math.min(Math.max(pollSeconds, 0.1), 2);
    this.shutdownGrace = shutdownGrace;
    this.handleSignals = handleSignals;
    this.completed = 0;
    this.failed = 0;
    this.abort = new AbortController();
    this.signals = 0;
  }

  get stopping() { return this.abort.signal.aborted; }
  get stopSignal() { return this.abort.signal; }

  /** No new claim; the jobs in hand get shutdownGrace seconds. */
  stop() { if (!this.stopping) this.abort.abort(new WorkerStopping('the worker stopped')); }

  /** Resolves once stopped and the jobs in hand are finished (or the grace ended). */
  async run() {
    const onSignal = (sig) => {
      this.signals += 1;
      if (this.signals > 1) process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
      this.stop();
    };
    if (this.handleSignals) for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, onSignal);
    try {
      const slots = Array.from({ length: this.concurrency }, (_, i) => this.#slot(i));
      const all = Promise.all(slots);
      await new Promise((resolve) => {
        if (this.stopping) resolve();
        else this.abort.signal.addEventListener('abort', resolve, { once: true });
      });
      const grace = sleep(this.shutdownGrace * 1000, 'grace', { ref: false });
      if ((await Promise.race([all, grace])) === 'grace') {
        console.warn(`jobstore worker: jobs still running after the ${this.shutdownGrace} s grace; left to their leases`);
      }
    } finally {
      if (this.handleSignals) for (const sig of ['SIGINT', 'SIGTERM']) process.off(sig, onSignal);
    }
  }

  async #slot(index) {
    const workerName = `${this.name}/${index}`;
    let job = null;
    while (!this.stopping || job) {
      try {
        if (!job) {
          job = await this.client.claim(workerName, { types: this.types, leaseSeconds: this.leaseSeconds,
            wait: this.pollSeconds });
        }
        if (job) job = await this.#runOne(job, workerName);
      } catch (err) {
        // A slot never dies: log, wait a moment, go on.
        console.error(`jobstore worker slot ${index}: ${err?.stack || err}`);
        job = null;
        await sleep(1000, undefined, { signal: this.stopSignal }).catch(() => {});
      }
    }
  }

  async #runOne(job, workerName) {
    const ctx = new JobContext(this, job);
    const beat = setInterval(() => this.#heartbeat(ctx), (this.leaseSeconds / 3) * 1000);
    try {
      let result;
      try {
        result = await this.handler(ctx);
      } catch (err) {
        if (err instanceof WorkerStopping) return null;
        return await this.#finish(ctx, workerName, 'fail', {
          error: { code: err?.name || 'Error', message: String(err?.message ?? err).slice(0, 4000) },
          retryable: !(err instanceof PermanentFailure) });
      }
      let json;
      try { json = JSON.stringify(result ?? null); } catch { json = undefined; }  // BigInt, a cycle
      if (json === undefined) {  // a function or a symbol
        return await this.#finish(ctx, workerName, 'fail', { retryable: false, error: {
          code: 'result_not_json', message: `the handler returned ${typeof result}, which is not JSON` } });
      }
      return await this.#finish(ctx, workerName, 'complete', { result: result ?? null });
    } finally {
      clearInterval(beat);
    }
  }

  async #finish(ctx, workerName, how, { result, error, retryable = true }) {
    const version = ctx.job.version;
    let delay = 200;
    let tried = false;
    for (;;) {
      const claimNext = !this.stopping;
      const next = { types: this.types, leaseSeconds: this.leaseSeconds, ifMatch: version };
      try {
        let nextJob = null;
        if (how === 'complete' && claimNext) [, nextJob] = await this.client.completeAndClaim(ctx.jobId, result, workerName, next);
        else if (how === 'complete') await this.client.complete(ctx.jobId, result, { ifMatch: version });
        else if (claimNext) [, nextJob] = await this.client.failAndClaim(ctx.jobId, error, workerName, { ...next, retryable });
        else await this.client.fail(ctx.jobId, error, { retryable, ifMatch: version });
        if (how === 'complete') this.completed += 1; else this.failed += 1;
        return nextJob;
      } catch (err) {
        if (TRANSIENT.some((cls) => err instanceof cls) && Date.now() + delay < ctx.leaseUntil) {
          tried = true;
          await sleep(delay);
          delay = Math.min(delay * 2, 2000);
          continue;
        }
        if (err instanceof VersionMismatch && tried && await this.#landed(ctx, how)) {
          if (how === 'complete') this.completed += 1; else this.failed += 1;
          return null; // an earlier try landed; its answer was lost on the way
        }
        const expected = [InvalidTransition, NotFound, VersionMismatch].some((cls) => err instanceof cls);
        (expected ? console.warn : console.error)(`jobstore worker: could not ${how} job ${ctx.jobId}: ${err.message}`);
        return null;
      }
    }
  }

  async #landed(ctx, how) {
    try {
      const job = await this.client.get(ctx.jobId);
      if (how === 'complete') return job.status === 'completed';
      return ['failed', 'scheduled'].includes(job.status) && job.attempt === ctx.job.attempt;
    } catch (err) {
      if (err instanceof JobstoreError) return false;
      throw err;
    }
  }

  async #heartbeat(ctx) {
    if (ctx.asking) return; // pending_hitl holds no lease
    try {
      await this.client.heartbeat(ctx.jobId, { leaseSeconds: this.leaseSeconds });
      ctx.leaseUntil = Date.now() + this.leaseSeconds * 1000;
    } catch (err) {
      if (!(err instanceof InvalidTransition)) console.warn(`jobstore worker: heartbeat for ${ctx.jobId} failed: ${err.message}`);
    }
  }
}
