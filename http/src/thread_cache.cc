#include "thread_cache.h"

#include <dlfcn.h>

#include <cstddef>

namespace jobstore::http {
namespace {

thread_local bool t_cache_off = false;

// jemalloc's control call, looked up at run time: the server links jemalloc, the tests may not.
using MallctlFunction = int (*)(const char*, void*, std::size_t*, void*, std::size_t);

bool SetThreadCacheEnabled(bool enabled) {
  static const auto mallctl = reinterpret_cast<MallctlFunction>(dlsym(RTLD_DEFAULT, "mallctl"));
  return mallctl != nullptr &&
         mallctl("thread.tcache.enabled", nullptr, nullptr, &enabled, sizeof enabled) == 0;
}

}  // namespace

void SetThreadCacheAsideForWait() {
  if (!t_cache_off && SetThreadCacheEnabled(false)) t_cache_off = true;
}

void RestoreThreadCache() {
  if (t_cache_off && SetThreadCacheEnabled(true)) t_cache_off = false;
}

}  // namespace jobstore::http
