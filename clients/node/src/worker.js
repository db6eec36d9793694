// The worker kit: claims jobs, keeps their leases alive while the handler runs, lets the
// handler report progress and ask a person, and finishes the job with the handler's result or
// exception, claiming the slot's next job in the same request. The finishes of all slots go out
// together (POST /jobs/finish: while one request is on its way the next ones gather), so under
// load a request finishes and claims a job per busy slot; idle slots share one long-poll claim.
//
//   const worker = new Worker(client, ['report'], async (ctx) => {
//     await ctx.progress({ percent: 10 });
//     const answer = await ctx.ask('approve', { q: 'ship it?' }, { key: 'ship' });
//     return { shipped: answer };
//   }, { concurrency: 8 });
//   await worker.run();   // until worker.stop(), or SIGINT/SIGTERM with handleSignals
//
// The handler's return value completes the job (it must be JSON: anything else fails the job
// with result_not_json, a result larger than the server's body limit with result_too_large); a
// thrown error fails the attempt with {code: its name, message} (retryable, unless it is a
// PermanentFailure). Finishing is retried with if_match until the lease would end, so a lost
// answer never lands twice. A stop starts no new claim, gives the jobs in hand shutdownGrace
// seconds, and makes ctx.ask throw WorkerStopping at once (the question stays open).

import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { BadGateway, ConnectionFailed, GatewayTimeout, InvalidTransition, JobstoreError, NotFound,
  PayloadTooLarge, Unavailable, VersionMismatch, finishError } from './errors.js';

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

/**
 * The slots' finishes, sent together: at most IN_FLIGHT POST /jobs/finish requests on their way,
 * and the finishes that arrive meanwhile leave together in the next (a group commit on the
 * client's side). A lone finish leaves at once; under load a request carries a finish per busy
 * slot and claims the next job for each slot that wants one, in the same durable write. A
 * request holds at most MAX_BYTES of results (the server's body limit is 1 MiB by default; a
 * larger result goes alone), and a request the server refuses whole for anything but an outage
 * (a result over its body limit, say) is sent again one finish per request, so that one
 * misbehaving handler's result never costs the other slots theirs.
 */
class FinishBatcher {
  static MAX_ENTRIES = 1000;      // the server's limit per request
  static MAX_CLAIM = 100;         // max_jobs' limit
  static MAX_BYTES = 256 * 1024;  // results per request, roughly

  // Two requests on their way at most: while one waits for its durable write the next gathers
  // and leaves (5.6-7.2k jobs/s against 4.4-5.3k with one, bench/RESULTS.md). Each carries at
  // most a share of the slots (concurrency / IN_FLIGHT), so that the slots keep to two even
  // groups that take turns: the server writes one group's request while this process works
  // through the other's answer.
  static IN_FLIGHT = 2;

  constructor(worker, inFlight = FinishBatcher.IN_FLIGHT) {
    this.worker = worker;
    this.queue = [];
    this.sending = 0;
    this.starting = false;
    this.inFlight = inFlight;
  }

  /** Resolves with the job claimed for this slot (or null); rejects with the entry's error. */
  finish(entry, claimNext, bytes) {
    return new Promise((resolve, reject) => {
      this.queue.push({ entry, claimNext, bytes, resolve, reject });
      this.#startSoon();
    });
  }

  /**
   * Starts a request on the next turn of the event loop if one may go, so that every slot whose
   * handler finishes from the same answer (their microtasks run first) joins it.
   */
  #startSoon() {
    if (this.sending < this.inFlight && !this.starting) {
      this.starting = true;
      setImmediate(() => { this.starting = false; this.#drain(); });
    }
  }

  async #drain() {
    this.sending += 1;
    try {
      while (this.queue.length) {
        const batch = this.#take();
        if (this.queue.length) this.#startSoon();  // what is over this share goes in the other
        await this.#send(batch);
        // The slots this answer refilled finish in microtasks: the next request waits a turn of
        // the event loop for them all. (Without the turn it left with the first few and the rest
        // trailed in a request of their own, a durable write for one or two jobs, and the slots
        // stayed split so: 31 and 1 of 32, bench/RESULTS.md.)
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      this.sending -= 1;
    }
  }

  /** The next request's finishes: the oldest, and those after it that fit in its share. */
  #take() {
    const share = Math.max(1, Math.ceil(this.worker.concurrency / this.inFlight));
    let n = 1;
    let bytes = this.queue[0].bytes;
    while (n < this.queue.length && n < FinishBatcher.MAX_ENTRIES && n < share &&
           bytes + this.queue[n].bytes <= FinishBatcher.MAX_BYTES) bytes += this.queue[n++].bytes;
    return this.queue.splice(0, n);
  }

