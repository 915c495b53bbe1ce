#include "consumer_lib.hpp"

#include <sluice/filters/zlib.hpp>

#include <array>
#include <cstddef>
#include <span>

// sluice::zlib linked too: deflate a few bytes and inflate them back.
static bool zlib_round_trip() {
  std::array<std::byte, 16> text{}, unpacked{};
  text.fill(std::byte{'z'});
  std::array<std::byte, 64> wire{};
  std::span<const std::byte> in(text);
  std::span<std::byte> out(wire);
  if (sluice::zlib::deflate_filter{}(in, out, sluice::flush_mode::finished) ==
      sluice::filter_result::error)
    return false;
  std::span<const std::byte> packed_in(wire.data(), wire.size() - out.size());
  std::span<std::byte> unpacked_out(unpacked);
  if (sluice::zlib::inflate_filter{}(packed_in, unpacked_out, sluice::flush_mode::finished) ==
      sluice::filter_result::error)
    return false;
  return unpacked == text && unpacked_out.empty();
}

int main() {
  return consumer_pipe_round_trip() && zlib_round_trip() ? 0 : 1;
}
