// BullMQ on Redis, used as its documentation shows: Queue.add/addBulk, a Worker with
// `concurrency`, and for the claim-then-complete round its manual processing API
// (Worker.getNextJob + Job.moveToCompleted without fetching the next).
import { Queue, Worker } from 'bullmq';
import IORedis from 'ioredis';

export async function open({ redisPort }) {
  // One connection for the queue (BullMQ's recommended sharing); workers need maxRetriesPerRequest null.
  const connection = new IORedis({ host: '127.0.0.1', port: redisPort, maxRetriesPerRequest: null });
  const [, appendonly] = await connection.config('GET', 'appendonly');
  const [, appendfsync] = await connection.config('GET', 'appendfsync');
  if (appendonly !== 'yes' || appendfsync !== 'always') {
    throw new Error(`redis runs with appendonly ${appendonly}, appendfsync ${appendfsync}`);
  }
  const queues = new Map();
  const queueOf = (name) => {
    if (!queues.has(name)) queues.set(name, new Queue(name, { connection }));
    return queues.get(name);
  };
  const manual = new Map();  // queue -> a Worker without a processor, for getNextJob
  return {
    name: 'bullmq',
    durability: `appendonly ${appendonly}, appendfsync ${appendfsync}`,
    create: (queue, i) => queueOf(queue).add('bench', { n: i }),
    bulk: (queue, from, n) => queueOf(queue).addBulk(Array.from({ length: n }, (_, k) => ({ name: 'bench', data: { n: from + k } }))),
    async claimAndComplete(queue, caller) {
      if (!manual.has(queue)) manual.set(queue, new Worker(queue, null, { connection }));
      const token = `bench-${caller}`;
      const job = await manual.get(queue).getNextJob(token, { block: false });
      if (!job) return false;
      await job.moveToCompleted({ ok: true }, token, false);
      return true;
    },
    startWorker(queue, concurrency, onHandled) {
      const worker = new Worker(queue, async () => { onHandled(); return { ok: true }; },
        { connection: connection.duplicate(), concurrency });
      return () => worker.close();
    },
    completed: (queue) => queueOf(queue).getCompletedCount(),
    close: async () => {
      for (const w of manual.values()) await w.close();
      for (const q of queues.values()) await q.close();
      await connection.quit();
    },
  };
}
