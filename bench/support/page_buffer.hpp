// Page-aligned buffers for the benchmarks, and the pseudo-random bytes they are filled with.
#ifndef SLUICE_BENCH_SUPPORT_PAGE_BUFFER_HPP
#define SLUICE_BENCH_SUPPORT_PAGE_BUFFER_HPP

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <random>
#include <span>

namespace sluice::bench {

/// A page-aligned byte buffer. Benchmarks copy between two of these, so that every peer sees
/// the same relative alignment: with malloc's, a destination 16 bytes past its source modulo
/// 4 KiB (the usual layout of two blocks allocated in a row) slows memcpy down markedly on x86
/// (4K aliasing of loads with earlier stores).
class page_buffer {
public:
  static constexpr std::size_t page = 4096;

  explicit page_buffer(std::size_t n)
      : data_(static_cast<std::byte*>(std::aligned_alloc(page, (n + page - 1) / page * page))),
        size_(n) {
    if (!data_)
      throw std::bad_alloc();
    std::fill_n(data_.get(), n, std::byte{0});
  }

  std::byte* data() const { return data_.get(); }
  std::size_t size() const { return size_; }
  std::span<std::byte> span() const { return {data_.get(), size_}; }

private:
  struct release {
    void operator()(std::byte* p) const { std::free(p); }
  };
  std::unique_ptr<std::byte, release> data_;
  std::size_t size_;
};

/// `n` pseudo-random bytes, the same for the same `seed`. A writer that sends them over and
/// over puts src[p % n] at stream position p, so a read can be checked at both of its ends
/// in O(1).
inline page_buffer random_pattern(std::size_t n, std::uint32_t seed) {
  page_buffer v(n);
  std::mt19937 gen(seed);
  for (auto& b : v.span())
    b = static_cast<std::byte>(gen() & 0xff);
  return v;
}

} // namespace sluice::bench

#endif
