// One Node driver, the same structure for every system: `callers` concurrent loops, each
// awaiting one operation at a time, until `jobs` are done or `seconds` have passed. Prints one
// JSON line per workload: jobs done, seconds, jobs/s, and the CPU the server and this driver
// spent per job.
//   node drive.mjs --system jobstore|bullmq|pgboss|graphile|ceiling --server-pid PID [--url U] [--redis-port P]
//        [--pg-url U] [--workloads create,lifecycle,worker,bulk] [--callers 32] [--jobs 10000]
//        [--bulk-jobs 100000] [--bulk-callers 8] [--batch 500] [--seconds 20] [--pgboss-batch 50]
//        [--expect-all]   (exit 1 when a workload did not do all its jobs in time: the smoke test)
import { parseArgs } from 'node:util';
import { ownCpuSeconds, treeCpuSeconds } from './cpu.mjs';

const { values: opt } = parseArgs({ options: {
  system: { type: 'string' }, 'server-pid': { type: 'string' }, url: { type: 'string' },
  'redis-port': { type: 'string' }, 'pg-url': { type: 'string' },
  workloads: { type: 'string', default: 'create,lifecycle,worker,bulk' },
  callers: { type: 'string', default: '32' }, jobs: { type: 'string', default: '10000' },
  'bulk-jobs': { type: 'string', default: '100000' }, 'bulk-callers': { type: 'string', default: '8' },
  batch: { type: 'string', default: '500' }, seconds: { type: 'string', default: '20' },
  'pgboss-batch': { type: 'string', default: '50' }, 'expect-all': { type: 'boolean', default: false },
} });
const callers = Number(opt.callers);
const jobs = Number(opt.jobs);
const limitMs = Number(opt.seconds) * 1000;
const serverPid = Number(opt['server-pid']);
const systems = { jobstore: './systems/jobstore.mjs', bullmq: './systems/bullmq.mjs', pgboss: './systems/pgboss.mjs',
  graphile: './systems/graphile.mjs', ceiling: './systems/ceiling.mjs' };
if (!systems[opt.system] || !serverPid) {
  console.error('drive.mjs: --system jobstore|bullmq|pgboss|graphile|ceiling and --server-pid are required');
  process.exit(2);
}
const { open } = await import(systems[opt.system]);
const sys = await open({ url: opt.url, redisPort: Number(opt['redis-port']), pgUrl: opt['pg-url'],
  pgbossBatch: Number(opt['pgboss-batch']) });
const run = Date.now().toString(36);
const freshQueue = async (workload) => {
  const queue = `bench-${workload}-${run}`;
  if (sys.prepare) await sys.prepare(queue);
  return queue;
};

// Runs `loops` callers over `step(caller) -> jobs it did (0: nothing left)` until `total` jobs
// are done or the time is up (each step reserves `unit` jobs before it starts, so none is done
// beyond total); measures seconds and CPU around it.
async function timed(workload, loops, total, step, { after, unit = 1 } = {}) {
  const server0 = treeCpuSeconds(serverPid);
  const driver0 = ownCpuSeconds();
  const start = performance.now();
  let done = 0;
  let reserved = 0;
  await Promise.all(Array.from({ length: loops }, async (_, caller) => {
    while (reserved < total && performance.now() - start < limitMs) {
      reserved += unit;
      const did = await step(caller);
      if (!did) break;
      done += did;
    }
  }));
  if (after) done = await after(done, start);
  const seconds = (performance.now() - start) / 1000;
  const serverCpu = treeCpuSeconds(serverPid) - server0;
  const driverCpu = ownCpuSeconds() - driver0;
  const line = { system: sys.name, workload, durability: sys.durability, jobs: done,
    seconds: +seconds.toFixed(3), per_second: Math.round(done / seconds),
    server_cpu_us_per_job: Math.round((serverCpu / done) * 1e6),
    driver_cpu_us_per_job: Math.round((driverCpu / done) * 1e6) };
  console.log(JSON.stringify(line));
  if (opt['expect-all'] && done < total) throw new Error(`${sys.name} ${workload}: ${done} of ${total} jobs done`);
}

async function prefill(queue, n) {  // untimed, in batches
  for (let from = 0; from < n; from += 500) await sys.bulk(queue, from, Math.min(500, n - from));
}

const workloads = {
  async create() {
    const queue = await freshQueue('create');
    let next = 0;
    await timed('create', callers, jobs, async () => { await sys.create(queue, next++); return 1; });
  },
  async lifecycle() {
    const queue = await freshQueue('lifecycle');
    await prefill(queue, jobs);
    await timed('lifecycle', callers, jobs, async (caller) => ((await sys.claimAndComplete(queue, caller)) ? 1 : 0));
  },
  async worker() {
    const queue = await freshQueue('worker');
    await prefill(queue, jobs);
    const before = await sys.completed(queue);
    let handled = 0;
    let allHandled;
    const handledAll = new Promise((resolve) => { allHandled = resolve; });
    // The runtime works on its own; the one "caller" waits until every job was handled and
    // its completion is stored (or the time is up), then stops the worker.
    let stop;
    await timed('worker', 1, jobs, async () => {  // one step: reserves all jobs
      stop = sys.startWorker(queue, callers, () => { handled += 1; if (handled >= jobs) allHandled(); });
      await Promise.race([handledAll, new Promise((r) => setTimeout(r, limitMs))]);
      return handled;
    }, { unit: jobs, after: async (done, start) => {
      while ((await sys.completed(queue)) - before < done && performance.now() - start < limitMs + 10000) {
        await new Promise((r) => setTimeout(r, 20));
      }
      return (await sys.completed(queue)) - before;
    } });
    await stop();
  },
  async bulk() {
    const queue = await freshQueue('bulk');
    const batch = Number(opt.batch);
    let from = 0;
    await timed('bulk', Number(opt['bulk-callers']), Number(opt['bulk-jobs']), async () => {
      const mine = from; from += batch;
      await sys.bulk(queue, mine, batch);
      return batch;
    }, { unit: batch });
  },
};

try {
  for (const name of opt.workloads.split(',')) {
    if (!workloads[name]) throw new Error(`unknown workload ${name}`);
    if (sys.workloads && !sys.workloads.includes(name)) continue;  // the ceiling: creates and the worker only
    await workloads[name]();
  }
} finally {
  await sys.close();
}
process.exit(0);
