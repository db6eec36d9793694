// A value's text rendering, made once on first use and kept with the value.
//
// A published job version is immutable and often read many times (a worker's long-poll, the
// dashboard, GET after GET); rendering its JSON was the whole gap between GET and a bare
// httplib server (bench/RESULTS.md). Copies start empty, because a copied Job is about to be
// changed into another version; comparisons ignore the cache. Thread-safe: two first readers may
// both render, one result is kept.
#pragma once

#include <atomic>
#include <string>

namespace jobstore {

class RenderedText {
 public:
  RenderedText() = default;
  RenderedText(const RenderedText&) noexcept {}
  RenderedText& operator=(const RenderedText&) noexcept {
    Clear();
    return *this;
  }
  ~RenderedText() { delete text_.load(std::memory_order_acquire); }
  bool operator==(const RenderedText&) const { return true; }

  // The cached text, or render()'s result stored as the cached text.
  template <typename Render>
  const std::string& Get(Render&& render) const {
    if (const std::string* p = text_.load(std::memory_order_acquire)) return *p;
    auto* fresh = new std::string(render());
    const std::string* expected = nullptr;
    if (text_.compare_exchange_strong(expected, fresh, std::memory_order_acq_rel)) return *fresh;
    delete fresh;
    return *expected;
  }
  // Drops the cached text; for code that changes a value in place.
  void Clear() { delete text_.exchange(nullptr, std::memory_order_acq_rel); }

 private:
  mutable std::atomic<const std::string*> text_{nullptr};
};

}  // namespace jobstore
