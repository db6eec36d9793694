// The ceiling under jobstore: bench/bare_httplib_server --durable (cpp-httplib, each POST body
// written and fdatasync'ed by the plainest group commit, fixed answers), driven by jobstore's own
// Node client and Worker exactly as the jobstore system is. Creates, and the worker runtime
// (the bare server counts pending jobs and answers claims and finishes with fixed running jobs).
import { JobstoreClient } from 'jobstore-client';
import { bulk, startWorker } from './jobstore.mjs';

export async function open({ url }) {
  const client = new JobstoreClient(url);
  return {
    name: 'ceiling',
    durability: 'write + fdatasync per group',
    workloads: ['create', 'worker'],
    create: (queue, i) => client.create(queue, { input: { n: i } }),
    bulk: (queue, from, n) => bulk(client, queue, from, n),
    startWorker: (queue, concurrency, onHandled) => startWorker(client, queue, concurrency, onHandled),
    completed: async () => (await client.stats()).jobs.completed,
    close: async () => client.close(),
  };
}
