// Sizes the kernel's futex hash for a process of thousands of threads.
//
// Since Linux 6.17 a threaded process gets a private futex hash of 16 slots, and it does not grow
// with the threads. Every thread parked in a long-poll waits on a futex in one of those slots, so
// 4,000 parked connection threads put ~250 waiters in each slot, and every futex operation of
// the process (a mutex hand-off, the writer waking a create's connection thread) walks its
// slot's waiters under the slot's spinlock. Measured on a 2-core machine: in the slowest rounds
// a herd of 4,000 woken long-polls spent half its CPU walking them, and creates beside 4,000
// parked feed readers ran at ~0.7 of their rate alone (bench/RESULTS.md, "herd"). Older kernels
// use the global hash, sized by CPU count, which this leaves alone.
#pragma once

#include <cstddef>

namespace jobstore::cli {

// Gives this process a private futex hash of two slots per thread (the connection threads and 64
// more for the rest of the process), a power of two from 1,024 to 65,536 slots of 64 bytes, and
// logs the outcome. Call before the process starts a thread. When the kernel has no private
// futex hash (before 6.17) or refuses, the process keeps what it had and works as before.
void SizeFutexHashForThreads(std::size_t connection_threads);

}  // namespace jobstore::cli
