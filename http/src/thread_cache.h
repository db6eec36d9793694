// A connection thread sets its allocation cache aside while it waits in a long-poll.
//
// jemalloc (the server's allocator) keeps a cache of free blocks per thread and refills a size
// class's cache with many blocks at once, often a fresh slab. cpp-httplib serves each connection
// on its own thread, so a herd of 4,000 long-polls woken by one change is 4,000 threads that
// each refilled their caches with fresh blocks to render one answer: a page fault or more each,
// and blocks left behind in the caches of threads that then sit idle. A thread about to wait
// turns its cache off (the blocks in it go back to the shared arenas, where other threads reuse
// them); while it waits and renders its answer it allocates from the arenas' slabs, whose pages
// are already touched. The cache comes back at the thread's next request, so the threads that
// serve writes keep theirs. bench/RESULTS.md ("herd") has the measurements.
//
// Without jemalloc (sanitizer and fuzz builds link none) both calls do nothing.
#pragma once

namespace jobstore::http {

// Before a long-poll's wait: the calling thread's cache is emptied and off until
// RestoreThreadCache(). Cheap when it is off already.
void SetThreadCacheAsideForWait();
// At each request's start: the calling thread's cache is on again if a wait turned it off.
void RestoreThreadCache();

}  // namespace jobstore::http
