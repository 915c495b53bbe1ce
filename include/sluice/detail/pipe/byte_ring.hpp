#ifndef SLUICE_DETAIL_PIPE_BYTE_RING_HPP
#define SLUICE_DETAIL_PIPE_BYTE_RING_HPP

#include <sluice/detail/core/buffer_pieces.hpp>

#include <cstddef>
#include <memory>

namespace sluice::detail {

/// A circular byte buffer. It is allocated on first use, and grows only when asked to hold
/// more than it has room for (a pipe's flush may push past its capacity).
class byte_ring {
public:
  /// `preferred` is the size of the first allocation (a pipe's capacity).
  explicit byte_ring(std::size_t preferred = 0) : preferred_(preferred) {}

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  /// Appends at most `max_bytes` bytes of `from`, growing storage as needed; returns the count.
  std::size_t push(const write_pieces& from, std::size_t max_bytes);
  /// Moves the oldest bytes into `to`, as many as fit; returns the count.
  std::size_t pop(const read_pieces& to);
  void clear() { head_ = size_ = 0; }

private:
  void grow(std::size_t needed);

  std::unique_ptr<std::byte[]> storage_;
  std::size_t preferred_;
  std::size_t capacity_ = 0;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

} // namespace sluice::detail

#endif
