// What a TypeScript user writes against jobstore's Node client: compiled (not run) with
// `tsc --strict` by the node_client_types test, so the .d.ts stays true to the API surface.
import { InvalidTransition, JobContext, JobstoreClient, PermanentFailure, Worker, finishError } from '../../clients/node/src/index.js';
import type { Event, FinishResult, Job, JobStatus } from '../../clients/node/src/index.js';

async function main(): Promise<void> {
  const client = new JobstoreClient('http://127.0.0.1:8000', { token: 't', retryFor: 10 });
  const job: Job = await client.create('report', { input: { month: '2026-11' }, priority: 5 });
  const status: JobStatus = job.status;
  const [done, next]: [Job, Job | null] = await client.completeAndClaim(job.job_id, { ok: true }, 'w1', { types: ['report'] });
  const claimed: Job | null = await client.claim('w1', { wait: 5 });
  const finished = await client.finish([{ jobId: job.job_id, ifMatch: 2, complete: { result: 1 } },
    { jobId: 'b', fail: { error: { code: 'E', message: 'm' }, retryable: false } }],
  { next: { worker: 'w1', types: ['report'], maxJobs: 2 }, minimal: true });
  for (const r of finished.results) {
    const result: FinishResult = r;
    if (result.status !== 200) console.log(finishError(result).code);
  }
  const more: Job[] = finished.next;
  for await (const j of client.list({ status: ['pending', 'running'] })) console.log(j.job_id);
  for await (const e of client.follow(0, { jobId: job.job_id })) {
    const seen: Event = e;
    console.log(seen.seq, seen.type);
    break;
  }
  const answer: unknown = await client.waitForHitlResponse(job.job_id, { timeout: 60 });
  try {
    await client.complete(job.job_id, 1, { ifMatch: job.version });
  } catch (err) {
    if (err instanceof InvalidTransition) console.log(err.code, err.status);
  }
  const worker = new Worker(client, ['report'], async (ctx: JobContext) => {
    await ctx.progress({ percent: 10 });
    const approved = await ctx.ask('approve', { q: 'ship?' }, { key: 'ship' });
    if (!approved) throw new PermanentFailure('not approved');
    return { shipped: true };
  }, { concurrency: 4, handleSignals: true });
  await worker.run();
  console.log(status, done, next, claimed, more, answer, worker.completed);
}

void main;
