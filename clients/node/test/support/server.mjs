// Starts the real `jobstore serve` (JOBSTORE_BINARY, default build/cli/jobstore) on a free
// loopback port in a temp dir, by PID; stop() ends it with SIGTERM.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(fileURLToPath(import.meta.url), '../../../../..');
export const BINARY = process.env.JOBSTORE_BINARY || join(repo, 'build/cli/jobstore');

// `dir` and `port`: restart a stopped server on its data and port (stop({keep: true}) keeps them).
export async function startServer({ flags = [], dir, port: wanted = 0 } = {}) {
  dir = dir || mkdtempSync(join(tmpdir(), 'jobstore-node-'));
  const proc = spawn(BINARY, ['serve', '--data-dir', join(dir, 'data'), '--listen', `127.0.0.1:${wanted}`, ...flags],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  const port = await new Promise((ok, fail) => {
    let seen = '';
    proc.stderr.on('data', (chunk) => {
      seen += chunk;
      const m = /serving http:\/\/127\.0\.0\.1:(\d+)/.exec(seen);
      if (m) ok(Number(m[1]));
    });
    proc.once('exit', (code) => fail(new Error(`jobstore exited with ${code}: ${seen}`)));
  });
  proc.stderr.resume();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    dir,
    async stop({ keep = false } = {}) {
      if (proc.exitCode === null) {
        const exited = new Promise((ok) => proc.once('exit', ok));
        proc.kill('SIGTERM');
        await exited;
      }
      if (!keep) rmSync(dir, { recursive: true, force: true });
    },
  };
}
