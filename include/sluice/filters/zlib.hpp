#ifndef SLUICE_FILTERS_ZLIB_HPP
#define SLUICE_FILTERS_ZLIB_HPP

// zlib filters for filtered_stream. Link sluice::zlib (the system zlib, zlib1g-dev).

#include <sluice/filtered_stream.hpp>

#include <memory>
#include <span>

namespace sluice::zlib {

/// Compresses (zlib format). flush_mode::normal compresses as data comes, keeping what
/// zlib buffers; flush is a sync flush (everything so far becomes readable by the peer);
/// finished ends the stream with its trailer, after which the filter takes no more input.
class deflate_filter {
public:
  /// Default compression level (Z_DEFAULT_COMPRESSION).
  deflate_filter();
  /// `level` from 0 (store) to 9 (best); throws std::invalid_argument otherwise.
  explicit deflate_filter(int level);
  deflate_filter(deflate_filter&&) noexcept;
  deflate_filter& operator=(deflate_filter&&) noexcept;
  ~deflate_filter();

  filter_result operator()(std::span<const std::byte>& in, std::span<std::byte>& out,
                           flush_mode mode);

private:
  struct state;
  std::unique_ptr<state> state_;
};

/// Decompresses (zlib format). Corrupt input, data after the stream's end, or the next
/// layer ending before the stream's trailer (seen through flush_mode::finished) are errors.
class inflate_filter {
public:
  inflate_filter();
  inflate_filter(inflate_filter&&) noexcept;
  inflate_filter& operator=(inflate_filter&&) noexcept;
  ~inflate_filter();

  filter_result operator()(std::span<const std::byte>& in, std::span<std::byte>& out,
                           flush_mode mode);

private:
  struct state;
  std::unique_ptr<state> state_;
};

} // namespace sluice::zlib

#endif
