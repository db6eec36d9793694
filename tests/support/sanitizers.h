// How much slower code runs in this build: sanitizer builds (ASan+UBSan, TSan) run the same
// tests, several times slower. A test whose promise is a bound (exit within 2 s) checks the bound
// itself in the normal build and a scaled one under a sanitizer, where the behaviour is the point.
#pragma once

namespace jobstore::testing {

// gcc defines __SANITIZE_*__; clang (the ASan+UBSan stage's compiler) answers __has_feature.
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define JOBSTORE_TEST_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define JOBSTORE_TEST_SANITIZED 1
#endif

#ifdef JOBSTORE_TEST_SANITIZED
inline constexpr int kSanitizerSlowdown = 5;
#else
inline constexpr int kSanitizerSlowdown = 1;
#endif

}  // namespace jobstore::testing
