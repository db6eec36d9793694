// pg-boss on PostgreSQL, used as its documentation shows: send/insert, fetch + complete, and
// work(). Its work() loop sleeps pollingIntervalSeconds (0.5 s at least) after each fetch even
// when jobs wait, so the worker runs `concurrency` work() loops, each fetching batchSize jobs at
// the minimum interval (tuned for throughput; see bench/RESULTS.md).
import PgBoss from 'pg-boss';

export async function open({ pgUrl, pgbossBatch = 50 }) {
  const boss = new PgBoss({ connectionString: pgUrl, max: 40, supervise: false, schedule: false });
  boss.on('error', (err) => console.error(`pg-boss: ${err.message}`));
  await boss.start();
  const db = boss.getDb();
  const setting = async (name) => (await db.executeSql(`SHOW ${name}`)).rows[0][name];
  const fsync = await setting('fsync');
  const syncCommit = await setting('synchronous_commit');
  if (fsync !== 'on' || syncCommit !== 'on') throw new Error(`postgres runs with fsync ${fsync}, synchronous_commit ${syncCommit}`);
  const made = new Set();
  const queueOf = async (name) => {
    if (!made.has(name)) { await boss.createQueue(name); made.add(name); }
    return name;
  };
  return {
    name: 'pgboss',
    durability: `fsync ${fsync}, synchronous_commit ${syncCommit}`,
    prepare: queueOf,
    create: (queue, i) => boss.send(queue, { n: i }),
    bulk: (queue, from, n) => boss.insert(Array.from({ length: n }, (_, k) => ({ name: queue, data: { n: from + k } }))),
    async claimAndComplete(queue) {
      const [job] = await boss.fetch(queue);
      if (!job) return false;
      await boss.complete(queue, job.id, { ok: true });
      return true;
    },
    startWorker(queue, concurrency, onHandled) {
      const ids = [];
      const started = Promise.all(Array.from({ length: concurrency }, () =>
        boss.work(queue, { batchSize: pgbossBatch, pollingIntervalSeconds: 0.5 }, async (jobs) => {
          for (let k = 0; k < jobs.length; k += 1) onHandled();
          return { ok: true };
        }).then((id) => ids.push(id))));
      return async () => { await started; for (const id of ids) await boss.offWork({ id }); };
    },
    completed: async (queue) => Number((await db.executeSql(
      "SELECT count(*) AS n FROM pgboss.job WHERE name = $1 AND state = 'completed'", [queue])).rows[0].n),
    close: () => boss.stop({ graceful: false, wait: true }),
  };
}
