// A loopback TCP proxy that delays every chunk each way by `delayMs` (a network's latency, in
// order), for the worker kit's tests across a network. close() ends it and every connection.
import { createConnection, createServer } from 'node:net';

export async function startDelayProxy(upstreamPort, delayMs) {
  const sockets = new Set();
  const pipe = (from, to) => {
    from.on('data', (chunk) => setTimeout(() => { if (!to.destroyed) to.write(chunk); }, delayMs));
    from.on('end', () => setTimeout(() => to.end(), delayMs));
    from.on('error', () => to.destroy());
    from.on('close', () => setTimeout(() => to.destroy(), delayMs));
  };
  const server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: upstreamPort });
    for (const s of [client, upstream]) { sockets.add(s); s.on('close', () => sockets.delete(s)); }
    pipe(client, upstream);
    pipe(upstream, client);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((ok) => { for (const s of sockets) s.destroy(); server.close(ok); }),
  };
}
