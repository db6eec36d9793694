// Fills a store with cancelled jobs whose TTL is 0: all of them are due for expiry at once, so
// the next compaction has `jobs` of them to do (100k take the real server several seconds).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "jobstore/store/job_store.h"

namespace jobstore::testing {

inline void AddExpiredJobs(JobStore& store, int jobs, const std::string& prefix = "old-") {
  for (int batch = 0; batch < jobs / 1000; ++batch) {
    std::vector<Command> creates, cancels;
    for (int i = 0; i < 1000; ++i) {
      CreateJob c;
      c.job_id = prefix + std::to_string(batch * 1000 + i);
      c.ttl_seconds = 0;
      creates.push_back(Command{c.job_id, {}, {}, c});
      cancels.push_back(Command{c.job_id, {}, {}, CancelJob{}});
    }
    ASSERT_TRUE(store.SubmitAll(std::move(creates)).ok());
    ASSERT_TRUE(store.SubmitAll(std::move(cancels)).ok());
  }
}

}  // namespace jobstore::testing
