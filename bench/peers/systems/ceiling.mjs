// The ceiling under jobstore's create: bench/bare_httplib_server --durable (cpp-httplib, each
// POST body written and fdatasync'ed by the plainest group commit, a fixed answer), driven by
// jobstore's own Node client exactly as the jobstore system is. Creates only.
import { JobstoreClient } from 'jobstore-client';

export async function open({ url }) {
  const client = new JobstoreClient(url);
  return {
    name: 'ceiling',
    durability: 'write + fdatasync per group',
    workloads: ['create'],
    create: (queue, i) => client.create(queue, { input: { n: i } }),
    close: async () => client.close(),
  };
}
