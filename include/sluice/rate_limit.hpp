#ifndef SLUICE_RATE_LIMIT_HPP
#define SLUICE_RATE_LIMIT_HPP

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/execution_context.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <type_traits>

namespace sluice {

/// A rate or burst that sets no limit.
inline constexpr std::uint64_t unlimited = std::numeric_limits<std::uint64_t>::max();

/// Token buckets for the two directions of a stream or group: `rate` bytes accrue per
/// `tick`, continuously, up to `burst` bytes. A direction whose rate is `unlimited` is free.
struct token_bucket_config {
  std::uint64_t read_rate = unlimited;  ///< bytes added per tick
  std::uint64_t read_burst = unlimited; ///< bucket size, >= read_rate
  std::uint64_t write_rate = unlimited;
  std::uint64_t write_burst = unlimited;
  std::chrono::nanoseconds tick = std::chrono::seconds(1);

  /// Throws std::invalid_argument naming the bad field and its value: a rate of 0, a rate
  /// above its burst, a finite rate with an unlimited burst, a rate or burst above
  /// INT64_MAX (other than `unlimited`), a tick not positive or longer than a day.
  void validate() const;

  /// Limits in bytes per second, smooth: a tick of about 10 ms and a burst of two ticks'
  /// worth, so that a stream or group moving flat out gets a grant at least every tick and
  /// never more than a fiftieth of a second's bytes at once (the first second moves at most
  /// the rate plus one tick's worth). The rate is exact when a tick of 5 to 20 ms holds a
  /// whole number of bytes of each (any multiple of 50 or 64 bytes per second); otherwise
  /// the faster direction's is exact to the nanosecond of its tick and the slower one's is
  /// off by less than half a byte per tick. Below 100 B/s the tick is longer, so that
  /// it holds a byte of the slower direction. `unlimited` leaves a direction free. Throws
  /// std::invalid_argument for 0 or more than INT64_MAX.
  static token_bucket_config per_second(std::uint64_t read_bytes_per_second,
                                        std::uint64_t write_bytes_per_second);
};

/// Where token buckets read the time. Buckets and groups read std::chrono::steady_clock
/// unless given another clock: a test or a simulation passes one whose time moves only when
/// it says so (manual_rate_clock), and checks timing exactly, without waiting for it.
/// A clock must outlive every stream and group that reads it.
class rate_clock {
public:
  using time_point = std::chrono::steady_clock::time_point;

  virtual time_point now() const = 0;
  /// How long to really wait for `d` of this clock's time to pass. A waiter that wakes and
  /// finds its time has not come looks again, so a clock that moves by hand answers with a
  /// short poll.
  virtual std::chrono::nanoseconds real_wait(std::chrono::nanoseconds d) const = 0;

  /// std::chrono::steady_clock, the default.
  static const rate_clock& steady();

protected:
  ~rate_clock() = default;
};

/// A clock that stands still until advance() moves it, for tests of timing. Waiters on it
/// look again every `poll` of real time. Thread-safe.
class manual_rate_clock final : public rate_clock {
public:
  /// Throws std::invalid_argument unless `poll` is positive (a waiter would spin).
  explicit manual_rate_clock(std::chrono::nanoseconds poll = std::chrono::milliseconds(1));
  time_point now() const override { return time_point(std::chrono::nanoseconds(now_.load())); }
  std::chrono::nanoseconds real_wait(std::chrono::nanoseconds d) const override {
    return std::min(d, poll_);
  }
  void advance(std::chrono::nanoseconds d) { now_ += d.count(); }

private:
  std::chrono::nanoseconds poll_;
  // Starts well after the epoch, as a steady_clock does: a bucket's first reading is never 0.
  std::atomic<std::int64_t> now_{std::chrono::nanoseconds(std::chrono::hours(1)).count()};
};

namespace detail {
class group_state;
}

/// Token buckets shared by the streams that join() it. A member's allowance is the lower of
/// its own limit and its fair share of the group's: while tokens last a member gets
/// tokens / members (at least its share of a refill, and the min share) at once; once they
/// run out, members queue, and each refill (a tick's worth or half the burst) is shared
/// among the waiting members max-min fairly: equal demand gets equal shares, and a member
/// held down by its own lower limit leaves the rest to the others. A refill wakes only
/// waiting members; an idle group runs no timer.
///
/// Thread safety: all members, on any threads and io_contexts, and the group's own calls
/// may run concurrently. The group's timers run on the executor given at construction,
/// which must outlive the group. The group must outlive no member: destroying it lets
/// every member go (they carry on with their own limits).
class rate_limit_group {
public:
  /// Validates `cfg` (std::invalid_argument). `ex` runs the group's refill timers.
  /// The group reads the time from `clock`.
  template <class Executor>
  requires(!std::is_convertible_v<Executor&, boost::asio::execution_context&>)
      rate_limit_group(const Executor& ex, const token_bucket_config& cfg,
                       const rate_clock& clock = rate_clock::steady())
      : rate_limit_group(boost::asio::any_io_executor(ex), cfg, clock, 0) {}
  /// The same, on `ctx`'s executor (an io_context, say).
  template <class ExecutionContext>
  requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  rate_limit_group(ExecutionContext& ctx, const token_bucket_config& cfg,
                   const rate_clock& clock = rate_clock::steady())
      : rate_limit_group(boost::asio::any_io_executor(ctx.get_executor()), cfg, clock, 0) {}
  /// A clock must outlive the group: not a temporary.
  template <class ExecutorOrContext>
  rate_limit_group(ExecutorOrContext&&, const token_bucket_config&, const rate_clock&&) = delete;
  rate_limit_group(const rate_limit_group&) = delete;
  rate_limit_group& operator=(const rate_limit_group&) = delete;
  /// Removes every member; waiting members go on without the group.
  ~rate_limit_group();

  /// Validates; operations already waiting are re-timed to the new limits.
  void set_config(const token_bucket_config& cfg);
  token_bucket_config config() const;
  /// Current bucket level in bytes; negative when overdrawn, INT64_MAX when unlimited.
  std::int64_t read_limit() const;
  std::int64_t write_limit() const;
  /// Takes `n` bytes' worth from the bucket; a negative `n` adds (never past the burst), and
  /// members waiting get what was added at once.
  void decrement_read_limit(std::int64_t n);
  void decrement_write_limit(std::int64_t n);

  struct totals_type {
    std::uint64_t read = 0;
    std::uint64_t written = 0;
  };
  /// Bytes moved by members since creation or reset_totals().
  totals_type totals() const;
  void reset_totals();

  struct activity_type {
    std::uint64_t read_waits = 0;  ///< reads that had to wait for the group's tokens
    std::uint64_t write_waits = 0; ///< writes that had to wait for the group's tokens
    std::size_t readers = 0;       ///< members that asked the group for read tokens
    std::size_t writers = 0;       ///< members that asked the group for write tokens
  };
  /// What the members asked of the group since the previous call (or creation): a view of
  /// its demand, for a loop that leases the group's rate from elsewhere
  /// (sluice::redis::shared_group). Each call starts a new interval, so there is one such
  /// observer. Only operations that the group's limit applies to are counted.
  activity_type take_activity();
  /// The smallest grant worth an operation (default 64 bytes), when tokens are scarce.
  void set_min_share(std::size_t bytes);
  std::size_t size() const;

private:
  template <class>
  friend class rate_limited_stream;
  rate_limit_group(const boost::asio::any_io_executor& ex, const token_bucket_config& cfg,
                   const rate_clock& clock, int);

  std::shared_ptr<detail::group_state> state_;
};

} // namespace sluice

#endif