  async #send(batch) {
    const w = this.worker;
    const wanting = w.stopping ? 0 : Math.min(batch.filter((b) => b.claimNext).length, FinishBatcher.MAX_CLAIM);
    const next = wanting ? { worker: w.name, types: w.types, leaseSeconds: w.leaseSeconds, maxJobs: wanting } : undefined;
    let answer;
    try {
      answer = await w.client.finish(batch.map((b) => b.entry), { next, minimal: true });
    } catch (err) {
      if (batch.length > 1 && !TRANSIENT.some((cls) => err instanceof cls)) {
        for (const b of batch) await this.#send([b]);  // find the one it was about
      } else {
        for (const b of batch) b.reject(err);
      }
      return;
    }
    const claimed = [...answer.next];
    batch.forEach((b, i) => {
      const result = answer.results[i];
      if (result?.status === 200) b.resolve(b.claimNext && claimed.length ? claimed.shift() : null);
      else b.reject(result ? finishError(result) : new JobstoreError('no result for this job in the answer'));
    });
    w.spare.push(...claimed);  // claimed for a slot whose own finish was refused
  }
}

/**
 * One claim for every slot that waits for a job: a long-poll with max_jobs = the slots waiting
 * (at most 100), so an idle worker parks one request on the server, not one per slot. A poll
 * that ends with none hands each waiting slot null (it looks at the stop and the spare jobs and
 * asks again); an error is logged once and the slots ask again a second later.
 */
class ClaimGate {
  constructor(worker) {
    this.worker = worker;
    this.waiting = [];
    this.polling = false;
  }

  /** Resolves with a job for the calling slot, or null. */
  take() {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      if (!this.polling) this.#poll();
    });
  }

  async #poll() {
    const w = this.worker;
    this.polling = true;
    try {
      while (this.waiting.length && !w.stopping) {
        let jobs;
        try {
          jobs = await w.client.claimMany(w.name, { maxJobs: Math.min(this.waiting.length, 100),
            types: w.types, leaseSeconds: w.leaseSeconds, wait: w.pollSeconds });
        } catch (err) {
          console.error(`jobstore worker: claiming failed: ${err?.message ?? err}`);
          await sleep(1000, undefined, { signal: w.stopSignal }).catch(() => {});
          jobs = [];
        }
        for (const job of jobs) {
          const slot = this.waiting.shift();
          if (slot) slot(job); else w.spare.push(job);
        }
        if (!jobs.length) for (const slot of this.waiting.splice(0)) slot(null);
      }
      for (const slot of this.waiting.splice(0)) slot(null);  // stopping
    } finally {
      this.polling = false;
    }
  }
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
    /** Jobs claimed for this worker that no slot has taken yet (the slots take them first). */
    this.spare = [];
    this.#finishes = new FinishBatcher(this);
    this.#claims = new ClaimGate(this);
  }

  #finishes;
  #claims;

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
    let job = null;
    while (!this.stopping || job || this.spare.length) {
      try {
        if (!job) job = this.spare.shift() ?? null;
        if (!job && !this.stopping) job = await this.#claims.take();
        if (job) job = await this.#runOne(job);
      } catch (err) {
        // A slot never dies: log, wait a moment, go on.
        console.error(`jobstore worker slot ${index}: ${err?.stack || err}`);
        job = null;
        await sleep(1000, undefined, { signal: this.stopSignal }).catch(() => {});
      }
    }
  }

  async #runOne(job) {
    const ctx = new JobContext(this, job);
    const beat = setInterval(() => this.#heartbeat(ctx), (this.leaseSeconds / 3) * 1000);
    try {
      let result;
      try {
        result = await this.handler(ctx);
      } catch (err) {
        if (err instanceof WorkerStopping) return null;
        return await this.#finish(ctx, 'fail', {
          error: { code: err?.name || 'Error', message: String(err?.message ?? err).slice(0, 4000) },
          retryable: !(err instanceof PermanentFailure) });
      }
      let json;
      try { json = JSON.stringify(result ?? null); } catch { json = undefined; }  // BigInt, a cycle
      if (json === undefined) {  // a function or a symbol
        return await this.#finish(ctx, 'fail', { retryable: false, error: {
          code: 'result_not_json', message: `the handler returned ${typeof result}, which is not JSON` } });
      }
      return await this.#finish(ctx, 'complete', { result: result ?? null, resultJson: json });
    } finally {
      clearInterval(beat);
    }
  }

  async #finish(ctx, how, { result, error, retryable = true, resultJson = 'null' }) {
    const version = ctx.job.version;
    const bytes = 200 + Buffer.byteLength(how === 'complete' ? resultJson : JSON.stringify(error));
    let delay = 200;
    let tried = false;
    for (;;) {
      const claimNext = !this.stopping;
      try {
        const entry = { jobId: ctx.jobId, ifMatch: version,
          [how]: how === 'complete' ? { result } : { error, retryable } };
        const nextJob = await this.#finishes.finish(entry, claimNext, bytes);
        if (how === 'complete') this.completed += 1; else this.failed += 1;
        return nextJob;
      } catch (err) {
        if (TRANSIENT.some((cls) => err instanceof cls) && Date.now() + delay < ctx.leaseUntil) {
          tried = true;
          await sleep(delay);
          delay = Math.min(delay * 2, 2000);
          continue;
        }
        if (err instanceof PayloadTooLarge && how === 'complete') {  // it would never fit
          return await this.#finish(ctx, 'fail', { retryable: false, error: { code: 'result_too_large',
            message: `the handler's result (${bytes} bytes as JSON) is larger than the server takes (--max-body-bytes)` } });
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
