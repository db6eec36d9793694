// The Node client against the real server: the lifecycle, errors as typed exceptions, retries
// that never duplicate a create, HITL across two clients, the feed and SSE with resume.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { InvalidArgument, InvalidTransition, JobstoreClient, NotFound, VersionMismatch } from '../src/index.js';
import { startServer } from './support/server.mjs';

let server;
let client;
before(async () => { server = await startServer(); client = new JobstoreClient(server.url); });
after(async () => { await server.stop(); });

test('a job goes through its whole lifecycle', async () => {
  const job = await client.create('report', { input: { month: '2026-11' }, labels: { team: 'a' } });
  assert.equal(job.status, 'pending');
  assert.equal((await client.start(job.job_id, { worker: 'w1' })).status, 'running');
  await client.heartbeat(job.job_id, { progress: { percent: 50 } });
  const patched = await client.update(job.job_id, { data: { draft: 'x' } });
  assert.deepEqual(patched.data, { draft: 'x' });
  const done = await client.complete(job.job_id, { pages: 3 });
  assert.equal(done.status, 'completed');
  assert.deepEqual(done.result, { pages: 3 });
  const types = (await client.events(job.job_id)).map((e) => e.type);
  assert.deepEqual(types.slice(0, 2), ['job.created', 'job.started']);
  assert.equal(types.at(-1), 'job.completed');
  const listed = [];
  for await (const j of client.list({ type: 'report', pageSize: 1 })) listed.push(j.job_id);
  assert.ok(listed.includes(job.job_id));
});

test('errors are typed after the contract', async () => {
  await assert.rejects(client.get('nope'), NotFound);
  const job = await client.create('e');
  await assert.rejects(client.complete(job.job_id, 1), InvalidTransition);
  await assert.rejects(client.update(job.job_id, { data: { a: 1 }, ifMatch: 99 }), VersionMismatch);
  await assert.rejects(client.create('e', { priority: 5000 }), InvalidArgument);
});

test('a create retried with its key returns the first job', async () => {
  const a = await client.create('idem', { idempotencyKey: 'k-1', input: { n: 1 } });
  const b = await client.create('idem', { idempotencyKey: 'k-1', input: { n: 1 } });
  assert.equal(a.job_id, b.job_id);
});

test('batch, claim and one request per job', async () => {
  const jobs = await client.createBatch([{ type: 'batch' }, { type: 'batch' }]);
  assert.equal(jobs.length, 2);
  const first = await client.claim('w', { types: ['batch'] });
  const [done, next] = await client.completeAndClaim(first.job_id, 'ok', 'w', { types: ['batch'] });
  assert.equal(done.status, 'completed');
  assert.equal(next.status, 'running');
  const [, none] = await client.failAndClaim(next.job_id, { code: 'x', message: 'y' }, 'w', { types: ['batch'], retryable: false });
  assert.equal(none, null);
  assert.equal(await client.claim('w', { types: ['batch'] }), null);
});

test('an answer posted by one client wakes the waiter of another', async () => {
  const job = await client.create('ask');
  await client.start(job.job_id);
  const asked = await client.requestHitl(job.job_id, 'approve', { q: 'ship?' });
  const waiting = client.waitForHitlResponse(job.job_id, { timeout: 20 });
  const person = new JobstoreClient(server.url, { userId: 'alice' });
  await person.respondHitl(job.job_id, asked.hitl.request_id, { ship: true });
  assert.deepEqual(await waiting, { ship: true });
});

test('follow and SSE resume where they left off', async () => {
  const job = await client.create('feed');
  const head = (await client.feed(0, { limit: 1 })).head;
  await client.start(job.job_id);
  await client.complete(job.job_id, 1);
  const seen = [];
  for await (const e of client.follow(head - 1, { jobId: job.job_id, wait: 1 })) {
    seen.push(e.type);
    if (seen.length === 3) break;
  }
  assert.deepEqual(seen, ['job.created', 'job.started', 'job.completed']);
  const controller = new AbortController();
  const streamed = [];
  for await (const e of client.stream({ after: head, signal: controller.signal })) {
    streamed.push(e.seq);
    if (streamed.length === 2) { controller.abort(); }
  }
  assert.deepEqual(streamed, [head + 1, head + 2]);
});

test('SSE reconnects with Last-Event-ID after a server restart: nothing lost, nothing twice', async () => {
  const own = await startServer();
  const c = new JobstoreClient(own.url, { backoff: 0.05 });
  const job = await c.create('sse');
  const controller = new AbortController();
  const seqs = [];
  const reading = (async () => {
    for await (const e of c.stream({ after: 0, signal: controller.signal })) {
      seqs.push(e.seq);
      if (seqs.length === 3) controller.abort();
    }
  })();
  await c.start(job.job_id);
  await own.stop({ keep: true });
  const again = await startServer({ dir: own.dir, port: own.port });
  await c.complete(job.job_id, 1);
  await reading;
  assert.deepEqual(seqs, [1, 2, 3]);
  await again.stop();
});
