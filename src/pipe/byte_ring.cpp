#include <sluice/detail/pipe/byte_ring.hpp>

#include <algorithm>
#include <cstring>

namespace sluice::detail {

// Copying into or out of a ring is at most two memcpys per piece: before and after the wrap.
std::size_t byte_ring::push(const write_pieces& from, std::size_t max_bytes) {
  std::size_t n = std::min(max_bytes, from.total());
  if (n == 0)
    return 0;
  if (size_ + n > capacity_)
    grow(size_ + n);
  std::size_t left = n;
  for (const auto& piece : from) {
    auto* data = static_cast<const std::byte*>(piece.data());
    std::size_t take = std::min(left, piece.size());
    left -= take;
    while (take > 0) {
      std::size_t tail = (head_ + size_) % capacity_;
      std::size_t chunk = std::min(take, capacity_ - tail);
      std::memcpy(storage_.get() + tail, data, chunk);
      data += chunk;
      size_ += chunk;
      take -= chunk;
    }
    if (left == 0)
      break;
  }
  return n;
}

std::size_t byte_ring::pop(const read_pieces& to) {
  std::size_t n = std::min(size_, to.total());
  std::size_t left = n;
  for (const auto& piece : to) {
    auto* data = static_cast<std::byte*>(piece.data());
    std::size_t take = std::min(left, piece.size());
    left -= take;
    while (take > 0) {
      std::size_t chunk = std::min(take, capacity_ - head_);
      std::memcpy(data, storage_.get() + head_, chunk);
      data += chunk;
      head_ = (head_ + chunk) % capacity_;
      size_ -= chunk;
      take -= chunk;
    }
    if (left == 0)
      break;
  }
  if (size_ == 0)
    head_ = 0; // keeps the next bytes contiguous
  return n;
}

void byte_ring::grow(std::size_t needed) {
  std::size_t capacity = std::max({needed, preferred_, capacity_ * 2});
  auto storage = std::make_unique_for_overwrite<std::byte[]>(capacity);
  std::size_t first = std::min(size_, capacity_ - head_);
  if (size_ > 0) {
    std::memcpy(storage.get(), storage_.get() + head_, first);
    std::memcpy(storage.get() + first, storage_.get(), size_ - first);
  }
  storage_ = std::move(storage);
  capacity_ = capacity;
  head_ = 0;
}

} // namespace sluice::detail
