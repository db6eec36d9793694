#include "jobstore/store/internal/ack_tree.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace jobstore::internal {
namespace {

// Raw futexes on each slot's own state word (std::atomic::wait would share a waiter table
// between addresses).
void FutexWait(std::atomic<std::uint32_t>* word, std::uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr,
          nullptr, 0);
}

void FutexWakeOne(std::atomic<std::uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, 1, nullptr,
          nullptr, 0);
}

}  // namespace

void AckSlot::Wait() {
  // A wait may return early (a signal, a stale wake): only the state says it is done.
  while (state_.load(std::memory_order_acquire) == 0) FutexWait(&state_, 0);
  std::shared_ptr<AckTree> tree = std::move(tree_);  // ends the slot -> tree -> slot cycle
  tree->WakeChildrenOf(index_);
}

void AckTree::Acknowledge(std::vector<std::shared_ptr<AckSlot>> slots) {
  if (slots.empty()) return;
  auto tree = std::make_shared<AckTree>(std::move(slots));
  // Last slot first: a waiter that sees its acknowledgement wakes its children, so theirs must
  // already be set (else a child could be woken early, sleep again and never be woken).
  for (std::size_t i = tree->slots_.size(); i-- > 0;) {
    AckSlot& slot = *tree->slots_[i];
    slot.tree_ = tree;
    slot.index_ = i;
    slot.state_.store(1, std::memory_order_release);
  }
  FutexWakeOne(&tree->slots_.front()->state_);
}

void AckTree::WakeChildrenOf(std::size_t index) const {
  for (std::size_t child = 2 * index + 1; child <= 2 * index + 2 && child < slots_.size();
       ++child) {
    FutexWakeOne(&slots_[child]->state_);
  }
}

}  // namespace jobstore::internal
