// jobstore through its own Node client (clients/node), as a user would drive it.
import { JobstoreClient, Worker } from 'jobstore-client';

export async function open({ url }) {
  const client = new JobstoreClient(url);
  const stats = await client.stats();
  if (stats.log.sync !== 'always') throw new Error(`jobstore runs with --sync ${stats.log.sync}, not always`);
  return {
    name: 'jobstore',
    durability: `--sync ${stats.log.sync}`,
    create: (queue, i) => client.create(queue, { input: { n: i } }),
    bulk: (queue, from, n) => bulk(client, queue, from, n),
    // One caller's round of the lifecycle: claim one job, complete it (two requests). False: none left.
    async claimAndComplete(queue, caller) {
      const job = await client.claim(`bench-${caller}`, { types: [queue], leaseSeconds: 60 });
      if (!job) return false;
      await client.complete(job.job_id, { ok: true });
      return true;
    },
    startWorker: (queue, concurrency, onHandled) => startWorker(client, queue, concurrency, onHandled),
    // Every completed job of the store (the driver takes the difference; one cheap call).
    completed: async () => (await client.stats()).jobs.completed,
    close: async () => {},
  };
}

// Jobs n = from .. from+count-1 in one request. Prefer: return=minimal: the ids come back, not
// 500 rendered jobs (BullMQ's addBulk builds its Job objects in the client; pg-boss's insert
// answers nothing).
export function bulk(client, queue, from, count) {
  return client.createBatch(Array.from({ length: count }, (_, k) => ({ type: queue, input: { n: from + k } })),
    { minimal: true });
}

// The worker kit with `concurrency` slots; it completes a job and claims the next in one request.
// Returns the function that stops it.
export function startWorker(client, queue, concurrency, onHandled) {
  const worker = new Worker(client, [queue], () => { onHandled(); return { ok: true }; },
    { concurrency, leaseSeconds: 60, pollSeconds: 1 });
  const running = worker.run();
  return async () => { worker.stop(); await running; };
}
