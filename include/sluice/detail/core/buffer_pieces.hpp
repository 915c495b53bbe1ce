#ifndef SLUICE_DETAIL_CORE_BUFFER_PIECES_HPP
#define SLUICE_DETAIL_CORE_BUFFER_PIECES_HPP

#include <boost/asio/buffer.hpp>

#include <algorithm>
#include <cstddef>
#include <limits>
#include <memory>
#include <type_traits>

namespace sluice::detail {

/// The first bytes of a buffer sequence, flattened once: at most `max_pieces` non-empty
/// pieces and at most `max_bytes` bytes. Like a socket's scatter/gather limit, what is left out
/// is left for the next operation (a *_some operation may move less). It is a buffer
/// sequence itself, so it can be handed to a next layer, and the non-template cores copy
/// into and out of it. `Buffer` is net::mutable_buffer or net::const_buffer.
template <class Buffer>
class buffer_pieces {
public:
  static constexpr std::size_t max_pieces = 16;

  template <class BufferSequence>
  explicit buffer_pieces(const BufferSequence& buffers,
                         std::size_t max_bytes = std::numeric_limits<std::size_t>::max()) {
    auto end = boost::asio::buffer_sequence_end(buffers);
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != end && count_ < max_pieces && max_bytes > 0; ++it) {
      Buffer b(*it);
      if (b.size() == 0)
        continue;
      if (b.size() > max_bytes)
        b = Buffer(b.data(), max_bytes);
      std::construct_at(&pieces_[count_++], b);
      total_ += b.size();
      max_bytes -= b.size();
    }
  }

  /// Copies only the pieces in use: a parked operation keeps a copy, and most hold one.
  buffer_pieces(const buffer_pieces& other) : count_(other.count_), total_(other.total_) {
    std::uninitialized_copy_n(other.pieces_, count_, pieces_);
  }
  buffer_pieces& operator=(const buffer_pieces&) = delete;

  const Buffer* begin() const { return pieces_; }
  const Buffer* end() const { return pieces_ + count_; }
  std::size_t total() const { return total_; }

private:
  // Raw storage: the slots past count_ are never initialized, copied or read.
  union {
    Buffer pieces_[max_pieces];
  };
  std::size_t count_ = 0;
  std::size_t total_ = 0;
};

using read_pieces = buffer_pieces<boost::asio::mutable_buffer>;
using write_pieces = buffer_pieces<boost::asio::const_buffer>;

/// The first non-empty buffer of a sequence (a *_some operation may use just that), without
/// flattening the rest.
template <class Buffer, class BufferSequence>
Buffer first_piece(const BufferSequence& buffers) {
  auto end = boost::asio::buffer_sequence_end(buffers);
  for (auto it = boost::asio::buffer_sequence_begin(buffers); it != end; ++it)
    if (Buffer b(*it); b.size() > 0)
      return b;
  return Buffer();
}

/// Copies as much of `from` into `to` as fits; returns the bytes copied.
inline std::size_t copy_between(const write_pieces& from, const read_pieces& to) {
  return boost::asio::buffer_copy(to, from);
}

/// The first `max_bytes` bytes of `buffers`, for a next layer: a single buffer stays one (no
/// copy of a 16-piece array into every operation), a sequence becomes buffer_pieces.
template <class Buffer, class BufferSequence>
auto prefix_of(const BufferSequence& buffers, std::size_t max_bytes) {
  if constexpr (std::is_convertible_v<BufferSequence, Buffer>) {
    Buffer b(buffers);
    return b.size() > max_bytes ? Buffer(b.data(), max_bytes) : b;
  } else {
    return buffer_pieces<Buffer>(buffers, max_bytes);
  }
}

} // namespace sluice::detail

#endif
