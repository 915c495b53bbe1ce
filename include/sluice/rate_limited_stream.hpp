#ifndef SLUICE_RATE_LIMITED_STREAM_HPP
#define SLUICE_RATE_LIMITED_STREAM_HPP

#include <sluice/detail/core/async_stream.hpp>
#include <sluice/detail/core/direction.hpp>
#include <sluice/detail/core/lowest_layer.hpp>
#include <sluice/detail/rate_limit/stream_limiter.hpp>
#include <sluice/rate_limit.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/system/error_code.hpp>

#include <array>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace sluice {

/// How a next layer with an expiry of its own times out, for rate_limited_stream's expiry.
/// A specialisation has `static boost::system::error_code time_out(Stream&)`, which ends the
/// stream as its own expiry would and returns the error its operations then report.
/// <sluice/beast.hpp> has the one for beast::basic_stream (beast::tcp_stream).
template <class Stream>
struct expiry_traits;

namespace detail {
template <class Stream>
concept has_expiry = requires(Stream& s, std::chrono::steady_clock::time_point t) {
  s.expires_at(t);
  s.expires_never();
  { expiry_traits<Stream>::time_out(s) } -> std::same_as<boost::system::error_code>;
};
} // namespace detail

/// Shapes the reads and writes of any Asio stream (`tcp::socket`, `ssl::stream`, a
/// `sluice::pipe`, another adapter) with token buckets: its own, and a group's it joins.
///
/// Admission comes before the I/O: an operation's buffers are cut to what the buckets allow
/// (own bucket, fair group share and max single size, the lowest wins) and it is charged
/// what actually moved. Short of tokens, the operation waits on a timer for exactly as long
/// as the refill of a worthwhile amount needs (half a tick's worth, or less if it wants
/// less: not one wake-up and write per few bytes), or in the group's fair queue; no timer
/// runs while nobody waits. An
/// operation admitted at once goes straight to the next layer; only a wait is composed.
/// Zero-length operations pass straight through (`ssl::stream` issues them).
///
/// Over TLS the bytes counted are those of the layer wrapped: `ssl::stream<
/// rate_limited_stream<tcp::socket>>` shapes wire bytes (ciphertext, handshakes included),
/// `rate_limited_stream<ssl::stream<tcp::socket>>` shapes plaintext.
///
/// Time: the own buckets read a rate_clock, std::chrono::steady_clock unless set_clock()
/// gives another (a manual_rate_clock in tests). A wait for tokens still pending when the
/// stream's execution context shuts down is destroyed without being invoked.
///
/// Expiry, where the next layer has one (a beast::tcp_stream, with <sluice/beast.hpp>):
/// expires_after / expires_at / expires_never set the next layer's, and bound the waits for
/// tokens of the operations started from then on by the same time, so that one expiry
/// covers a whole operation, wait and I/O. A wait still pending at the expiry ends the
/// operation as the next layer's expiry would: a tcp_stream is closed, and the operation
/// completes with beast::error::timeout. Set it here: set on the next layer directly, it
/// times the I/O only.
///
/// Cancellation: a wait for tokens honours terminal, partial and total per-operation
/// cancellation and cancel(); it completes with operation_aborted and moves nothing. Once
/// the I/O has started, cancellation is the next layer's.
///
/// Thread safety: like a socket, one object is used by one thread at a time (one read and
/// one write may be pending together). Its group may be shared with streams anywhere.
template <class Stream>
class rate_limited_stream {
  static_assert(detail::async_stream<std::remove_reference_t<Stream>>,
                "sluice::rate_limited_stream<Stream>: Stream must be an AsyncReadStream and "
                "AsyncWriteStream (get_executor, async_read_some, async_write_some), such as a "
                "socket, an ssl::stream or a sluice::pipe; an acceptor is not a stream");
  struct impl;

public:
  using next_layer_type = std::remove_reference_t<Stream>;
  using lowest_layer_type = typename detail::lowest_layer_of<next_layer_type>::type;
  using executor_type = typename next_layer_type::executor_type;

