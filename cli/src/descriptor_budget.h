// How many connections the server may hold open without starving its own log of file
// descriptors. A crowd of connections that takes the last descriptor makes RocksDB's next WAL
// switch or flush fail with EMFILE, and writes stop.
#pragma once

#include <cstddef>

namespace jobstore::cli {

struct DescriptorBudget {
  std::size_t limit = 0;            // RLIMIT_NOFILE's soft limit after raising it
  std::size_t reserved = 0;         // kept for the log, the listener and the process
  std::size_t connections = 0;      // serving threads: min(--max-connections, what is left)
  std::size_t waiting = 0;          // accepted connections that may queue for a thread
};

// Raises the soft RLIMIT_NOFILE to the hard limit (as far as the kernel allows), then splits
// it: a quarter (64 to 1024) stays reserved, the rest goes to connections, up to
// `max_connections` serving and up to 1024 waiting.
DescriptorBudget PlanDescriptors(std::size_t max_connections);

}  // namespace jobstore::cli
