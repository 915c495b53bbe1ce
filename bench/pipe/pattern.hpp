// The bytes the pipe benchmark sends, and the check of what each read received.
#ifndef SLUICE_BENCH_PIPE_PATTERN_HPP
#define SLUICE_BENCH_PIPE_PATTERN_HPP

#include "support/page_buffer.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace sluice::bench::pipe_bench {

/// A chunk of pseudo-random bytes: the writer sends it over and over, so stream position p
/// holds src[p % chunk], and a read can be checked at both of its ends in O(1).
inline page_buffer make_pattern(std::size_t n) {
  return random_pattern(n, 12345);
}

/// Checks a read at stream position `pos` against the pattern: at both of its ends always,
/// and every byte of it on every 256th read (`index`), so that the check costs next to nothing.
inline bool read_matches(std::span<const std::byte> src, std::span<const std::byte> got,
                         std::uint64_t pos, std::uint64_t index) {
  std::size_t c = src.size();
  if (got.front() != src[pos % c] || got.back() != src[(pos + got.size() - 1) % c])
    return false;
  if (index % 256 != 0)
    return true;
  for (std::size_t done = 0; done < got.size();) { // at most one wrap: reads are <= c bytes
    std::size_t from = (pos + done) % c, n = std::min(got.size() - done, c - from);
    if (std::memcmp(got.data() + done, src.data() + from, n) != 0)
      return false;
    done += n;
  }
  return true;
}

} // namespace sluice::bench::pipe_bench

#endif
