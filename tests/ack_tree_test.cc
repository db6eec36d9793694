// AckTree: every waiter of an acknowledged batch returns with the results written before the
// acknowledgement, whether it slept before or arrived late, and the tree lets go of every slot.
#include "jobstore/store/internal/ack_tree.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <thread>
#include <vector>

namespace jobstore::internal {
namespace {

struct Waiter {
  int result = 0;  // written before the acknowledgement
  AckSlot slot;
};

// Runs one batch of `size` waiters; `late` of them (every late-th) start waiting only after the
// acknowledgement. Returns how many saw their own result.
int RunBatch(int size, int late_every, std::mt19937& rng) {
  std::vector<std::shared_ptr<Waiter>> waiters;
  for (int i = 0; i < size; ++i) waiters.push_back(std::make_shared<Waiter>());
  std::atomic<int> correct{0};
  std::atomic<int> returned{0};
  std::atomic<bool> acknowledged{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < size; ++i) {
    const bool late = late_every > 0 && i % late_every == 0;
    const int spin = static_cast<int>(rng() % 4);
    threads.emplace_back([&, i, late, spin] {
      if (late) {
        while (!acknowledged.load()) std::this_thread::yield();
      }
      for (int s = 0; s < spin; ++s) std::this_thread::yield();
      waiters[i]->slot.Wait();
      if (waiters[i]->result == i + 1) correct.fetch_add(1);
      returned.fetch_add(1);
    });
  }
  std::vector<std::shared_ptr<AckSlot>> slots;
  for (int i = 0; i < size; ++i) {
    waiters[i]->result = i + 1;
    slots.emplace_back(waiters[i], &waiters[i]->slot);
  }
  AckTree::Acknowledge(std::move(slots));
  acknowledged = true;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (returned.load() < size) {
    if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr, "AckTree: %d of %d waiters never woke\n", size - returned.load(), size);
      std::abort();  // a lost wake: joining would hang the suite
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (auto& t : threads) t.join();
  // Every waiter dropped its reference to the tree, and the tree its references to the slots.
  for (const auto& w : waiters) EXPECT_EQ(w.use_count(), 1);
  return correct.load();
}

TEST(AckTree, EveryWaiterOfEveryBatchSizeReturnsWithItsResult) {
  std::mt19937 rng(7);
  for (int size : {1, 2, 3, 4, 7, 8, 15, 33, 64, 200}) {
    for (int round = 0; round < 5; ++round) {
      ASSERT_EQ(RunBatch(size, 0, rng), size) << "size " << size << " round " << round;
    }
  }
}

TEST(AckTree, WaitersThatArriveAfterTheAcknowledgementStillWakeTheirChildren) {
  std::mt19937 rng(11);
  // Slot 0 (the root) and every third slot wait only after the acknowledgement: their children
  // must be woken by them all the same.
  for (int round = 0; round < 20; ++round) {
    ASSERT_EQ(RunBatch(64, 3, rng), 64) << "round " << round;
  }
}

TEST(AckTree, AnEmptyBatchIsNothingAndABatchOfOneLetsGoOfItsSlot) {
  AckTree::Acknowledge({});  // no slot to mark or wake: returns
  auto slot = std::make_shared<AckSlot>();
  std::weak_ptr<AckSlot> watch = slot;
  AckTree::Acknowledge({slot});
  slot->Wait();  // acknowledged before it waited: returns without sleeping
  slot.reset();
  EXPECT_TRUE(watch.expired());  // the tree keeps no slot once its waiter has returned
}

}  // namespace
}  // namespace jobstore::internal
