// Test helper: appends to a store at full speed from N threads and prints the id of every job
// whose creation was acknowledged, one per line, flushed at once. crash tests SIGKILL it.
//   crash_writer DATA_DIR THREADS
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "jobstore/store/job_store.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: crash_writer DATA_DIR THREADS\n");
    return 2;
  }
  jobstore::StoreOptions options;
  options.data_dir = argv[1];
  auto store = jobstore::JobStore::Open(options);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  const int threads = std::stoi(argv[2]);
  const std::string run = std::to_string(::getpid());
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int i = 0;; ++i) {
        jobstore::CreateJob create;
        create.job_id = "r" + run + "-t" + std::to_string(t) + "-" + std::to_string(i);
        auto out = (*store)->Submit({create.job_id, {}, {}, create});
        if (!out.ok()) continue;
        std::string line = create.job_id + "\n";
        // One write() per line: a line is either wholly in the pipe or not at all.
        if (::write(STDOUT_FILENO, line.data(), line.size()) < 0) return;
      }
    });
  }
  for (auto& th : pool) th.join();
}
