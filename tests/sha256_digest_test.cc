// Sha256Digest and Sha256Hex (http/src): the digest behind Idempotency-Key fingerprints and token
// checks must be SHA-256 itself, on every thread and on every call of one thread (its context is
// reused).
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "sha256_digest.h"

namespace jobstore::http {
namespace {

// FIPS 180-2's examples and the empty string.
constexpr const char* kAbc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr const char* kEmpty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr const char* kTwoBlocks =
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
constexpr const char* kTwoBlocksInput = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

TEST(Sha256DigestTest, MatchesTheStandardsVectorsCallAfterCall) {
  for (int round = 0; round < 3; ++round) {  // the thread's context, re-initialized each time
    EXPECT_EQ(Sha256Hex("abc"), kAbc);
    EXPECT_EQ(Sha256Hex(""), kEmpty);
    EXPECT_EQ(Sha256Hex(kTwoBlocksInput), kTwoBlocks);
  }
  EXPECT_EQ(Sha256Digest("abc")[0], 0xba);
  EXPECT_EQ(Sha256Digest("abc")[31], 0xad);
}

// An Idempotency-Key's fingerprint is the first 16 bytes; asking for more than 32 gives 32.
TEST(Sha256DigestTest, HexOfTheFirstBytes) {
  EXPECT_EQ(Sha256Hex("abc", 16), std::string(kAbc).substr(0, 32));
  EXPECT_EQ(Sha256Hex("abc", 64), kAbc);
  EXPECT_EQ(Sha256Hex("abc", 0), "");
}

TEST(Sha256DigestTest, EachThreadDigestsOnItsOwn) {
  std::vector<std::thread> threads;
  std::vector<int> wrong(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&wrong, t] {
      for (int i = 0; i < 2000; ++i) {
        const bool ok =
            (i % 2 ? Sha256Hex("abc") == kAbc : Sha256Hex(kTwoBlocksInput) == kTwoBlocks);
        if (!ok) ++wrong[t];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < 8; ++t) EXPECT_EQ(wrong[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace jobstore::http
