#include "futex_hash.h"

#include <spdlog/spdlog.h>
#include <sys/prctl.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

// From <linux/prctl.h> of Linux 6.17; Debian 12's headers predate it.
#ifndef PR_FUTEX_HASH
#define PR_FUTEX_HASH 78
#define PR_FUTEX_HASH_SET_SLOTS 1
#define PR_FUTEX_HASH_GET_SLOTS 2
#endif

namespace jobstore::cli {

void SizeFutexHashForThreads(std::size_t connection_threads) {
  const std::size_t wanted =
      std::clamp<std::size_t>(std::bit_ceil(2 * (connection_threads + 64)), 1024, 65536);
  if (::prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS, wanted, 0, 0) != 0) {
    if (errno == EINVAL) {
      spdlog::info("futex hash: the kernel's global one (no private futex hash before Linux 6.17)");
    } else {
      spdlog::warn("futex hash: keeping the kernel's default, {} slots refused: {}", wanted,
                   std::strerror(errno));
    }
    return;
  }
  spdlog::info("futex hash: {} slots for {} connection threads",
               ::prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_GET_SLOTS, 0, 0, 0), connection_threads);
}

}  // namespace jobstore::cli
