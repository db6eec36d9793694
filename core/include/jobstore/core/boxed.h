// Boxed<T>: an optional value kept on the heap, with value semantics.
//
// For parts of a value that are large and usually absent: std::optional<T> takes sizeof(T) in
// every instance, a Boxed<T> one pointer. The million-job projection holds one Job per live job,
// and most of them never have a HITL request or an error (bench/RESULTS.md, memory per job).
// The interface is the subset of std::optional that Job's users need; copies are deep, so a
// copied Job never shares a part with the version it came from.
#pragma once

#include <memory>
#include <utility>

namespace jobstore {

template <typename T>
class Boxed {
 public:
  Boxed() = default;
  Boxed(T value) : ptr_(std::make_unique<T>(std::move(value))) {}  // NOLINT: like optional
  Boxed(const Boxed& other) : ptr_(other.ptr_ ? std::make_unique<T>(*other.ptr_) : nullptr) {}
  Boxed(Boxed&&) noexcept = default;
  Boxed& operator=(const Boxed& other) {
    if (this != &other) ptr_ = other.ptr_ ? std::make_unique<T>(*other.ptr_) : nullptr;
    return *this;
  }
  Boxed& operator=(Boxed&&) noexcept = default;
  Boxed& operator=(T value) {
    ptr_ = std::make_unique<T>(std::move(value));
    return *this;
  }

  bool has_value() const { return ptr_ != nullptr; }
  explicit operator bool() const { return has_value(); }
  // Like std::optional's: only with a value.
  T& operator*() { return *ptr_; }
  const T& operator*() const { return *ptr_; }
  T* operator->() { return ptr_.get(); }
  const T* operator->() const { return ptr_.get(); }
  void reset() { ptr_.reset(); }

  // Equal when both are empty or both hold equal values.
  bool operator==(const Boxed& other) const {
    if (!ptr_ || !other.ptr_) return ptr_ == other.ptr_;
    return *ptr_ == *other.ptr_;
  }

 private:
  std::unique_ptr<T> ptr_;
};

}  // namespace jobstore
