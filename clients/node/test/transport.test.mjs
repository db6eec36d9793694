// The client's keep-alive pool against a server that misbehaves on purpose (a plain node:http
// server here, not jobstore): a reused connection closed before any answer byte is repeated
// even for a write that is not safe to repeat; a connection that dies mid-answer is not; idle
// connections leave the pool before a server's 5 s keep-alive timeout.
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConnectionFailed, JobstoreClient } from '../src/index.js';

// A server whose answer to the n-th request (1-based) is decided by behave(n, req, res).
async function fakeServer(behave) {
  let n = 0;
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => behave(++n, req, res));
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${server.address().port}`, requests: () => n, sockets,
    close: () => { for (const s of sockets) s.destroy(); server.close(); } };
}

const answer = (res, body) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(body)); };

test('a write on a reused connection that closes before answering is sent again', async () => {
  const server = await fakeServer((n, req, res) => {
    if (n === 2) { req.socket.destroy(); return; }  // the keep-alive connection's second request
    answer(res, { status: 'completed', n });
  });
  const client = new JobstoreClient(server.url, { backoff: 0.01 });
  await client.complete('j1', null);                    // opens the connection
  const done = await client.complete('j1', null);       // reuses it; it closes unanswered
  assert.equal(done.n, 3);
  assert.equal(server.requests(), 3);
  client.close();
  server.close();
});

test('a write whose connection dies mid-answer is not sent again', async () => {
  const server = await fakeServer((n, req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
    res.write('{"status":');  // part of the answer, then the connection dies
    setTimeout(() => req.socket.destroy(), 20);
  });
  const client = new JobstoreClient(server.url, { backoff: 0.01 });
  await assert.rejects(client.complete('j1', null), ConnectionFailed);
  assert.equal(server.requests(), 1);
  client.close();
  server.close();
});

test('an idle pooled connection is closed by the client before a 5 s server timeout', async () => {
  const server = await fakeServer((n, req, res) => answer(res, { n }));
  const client = new JobstoreClient(server.url);
  await client.stats();
  assert.equal(server.sockets.size, 1);
  await sleep(4600);
  assert.equal(server.sockets.size, 0, 'the client still holds the idle connection');
  client.close();
  server.close();
});

test('requests go to the base URL\'s host, port, base path and credentials, parsed once', async () => {
  const seen = [];
  const server = await fakeServer((n, req, res) => {
    seen.push({ url: req.url, authorization: req.headers.authorization });
    answer(res, { ok: true });
  });
  try {
    const port = new URL(server.url).port;
    for (const base of [`http://127.0.0.1:${port}`, `http://127.0.0.1:${port}/`, `http://u:p@127.0.0.1:${port}/prefix/`]) {
      await new JobstoreClient(base).request('GET', '/jobs', { query: { status: 'pending' } });
    }
    assert.deepEqual(seen, [
      { url: '/api/v1/jobs?status=pending', authorization: undefined },
      { url: '/api/v1/jobs?status=pending', authorization: undefined },
      { url: '/prefix/api/v1/jobs?status=pending', authorization: `Basic ${Buffer.from('u:p').toString('base64')}` },
    ]);
  } finally {
    server.close();
  }
});
