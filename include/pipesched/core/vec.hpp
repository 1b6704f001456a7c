// pipesched: a growable array that is cheap to evaluate in constant expressions.
//
// g++ 12 charges several hundred constexpr operations per std::vector::push_back (and the
// default limit is 2^25 per constant expression); this array charges tens. It is what
// tables and the analyses use, so that generating, lowering and verifying p = 16,
// m = 128, v = 2 fits the compiler's default limits. The interface is the subset of
// std::vector the library needs, and it converts to and from std::vector. Storage is
// new T[]: T must be default-constructible (cheapest when trivially so).
#pragma once

#include <cstddef>
#include <initializer_list>
#include <vector>

namespace pipesched {

template <class T> class vec {
public:
  using value_type = T;
  using size_type = std::size_t;
  using iterator = T*;
  using const_iterator = T const*;

  constexpr vec() = default;
  constexpr explicit vec(std::size_t n, T const& value = T{}) { assign(n, value); }
  constexpr vec(std::initializer_list<T> il) {
    reserve(il.size());
    for (T const& x : il) data_[size_++] = x;
  }
  constexpr explicit vec(std::vector<T> const& v) {
    reserve(v.size());
    for (T const& x : v) data_[size_++] = x;
  }
  constexpr vec(vec const& o) {
    reserve(o.size_);
    for (std::size_t i = 0; i < o.size_; ++i) data_[i] = o.data_[i];
    size_ = o.size_;
  }
  constexpr vec(vec&& o) noexcept : data_(o.data_), size_(o.size_), cap_(o.cap_) {
    o.data_ = nullptr;
    o.size_ = o.cap_ = 0;
  }
  constexpr vec& operator=(vec const& o) {
    if (this != &o) {
      clear();
      reserve(o.size_);
      for (std::size_t i = 0; i < o.size_; ++i) data_[i] = o.data_[i];
      size_ = o.size_;
    }
    return *this;
  }
  constexpr vec& operator=(vec&& o) noexcept {
    if (this != &o) {
      release();
      data_ = o.data_;
      size_ = o.size_;
      cap_ = o.cap_;
      o.data_ = nullptr;
      o.size_ = o.cap_ = 0;
    }
    return *this;
  }
  constexpr ~vec() { release(); }

  constexpr explicit operator std::vector<T>() const { return std::vector<T>(begin(), end()); }

  constexpr void reserve(std::size_t n) {
    if (n <= cap_) return;
    T* fresh = new T[n];
    for (std::size_t i = 0; i < size_; ++i) fresh[i] = static_cast<T&&>(data_[i]);
    delete[] data_;
    data_ = fresh;
    cap_ = n;
  }
  constexpr void push_back(T const& x) {
    if (size_ == cap_) {
      T copy = x; // x may live in this array, which grow() frees
      grow();
      data_[size_++] = static_cast<T&&>(copy);
      return;
    }
    data_[size_++] = x;
  }
  constexpr void push_back(T&& x) {
    if (size_ == cap_) grow();
    data_[size_++] = static_cast<T&&>(x);
  }
  template <class... A> constexpr T& emplace_back(A&&... a) {
    if (size_ == cap_) grow();
    data_[size_] = T{static_cast<A&&>(a)...};
    return data_[size_++];
  }
  constexpr void pop_back() { --size_; }
  constexpr void clear() { size_ = 0; }
  constexpr void assign(std::size_t n, T const& value_in) {
    T const value = value_in; // may live in this array
    size_ = 0;
    reserve(n);
    for (std::size_t i = 0; i < n; ++i) data_[i] = value;
    size_ = n;
  }
  constexpr void resize(std::size_t n, T const& value_in = T{}) {
    T const value = value_in; // may live in this array, which reserve() may free
    reserve(n);
    for (std::size_t i = size_; i < n; ++i) data_[i] = value;
    size_ = n;
  }
  constexpr iterator insert(const_iterator pos, T const& x) {
    std::size_t k = static_cast<std::size_t>(pos - data_);
    T copy = x;
    if (size_ == cap_) grow();
    for (std::size_t i = size_; i > k; --i) data_[i] = static_cast<T&&>(data_[i - 1]);
    data_[k] = static_cast<T&&>(copy);
    ++size_;
    return data_ + k;
  }
  constexpr iterator erase(const_iterator pos) {
    std::size_t k = static_cast<std::size_t>(pos - data_);
    for (std::size_t i = k; i + 1 < size_; ++i) data_[i] = static_cast<T&&>(data_[i + 1]);
    --size_;
    return data_ + k;
  }

  constexpr std::size_t size() const { return size_; }
  constexpr bool empty() const { return size_ == 0; }
  constexpr std::size_t capacity() const { return cap_; }
  constexpr T* data() { return data_; }
  constexpr T const* data() const { return data_; }
  constexpr T& operator[](std::size_t i) { return data_[i]; }
  constexpr T const& operator[](std::size_t i) const { return data_[i]; }
  constexpr T& front() { return data_[0]; }
  constexpr T const& front() const { return data_[0]; }
  constexpr T& back() { return data_[size_ - 1]; }
  constexpr T const& back() const { return data_[size_ - 1]; }
  constexpr iterator begin() { return data_; }
  constexpr iterator end() { return data_ + size_; }
  constexpr const_iterator begin() const { return data_; }
  constexpr const_iterator end() const { return data_ + size_; }

  friend constexpr bool operator==(vec const& a, vec const& b) {
    if (a.size_ != b.size_) return false;
    for (std::size_t i = 0; i < a.size_; ++i)
      if (!(a.data_[i] == b.data_[i])) return false;
    return true;
  }

private:
  constexpr void grow() { reserve(cap_ < 8 ? 8 : cap_ * 2); }
  constexpr void release() {
    delete[] data_;
    data_ = nullptr;
    size_ = cap_ = 0;
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t cap_ = 0;
};

} // namespace pipesched
