#ifndef SLUICE_FILTERED_STREAM_HPP
#define SLUICE_FILTERED_STREAM_HPP

#include <sluice/detail/core/async_stream.hpp>
#include <sluice/detail/core/lowest_layer.hpp>
#include <sluice/error.hpp>
#include <sluice/flush_mode.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/system/error_code.hpp>

#include <concepts>
#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <type_traits>

namespace sluice {

enum class filter_result {
  ok,        ///< progress was made (a byte consumed or produced)
  need_more, ///< no progress is possible until more input comes (or, when flushing: done)
  error      ///< the data is bad; the stream fails with sluice::error::filter_failed
};

/// A filter: consumes a prefix of `in`, writes a prefix of `out`, advancing both spans.
/// With flush_mode::flush or finished it also pushes out what it holds, returning ok while
/// it produces and need_more once it has nothing left.
///
/// The spans are taken by (non-const) reference: a filter that took them by value could not
/// say how far it got, and would fail at run time with "filter made no progress".
template <class F>
concept filter = requires(F& f, std::span<const std::byte>& in, std::span<std::byte>& out,
                          flush_mode m) {
  { f(in, out, m) } -> std::same_as<filter_result>;
}
&&!requires(F & f, std::span<std::byte>& out, flush_mode m) {
  f(std::span<const std::byte>(), out, m); // `in` taken by value or const reference
}
&&!requires(F & f, std::span<const std::byte>& in, flush_mode m) {
  f(in, std::span<std::byte>(), m); // `out` likewise
};

/// Copies bytes unchanged: for tests, and as the smallest example of a filter.
struct pass_through_filter {
  filter_result operator()(std::span<const std::byte>& in, std::span<std::byte>& out,
                           flush_mode mode) const;
};

/// A stream whose reads pass through `In` and whose writes pass through `Out` on their way
/// to and from the next layer (any AsyncStream).
///
/// Reads: the input filter sees flush_mode::finished once the next layer reports eof, so it
/// can check its trailer; when it then has nothing more, the reader gets net::error::eof.
/// Writes: a write completes once the output it produced has been written to the next
/// layer; data a filter holds back (zlib's window) goes out with async_flush. Buffering on
/// each side is bounded (64 KiB by default, allocated on first use): a slow peer pushes back.
/// A filter's error completes the operation with sluice::error::filter_failed (after the
/// bytes it produced before the error have been delivered); a filter that returns ok
/// without progress gives sluice::error::filter_stalled, never a busy loop.
///
/// Cost: a filter reads one buffer and writes another, so each side adds one pass over the
/// bytes to what the next layer does. A pass-through filter on both ends of a pipe makes 4
/// copies of each byte where the bare pipe makes 2 (or 3 where it makes 1, when a write
/// finds the read already waiting); bench/filter_bench shows what that costs.
///
/// Like a socket: one read, and one write or flush, pending at a time; one thread at a time.
/// Cancellation is the next layer's, and loses nothing: a write reports the bytes its filter
/// took even when writing the output fails or is cancelled (what is left of that output goes
/// first in the next write or flush), and bytes read but not yet delivered wait for the next
/// read.
template <class Stream, filter InputFilter, filter OutputFilter>
class filtered_stream {
  static_assert(detail::async_stream<std::remove_reference_t<Stream>>,
                "sluice::filtered_stream<Stream, In, Out>: Stream must be an AsyncReadStream and "
                "AsyncWriteStream (get_executor, async_read_some, async_write_some), such as a "
                "socket, an ssl::stream or a sluice::pipe; an acceptor is not a stream");

public:
  using next_layer_type = std::remove_reference_t<Stream>;
  using lowest_layer_type = typename detail::lowest_layer_of<next_layer_type>::type;
  using executor_type = typename next_layer_type::executor_type;

  /// Bytes buffered on each side by default.
  static constexpr std::size_t default_buffer_size = 64 * 1024;

  /// Constructs the next layer from `next_layer_arg`, like ssl::stream does.
  template <class Arg>
  explicit filtered_stream(Arg&& next_layer_arg, InputFilter in = {}, OutputFilter out = {});

  next_layer_type& next_layer() noexcept { return next_; }
  const next_layer_type& next_layer() const noexcept { return next_; }
  lowest_layer_type& lowest_layer() noexcept;
  executor_type get_executor() noexcept { return next_.get_executor(); }
  /// Sets how many bytes each side buffers (before any I/O; std::invalid_argument if 0 or
  /// once a buffer is in use).
  void set_buffer_size(std::size_t bytes);
  InputFilter& input_filter() noexcept { return in_; }
  OutputFilter& output_filter() noexcept { return out_; }

  /// Reads filtered bytes (at least one), or fails. Signature: void(error_code, size_t).
  template <class MutableBufferSequence,
            boost::asio::completion_token_for<void(boost::system::error_code, std::size_t)> Token =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_read_some(const MutableBufferSequence& buffers,
                       Token&& token = boost::asio::default_completion_token_t<executor_type>{});

  /// Passes bytes (at least one) through the output filter and writes what it produced.
  template <class ConstBufferSequence,
            boost::asio::completion_token_for<void(boost::system::error_code, std::size_t)> Token =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_write_some(const ConstBufferSequence& buffers,
                        Token&& token = boost::asio::default_completion_token_t<executor_type>{});

  /// Has the output filter push out what it holds (`flush`; for zlib a sync flush) or end
  /// its output (`finished`; for zlib the trailer), and writes it all. `normal` writes what
  /// the filter gives without forcing it. Signature: void(error_code).
  template <boost::asio::completion_token_for<void(boost::system::error_code)> Token =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_flush(flush_mode mode,
                   Token&& token = boost::asio::default_completion_token_t<executor_type>{});

private:
  template <class Buffers>
  struct read_op;
  template <class Buffers>
  struct write_op;
  struct flush_op;

  /// A bounded byte buffer between a filter and the next layer.
  struct staging {
    std::unique_ptr<std::byte[]> data;
    std::size_t capacity = default_buffer_size;
    std::size_t begin = 0, end = 0;

    std::span<const std::byte> filled() const { return {data.get() + begin, end - begin}; }
    std::span<std::byte> room() {
      if (!data)
        data = std::make_unique_for_overwrite<std::byte[]>(capacity);
      if (begin == end)
        begin = end = 0;
      return {data.get() + end, capacity - end};
    }
    void compact() {
      std::memmove(data.get(), data.get() + begin, end - begin);
      end -= begin;
      begin = 0;
    }
  };

  Stream next_;
  InputFilter in_;
  OutputFilter out_;
  staging raw_;    // read from the next layer, not yet through the input filter
  staging staged_; // produced by the output filter, not yet written
  bool eof_ = false;
  boost::system::error_code read_error_; // reported after the bytes produced before it
};

} // namespace sluice

#include <sluice/impl/filtered_stream.hpp>

#endif
