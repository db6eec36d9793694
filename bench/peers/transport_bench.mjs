// The Node client beside bare fetch and bare http.request, creating jobs from 32 callers:
// jobs/s and this process's CPU per request (bench/RESULTS.md, "The Node client's transport").
//   node bench/peers/transport_bench.mjs [http://127.0.0.1:8000]
import http from 'node:http';
import { JobstoreClient } from 'jobstore-client';
const url = process.argv[2] || "http://127.0.0.1:8000";
const N = 6000, C = 32;
async function run(name, op) {
  let next = 0; const t0 = performance.now(); const c0 = process.cpuUsage();
  await Promise.all(Array.from({length: C}, async () => { while (next++ < N) await op(next); }));
  const s = (performance.now() - t0) / 1000; const c = process.cpuUsage(c0);
  console.log(name, Math.round(N / s), '/s', Math.round((c.user + c.system) / N), 'us cpu/req');
}
const client = new JobstoreClient(url);
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
function post(path, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = http.request(url + path, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      let chunks = ''; res.setEncoding('utf8'); res.on('data', (d) => chunks += d); res.on('end', () => resolve(JSON.parse(chunks)));
    });
    req.on('error', reject); req.end(data);
  });
}
for (let r = 0; r < 2; r++) {
  await run('client', (i) => client.create('x', { input: { n: i } }));
  await run('fetch-bare', (i) => fetch(url + '/api/v1/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'x', input: { n: i } }) }).then((r) => r.json()));
  await run('http.request', (i) => post('/api/v1/jobs', { type: 'x', input: { n: i } }));
}
process.exit(0);
