#include "descriptor_budget.h"

#include <sys/resource.h>

#include <algorithm>

namespace jobstore::cli {

DescriptorBudget PlanDescriptors(std::size_t max_connections) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  DescriptorBudget b;
  b.limit = lim.rlim_cur == RLIM_INFINITY ? (1u << 20) : static_cast<std::size_t>(lim.rlim_cur);
  b.reserved = std::clamp<std::size_t>(b.limit / 4, 64, 1024);
  const std::size_t left = b.limit > b.reserved ? b.limit - b.reserved : 1;
  b.connections = std::clamp<std::size_t>(max_connections, 1, left);
  b.waiting = std::min<std::size_t>(1024, left - b.connections);
  return b;
}

}  // namespace jobstore::cli
