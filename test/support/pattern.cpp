#include <sluice_test/pattern.hpp>

#include <algorithm>

namespace sluice_test {

bytes compressible_pattern(std::size_t n, std::uint64_t seed) {
  bytes v(n);
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 0x2545F4914F6CDD1DULL;
  auto next = [&x] { // xorshift64
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  for (std::size_t i = 0; i < n;) {
    const std::uint64_t r = next();
    const std::size_t len = std::min<std::size_t>(n - i, 8 + r % 120);
    if (i >= 4096 && (r >> 62) != 0) { // three runs in four repeat earlier bytes
      const std::size_t from = i - 1 - (r >> 16) % 4096;
      for (std::size_t k = 0; k < len; ++k) // byte by byte: a run may overlap itself
        v[i + k] = v[from + k];
    } else {
      for (std::size_t k = 0; k < len; ++k)
        v[i + k] = static_cast<std::uint8_t>(next() >> 56);
    }
    i += len;
  }
  return v;
}

std::string difference(const bytes& got, const bytes& want) {
  if (got.size() != want.size())
    return "sizes differ: " + std::to_string(got.size()) + " vs " + std::to_string(want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    if (got[i] != want[i])
      return "first difference at byte " + std::to_string(i);
  return "";
}

} // namespace sluice_test
