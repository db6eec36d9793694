// graphile-worker on PostgreSQL, used as its documentation shows: WorkerUtils.addJob and
// addJobs, and its runner (`run`) with `concurrency`, tuned for throughput as its performance
// page recommends: a local queue (the pool locks a batch of jobs and hands them out without a
// round trip each) and batched completions (`completeJobBatchDelay`). It has no public API to
// lock one job and complete it outside its runner, so the lifecycle workload is left out.
// It deletes a job when it completes: `completed` counts the jobs added minus those left.
import { Logger, makeWorkerUtils, run } from 'graphile-worker';

// Its default logger prints a line per job; only errors are printed here (to stderr, away
// from the driver's JSON lines).
const logger = new Logger(() => (level, message) => { if (level === 'error') console.error(`graphile-worker: ${message}`); });

export async function open({ pgUrl, graphileLocalQueue = 500 }) {
  const utils = await makeWorkerUtils({ connectionString: pgUrl, maxPoolSize: 40, logger });
  await utils.migrate();
  const setting = (name) => utils.withPgClient(async (c) => (await c.query(`SHOW ${name}`)).rows[0][name]);
  const fsync = await setting('fsync');
  const syncCommit = await setting('synchronous_commit');
  if (fsync !== 'on' || syncCommit !== 'on') throw new Error(`postgres runs with fsync ${fsync}, synchronous_commit ${syncCommit}`);
  const added = new Map();  // task -> jobs added through here
  const count = (task, n) => added.set(task, (added.get(task) ?? 0) + n);
  return {
    name: 'graphile',
    durability: `fsync ${fsync}, synchronous_commit ${syncCommit}`,
    workloads: ['create', 'worker', 'bulk'],
    create: async (task, i) => { await utils.addJob(task, { n: i }); count(task, 1); },
    bulk: async (task, from, n) => {
      await utils.addJobs(Array.from({ length: n }, (_, k) => ({ identifier: task, payload: { n: from + k } })));
      count(task, n);
    },
    startWorker(task, concurrency, onHandled) {
      const runner = run({
        connectionString: pgUrl, concurrency, noHandleSignals: true, pollInterval: 100,
        maxPoolSize: concurrency + 4,
        logger,
        taskList: { [task]: async () => { onHandled(); } },
        preset: { worker: { localQueue: { size: graphileLocalQueue }, completeJobBatchDelay: 0 } },
      });
      return async () => (await runner).stop();
    },
    completed: async (task) => {
      const left = await utils.withPgClient(async (c) => (await c.query(
        'SELECT count(*) AS n FROM graphile_worker.jobs WHERE task_identifier = $1', [task])).rows[0].n);
      return (added.get(task) ?? 0) - Number(left);
    },
    close: () => utils.release(),
  };
}
