#ifndef SLUICE_DETAIL_BUFFER_PREFIX_HPP
#define SLUICE_DETAIL_BUFFER_PREFIX_HPP

#include <boost/asio/buffer.hpp>

#include <array>
#include <cstddef>
#include <type_traits>

namespace sluice::detail {

/// The first `limit` bytes of a buffer sequence, as a sequence of at most 16 buffers (the
/// rest is left for the next operation, as a *_some operation may).
template <class Buffer>
class buffer_prefix {
public:
  template <class BufferSequence>
  buffer_prefix(const BufferSequence& buffers, std::size_t limit) {
    auto end = boost::asio::buffer_sequence_end(buffers);
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != end && count_ < pieces_.size() && limit > 0; ++it) {
      Buffer b(*it);
      if (b.size() == 0)
        continue;
      if (b.size() > limit)
        b = Buffer(b.data(), limit);
      pieces_[count_++] = b;
      limit -= b.size();
    }
  }
  const Buffer* begin() const { return pieces_.data(); }
  const Buffer* end() const { return pieces_.data() + count_; }

private:
  std::array<Buffer, 16> pieces_;
  std::size_t count_ = 0;
};

/// The first `limit` bytes of `buffers`: a single buffer stays one (no copy of a 16-piece
/// array into every operation), a sequence becomes a buffer_prefix.
template <class Buffer, class BufferSequence>
auto prefix_of(const BufferSequence& buffers, std::size_t limit) {
  if constexpr (std::is_convertible_v<BufferSequence, Buffer>) {
    Buffer b(buffers);
    return b.size() > limit ? Buffer(b.data(), limit) : b;
  } else {
    return buffer_prefix<Buffer>(buffers, limit);
  }
}

} // namespace sluice::detail

#endif
