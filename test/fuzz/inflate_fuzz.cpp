// libFuzzer target: sluice::zlib::inflate_filter on arbitrary bytes, fed in arbitrary pieces
// into arbitrary output room, must answer ok / need_more / error and never crash, loop or
// overrun. Then a round trip of the same bytes through deflate and inflate must be exact.
#include <sluice/filters/zlib.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

using sluice::filter_result;
using sluice::flush_mode;

void check(bool ok) {
  if (!ok)
    std::abort();
}

// Runs `f` over `input` in pieces whose sizes come from `sizes` (as a stream does: all input
// with flush_mode::normal, then empty input with `last` until the filter has nothing left).
// Appends what it produced; returns false once the filter reports an error.
template <class Filter>
bool pump(Filter& f, const std::uint8_t* input, std::size_t size, const std::uint8_t* sizes,
          std::size_t n_sizes, flush_mode last, std::vector<std::byte>& produced) {
  std::size_t at = 0, k = 0, stalls = 0;
  std::vector<std::byte> room(256);
  for (;;) {
    std::size_t piece = n_sizes ? sizes[k % n_sizes] + 1 : 64;
    std::size_t out_size = n_sizes ? sizes[(k + 1) % n_sizes] % room.size() + 1 : room.size();
    ++k;
    bool draining = at == size;
    std::span<const std::byte> in(reinterpret_cast<const std::byte*>(input) + at,
                                  std::min(piece, size - at));
    std::span<std::byte> out(room.data(), out_size);
    std::size_t in_before = in.size();
    filter_result r = f(in, out, draining ? last : flush_mode::normal);
    check(in.size() <= in_before && out.size() <= out_size);
    at += in_before - in.size();
    produced.insert(produced.end(), room.begin(), room.begin() + (out_size - out.size()));
    if (r == filter_result::error)
      return false;
    bool progress = in.size() != in_before || out.size() != out_size;
    check(r != filter_result::ok || progress); // ok always means progress
    if (draining && !progress)
      return true; // need_more while flushing: it has nothing left
    stalls = progress ? 0 : stalls + 1;
    check(stalls < 1000); // need_more with input and room, again and again: a spin
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::uint8_t* sizes = data;
  std::size_t n_sizes = std::min<std::size_t>(size, 8);

  sluice::zlib::inflate_filter inflate;
  std::vector<std::byte> ignored;
  pump(inflate, data, size, sizes, n_sizes, flush_mode::finished, ignored);

  sluice::zlib::deflate_filter deflate(static_cast<int>(size % 10));
  std::vector<std::byte> compressed, restored;
  check(pump(deflate, data, size, sizes, n_sizes, flush_mode::finished, compressed));
  sluice::zlib::inflate_filter back;
  check(pump(back, reinterpret_cast<const std::uint8_t*>(compressed.data()), compressed.size(),
             sizes, n_sizes, flush_mode::finished, restored));
  check(restored.size() == size && std::memcmp(restored.data(), data, size) == 0);
  return 0;
}
