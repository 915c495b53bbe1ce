#ifndef SLUICE_DETAIL_BUFFER_LIST_HPP
#define SLUICE_DETAIL_BUFFER_LIST_HPP

#include <boost/asio/buffer.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <span>

namespace sluice::detail {

/// The first pieces of an operation's buffer sequence, flattened once at initiation so that
/// the non-template core can copy into and out of them. Like a socket's scatter/gather limit,
/// pieces past `max_pieces` are left for the next operation (a *_some operation may move less).
template <class Byte>
struct buffer_list {
  static constexpr std::size_t max_pieces = 16;

  std::array<std::span<Byte>, max_pieces> pieces; // the first `count` are set
  std::size_t count = 0;
  std::size_t total = 0;

  template <class BufferSequence>
  explicit buffer_list(const BufferSequence& buffers) {
    auto end = boost::asio::buffer_sequence_end(buffers);
    for (auto it = boost::asio::buffer_sequence_begin(buffers); it != end && count < max_pieces;
         ++it) {
      auto b = *it;
      if (b.size() == 0)
        continue;
      pieces[count++] = {static_cast<Byte*>(b.data()), b.size()};
      total += b.size();
    }
  }

  std::span<const std::span<Byte>> used() const { return {pieces.data(), count}; }
};

/// Copies as much of `from` into `to` as fits; returns the bytes copied.
inline std::size_t copy_between(const buffer_list<const std::byte>& from,
                                const buffer_list<std::byte>& to) {
  std::size_t copied = 0, i = 0, j = 0, i_off = 0, j_off = 0;
  while (i < from.count && j < to.count) {
    auto src = from.pieces[i].subspan(i_off);
    auto dst = to.pieces[j].subspan(j_off);
    std::size_t n = std::min(src.size(), dst.size());
    std::memcpy(dst.data(), src.data(), n);
    copied += n;
    i_off += n;
    j_off += n;
    if (i_off == from.pieces[i].size())
      ++i, i_off = 0;
    if (j_off == to.pieces[j].size())
      ++j, j_off = 0;
  }
  return copied;
}

} // namespace sluice::detail

#endif
