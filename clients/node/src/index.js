// jobstore's Node client and worker kit (Node 20+, no dependencies). See README.md.
export { JobstoreClient } from './client.js';
export { Worker, JobContext, PermanentFailure, WorkerStopping } from './worker.js';
export * from './errors.js';
