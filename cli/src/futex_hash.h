// Sizes the kernel's futex hash for a process of thousands of threads.
//
// Since Linux 6.17 a threaded process gets a private futex hash of 16 slots, and it does not grow
// with the threads. Every thread parked in a long-poll waits on a futex in one of those slots, so
// 4,000 parked connection threads put ~250 waiters in each slot, and every futex operation of
// the process (a mutex hand-off, the writer waking a create's connection thread) walks its
// slot's waiters under the slot's spinlock. Measured on a 2-core machine: a herd of 4,000 woken
// long-polls spent half its CPU walking them, and creates beside 4,000 parked feed readers ran at
// ~0.7 of their rate alone (bench/RESULTS.md, "herd"). Older kernels use the global hash, sized
// by CPU count, which this leaves alone.
#pragma once

#include <cstddef>

namespace jobstore::cli {

// The slots SizeFutexHashForThreads asks for: two per thread (the connection threads and 64
// more for the rest of the process), a power of two from 1,024 to 65,536 (64 bytes each).
std::size_t FutexHashSlotsFor(std::size_t connection_threads);

// Gives this process a private futex hash of FutexHashSlotsFor(connection_threads) slots and
// logs the outcome. Returns the slots the kernel reports afterwards, or 0 when it has no private
// futex hash (before 6.17) or refused; the process works either way, only slower under a herd.
std::size_t SizeFutexHashForThreads(std::size_t connection_threads);

}  // namespace jobstore::cli