  /// Constructs the next layer from `args`, with no limit of its own and no group.
  template <class... Args>
  explicit rate_limited_stream(Args&&... next_layer_args);
  /// Takes the next layer, the limits and the group membership; pending operations go on.
  /// The moved-from stream is like a moved-from socket: its operations complete with
  /// net::error::bad_descriptor, its getters read as a stream with no limit and nothing to
  /// move (max_to_* are 0), its setters throw that error as boost::system::system_error,
  /// cancel() and the clear/leave calls do nothing, and next_layer() must not be called.
  rate_limited_stream(rate_limited_stream&& other) noexcept;
  /// Closes this stream's own limits first (see the destructor), then takes `other`'s.
  rate_limited_stream& operator=(rate_limited_stream&& other) noexcept;
  /// Leaves the group; pending waits for tokens complete with operation_aborted.
  ~rate_limited_stream();

  next_layer_type& next_layer() noexcept;
  const next_layer_type& next_layer() const noexcept;
  lowest_layer_type& lowest_layer() noexcept;
  executor_type get_executor() noexcept { return executor_; }

  /// Reads at most what the limits allow now, waiting for tokens if there are none.
  template <class MutableBufferSequence,
            boost::asio::completion_token_for<void(boost::system::error_code, std::size_t)> Token =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_read_some(const MutableBufferSequence& buffers,
                       Token&& token = boost::asio::default_completion_token_t<executor_type>{});

  /// Writes at most what the limits allow now, waiting for tokens if there are none.
  template <class ConstBufferSequence,
            boost::asio::completion_token_for<void(boost::system::error_code, std::size_t)> Token =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_write_some(const ConstBufferSequence& buffers,
                        Token&& token = boost::asio::default_completion_token_t<executor_type>{});

  /// Blocking forms, where the next layer has them: they sleep while waiting for tokens.
  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers, boost::system::error_code& ec);
  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers);
  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers, boost::system::error_code& ec);
  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers);

  /// Own limits; validates (std::invalid_argument). Waiting operations are re-timed.
  void set_rate_limit(const token_bucket_config& cfg);
  void clear_rate_limit();
  /// The clock the own buckets read (default rate_clock::steady()); it must outlive the
  /// stream. Waiting operations are re-timed.
  void set_clock(const rate_clock& clock);
  void set_clock(const rate_clock&&) = delete; // not a temporary
  /// The own limits set, or nullopt.
  std::optional<token_bucket_config> rate_limit() const;
  /// Joins `g`, leaving any earlier group; a waiting operation asks again.
  void join(rate_limit_group& g);
  void leave_group();
  /// The group joined, or nullptr (also once the group is destroyed).
  rate_limit_group* group() const;

  /// Own bucket levels; INT64_MAX when there is no own limit.
  std::int64_t read_limit() const;
  std::int64_t write_limit() const;
  /// What one operation may move now: own bucket, group share and max single size together;
  /// 0 (never negative) while a bucket is empty or overdrawn.
  std::int64_t max_to_read() const;
  std::int64_t max_to_write() const;
  /// Takes `n` bytes' worth from the own bucket (adds for negative `n`); re-times waits.
  void decrement_read_limit(std::int64_t n);
  void decrement_write_limit(std::int64_t n);
  /// Caps single operations (no cap by default).
  void set_max_single_read(std::size_t n);
  void set_max_single_write(std::size_t n);
  /// The caps; INT64_MAX when there is none.
  std::int64_t max_single_read() const;
  std::int64_t max_single_write() const;

  /// The expiry of the operations started from now on (see the class comment). Throws
  /// boost::system::system_error on a moved-from stream.
  void expires_after(std::chrono::steady_clock::duration d) requires
      detail::has_expiry<std::remove_reference_t<Stream>>;
  void expires_at(std::chrono::steady_clock::time_point t) requires
      detail::has_expiry<std::remove_reference_t<Stream>>;
  void expires_never() requires detail::has_expiry<std::remove_reference_t<Stream>>;

  /// Completes waits for tokens with operation_aborted, and cancels the next layer's
  /// operations where it has cancel().
  void cancel();

private:
  template <detail::direction D>
  struct initiate_transfer;
  template <detail::direction D, class Buffers>
  struct transfer_op;
  template <detail::direction D, class Buffers>
  std::size_t transfer(const Buffers& buffers, boost::system::error_code& ec);
  detail::stream_limiter& limiter(const char* what) const; // throws when moved from

  std::shared_ptr<impl> impl_; // null once moved from
  executor_type executor_;
};

} // namespace sluice

#include <sluice/impl/rate_limited_stream.hpp>

#endif
