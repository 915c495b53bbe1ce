#ifndef SLUICE_DETAIL_RATE_LIMIT_STREAM_LIMITER_HPP
#define SLUICE_DETAIL_RATE_LIMIT_STREAM_LIMITER_HPP

#include <sluice/detail/core/direction.hpp>
#include <sluice/detail/core/parked_op.hpp>
#include <sluice/detail/core/parking_lot.hpp>
#include <sluice/detail/rate_limit/group_state.hpp>
#include <sluice/detail/rate_limit/token_bucket.hpp>
#include <sluice/rate_limit.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

namespace sluice::detail {

/// What an admitted operation may move, and what to settle once it has. An operation
/// admitted at once has its tokens taken then, from the own bucket as from the group's, and
/// what it did not use is given back; one that waited for its group is charged what it
/// moved. Giving back needs no time, so settling the common case reads no clock.
struct ticket {
  enum class own_charge : unsigned char {
    none,  ///< no own limit
    taken, ///< `bytes` were taken at admission: give back what did not move
    due,   ///< nothing was taken yet: charge what moved
  };

  std::size_t bytes = 0; ///< move at most this
  own_charge own = own_charge::none;
  std::shared_ptr<group_state> group; ///< the group that granted `bytes`, if any
};

/// Makes the operation that waits for tokens, only when one must wait. The operation
/// completes with ({}, n): granted n bytes, to be settled with `t` and n; with
/// net::error::try_again: ask again; or with an error (operation_aborted): it ends.
class wait_factory {
public:
  virtual parked_op* make(std::uint64_t serial, const ticket& t) = 0;

protected:
  ~wait_factory() = default;
};

/// The admission protocol of one rate_limited_stream, apart from its next layer: its own
/// buckets, its largest single read and write, its group membership, and the operations
/// waiting for tokens. Every path (an operation admitted at once, a composed one that
/// waits, a blocking one) is the same three steps: take() a grant, or a wait; do the I/O
/// with the grant; settle() what moved.
///
/// Short of own tokens, an operation waits for half a tick's worth (or less if it wants
/// less): taking tokens as they trickle in would make a flat-out writer wake, and write,
/// every few bytes. Tokens added by hand are not a trickle: they go at once (with a long
/// tick they would sit unused). A wait ends with try_again whenever the answer may have
/// changed (tokens due, new limits, the group left), so the operation simply asks again.
class stream_limiter : public parking_lot, public std::enable_shared_from_this<stream_limiter> {
public:
  explicit stream_limiter(const net::any_io_executor& ex);
  stream_limiter(const stream_limiter&) = delete;
  stream_limiter& operator=(const stream_limiter&) = delete;
  ~stream_limiter();

  enum class verdict {
    go,     ///< move at most grant.bytes now, then settle
    wait,   ///< no factory was given and the operation would wait: nothing was taken
    parked, ///< the factory's operation waits; its completion says what next
  };
  struct admission {
    verdict what;
    ticket grant;
  };

  using time_point = std::chrono::steady_clock::time_point;
  static constexpr time_point never = time_point::max();

  /// Admits an operation that wants `want` (> 0) bytes. Reads each clock at most once.
  /// An operation parked with an `expiry` completes with net::error::timed_out if it still
  /// waits then (real time: an expiry is the next layer's, as a beast::tcp_stream's).
  admission take(direction d, std::size_t want, wait_factory* factory, time_point expiry = never);
  /// The operation that waited in direction `d` has its answer: its expiry timer stops (so
  /// that an idle context's run() returns).
  void disarm_expiry(direction d);
  /// Settles the own bucket and the group's grant for what moved. Where all that was
  /// granted moved, that is no clock reading and no lock.
  void settle(direction d, const ticket& t, std::size_t moved);

  /// A count of cancel() calls; an operation that sees it change has been cancelled even
  /// if its wake-up was already on its way. closed(): the stream is gone.
  std::uint64_t cancels(direction d);
  bool stopped(direction d, std::uint64_t cancels_seen);

  void set_config(const token_bucket_config& cfg); // validated by the caller
  void clear_config();
  std::optional<token_bucket_config> config();
  void set_clock(const rate_clock& clock);
  std::int64_t level(direction d);
  void decrement(direction d, std::int64_t n);
  void set_single_cap(direction d, std::size_t n);
  std::int64_t single_cap(direction d);
  /// What one operation may move now: own bucket, group share, single cap; never negative.
  std::int64_t max_now(direction d);

  void join(const std::shared_ptr<group_state>& g);
  void leave();
  std::shared_ptr<group_state> group();

  /// Completes waits with operation_aborted (also those whose wake-up is on its way).
  void cancel_all();
  /// The stream is going: waits end with operation_aborted, the group is left.
  void close();

  /// For a blocking wait, whose thread may be the only one that would run the timers:
  /// completes the wait in direction `d` if its time has come, else says how long (in real
  /// time) until it may.
  std::chrono::nanoseconds serve_if_due(direction d);

  void cancel(std::size_t slot, std::uint64_t serial) override;
  void withdraw(net::execution_context& ctx, std::vector<parked_op*>& out) override;

private:
  struct own_wait {
    parked_op* op = nullptr;
    std::int64_t tokens = 0; // what it waits for
    std::optional<net::steady_timer> timer;
    std::uint64_t generation = 0; // a re-armed timer's old wait is void
  };

  void park_own(direction d, std::int64_t tokens, std::chrono::nanoseconds wait, parked_op* op);
  void arm_expiry(direction d, time_point expiry, std::uint64_t serial);
  void expire(direction d, std::uint64_t serial);
  void wake_own(direction d, const boost::system::error_code& ec, ready_list& done);
  void watch(parked_op* op);

  std::mutex mutex_;
  const rate_clock* clock_ = &rate_clock::steady();
  net::any_io_executor executor_;
  std::array<token_bucket, 2> buckets_;
  std::optional<token_bucket_config> config_;
  std::array<std::int64_t, 2> single_cap_{token_bucket::no_limit, token_bucket::no_limit};
  std::shared_ptr<group_state> group_;
  group_member member_;
  std::array<own_wait, 2> own_waits_;
  std::array<std::optional<net::steady_timer>, 2> expiry_timers_; // made on first use
  std::array<bool, 2> added_{}; // tokens were added by hand since the last admission
  std::array<std::uint64_t, 2> cancels_{};
  std::uint64_t serial_ = 0;
  bool closed_ = false;
  bool watched_ = false; // its context's shutdown withdraws what waits here
};

/// A wait of the blocking read_some / write_some: the result is handed over through a
/// condition variable instead of a handler. The waiting thread serves the refill itself
/// when it is due, so that it needs no other thread to run the timers.
class blocking_wait final : public parked_op, public wait_factory {
public:
  blocking_wait() : parked_op(&on_result, nullptr) {}

  parked_op* make(std::uint64_t, const ticket& t) override {
    grant = t;
    return this;
  }
  /// Waits for the result: the error, and the grant's size in `grant`.
  boost::system::error_code wait(stream_limiter& limiter, direction d);

  ticket grant;

private:
  static void on_result(parked_op* op, const boost::system::error_code* ec, std::size_t n);

  std::mutex mutex_;
  std::condition_variable ready_;
  bool done_ = false;
  boost::system::error_code ec_;
};

} // namespace sluice::detail

#endif
