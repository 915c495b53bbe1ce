// Test data: patterned bytes in which a lost, duplicated or reordered byte shows, and a
// short report of where two byte strings differ.
#ifndef SLUICE_TEST_PATTERN_HPP
#define SLUICE_TEST_PATTERN_HPP

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sluice_test {

using bytes = std::vector<std::uint8_t>;

/// Byte `i` of test stream `salt`: no short period, so a lost, duplicated or reordered byte
/// shows as a mismatch, and streams of different salts differ at once.
inline std::uint8_t pattern_byte(std::uint64_t i, std::uint64_t salt) {
  std::uint64_t x = i + salt * 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return static_cast<std::uint8_t>(x ^ (x >> 31));
}

/// Bytes [from, from + n) of test stream `salt`, in the container the caller compares
/// with: `bytes` (the default), `std::string` or `std::vector<char>`.
template <class Container = bytes>
Container pattern(std::size_t n, std::uint64_t salt = 1, std::size_t from = 0) {
  Container out(n, typename Container::value_type{});
  for (std::size_t i = 0; i < n; ++i)
    out[i] = static_cast<typename Container::value_type>(pattern_byte(from + i, salt));
  return out;
}

/// `n` bytes that zlib has real work on: pseudo-random runs, and runs that repeat bytes from
/// up to 4 KiB back (LZ77-style). A lost, duplicated or reordered byte shows too.
bytes compressible_pattern(std::size_t n, std::uint64_t seed);

/// "" when equal, else where they first differ (keeps failure output short).
std::string difference(const bytes& got, const bytes& want);

} // namespace sluice_test

#endif
