#ifndef SLUICE_DETAIL_RATE_LIMIT_GROUP_STATE_HPP
#define SLUICE_DETAIL_RATE_LIMIT_GROUP_STATE_HPP

#include <sluice/detail/core/direction.hpp>
#include <sluice/detail/core/parked_op.hpp>
#include <sluice/detail/core/ready_list.hpp>
#include <sluice/detail/rate_limit/fair_queue.hpp>
#include <sluice/detail/rate_limit/token_bucket.hpp>
#include <sluice/rate_limit.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace sluice {
class rate_limit_group;
}

namespace sluice::detail {

/// The time of one admission, read at most once per clock: a stream and its group usually
/// read the same clock, and a reading is not cheap next to the rest of an admission.
class clock_reading {
public:
  rate_clock::time_point of(const rate_clock& clock) {
    if (&clock != clock_) {
      clock_ = &clock;
      time_ = clock.now();
    }
    return time_;
  }

private:
  const rate_clock* clock_ = nullptr;
  rate_clock::time_point time_{};
};

/// A member's wait for a group's tokens: its place in the fair queue and the operation to
/// complete with the grant.
struct group_wait : fair_waiter {
  parked_op* op = nullptr;
};

/// A stream's membership record, owned by its limiter (at a stable address).
struct group_member {
  std::array<group_wait, 2> waits; // by direction
  group_member* prev = nullptr;    // in the group's member list
  group_member* next = nullptr;
  bool joined = false;
  std::array<std::uint64_t, 2> asked_in{}; // the activity interval it last asked in, by direction
};

/// The shared buckets of a rate_limit_group and the members waiting on them.
///
/// A member asks for up to `want` bytes. While nobody waits and tokens are there it gets
/// its share at once (the tokens / members, at least its share of a refill and min_share).
/// Otherwise it queues, and the group's timer for that direction fires when a refill (a
/// tick's worth or half the burst, or the whole queued demand, if less) has accrued; the
/// fair_queue then shares them among the waiters, whose operations complete with their
/// grants. A refill touches only waiters; an idle group arms no timer. Everything, the
/// timers too, is under one mutex, so members may be on any thread and any io_context.
///
/// A parked wait completes with ({}, grant > 0); with net::error::try_again when its member
/// leaves or the group goes (the member asks again, without the group); or with
/// operation_aborted when cancelled.
class group_state : public std::enable_shared_from_this<group_state> {
public:
  group_state(const net::any_io_executor& ex, const token_bucket_config& cfg,
              const rate_clock& clock, rate_limit_group* owner);
  group_state(const group_state&) = delete;
  group_state& operator=(const group_state&) = delete;

  bool join(group_member& m); // false once dissolved
  void leave(group_member& m);

  /// Up to `want` (> 0) bytes for `m`, taken from the bucket as of `now` (of the group's
  /// clock, read only if the bucket is limited); or 0: then, given a factory, an operation
  /// it makes is queued (numbered `serial`), else nothing is. A dissolved group grants `want`.
  std::int64_t take(direction d, group_member& m, std::int64_t want, std::uint64_t serial,
                    op_factory<parked_op>* factory, clock_reading& now);
  /// Gives back what a grant did not move, and counts what it did.
  void release(direction d, std::int64_t granted, std::int64_t moved);
  /// Completes m's wait in direction `d`, if numbered `serial`, with `ec`.
  void cancel_wait(direction d, group_member& m, std::uint64_t serial,
                   const boost::system::error_code& ec = net::error::operation_aborted);
  /// Completes m's waits (both directions) with operation_aborted.
  void cancel_waits(group_member& m);
  /// Takes out m's waits of context `ctx`, for the caller to destroy.
  void withdraw(group_member& m, net::execution_context& ctx, std::vector<parked_op*>& out);
  /// For a blocking wait, whose thread may be the only one that would run the group's
  /// timer: serves the waiters of `d` if their refill is due, else says how long (in real
  /// time) until it is.
  std::chrono::nanoseconds serve_if_due(direction d);
  /// What take would grant now (at most `want`); <= 0 when it would wait.
  std::int64_t share_now(direction d, std::int64_t want);

  void set_config(const token_bucket_config& cfg);
  token_bucket_config config();
  std::int64_t level(direction d);
  void decrement(direction d, std::int64_t n);
  std::uint64_t total(direction d);
  void reset_totals();
  /// Since the last call: operations that queued, and members that asked, in direction `d`.
  /// Starts a new interval.
  std::pair<std::uint64_t, std::size_t> take_activity(direction d);
  void set_min_share(std::size_t bytes);
  std::size_t size();
  rate_limit_group* owner();
  /// The group object is going: every member is let go and every waiter asks again.
  void dissolve();

private:
  using time_point = rate_clock::time_point;

  std::int64_t quantum(direction d) const; // a member's share of a refill, at least min_share
  std::int64_t grant_now(direction d, group_member& m, std::int64_t want, time_point now);
  std::int64_t refill(direction d) const;        // what a refill shares out, demand permitting
  std::int64_t refill_target(direction d) const; // ...and with the demand
  std::int64_t fair_share(direction d, std::int64_t tokens) const;
  // Shares what has accrued (a refill, or all that is asked if less; with `eager`, any
  // token), and re-arms the timer.
  void serve(direction d, ready_list& done, bool eager = false);
  void unqueue(direction d, group_wait& w, const boost::system::error_code& ec, ready_list& done);
  void arm(direction d, std::chrono::nanoseconds delay);
  void on_timer(direction d, std::uint64_t generation);
  std::int64_t rate(direction d) const;

  std::mutex mutex_;
  const rate_clock& clock_;
  token_bucket_config config_;
  std::array<token_bucket, 2> buckets_;
  std::array<fair_queue, 2> queues_;
  std::array<std::atomic<std::uint64_t>, 2> totals_{}; // counted without the lock
  std::int64_t min_share_ = 64;
  group_member* members_ = nullptr;
  std::size_t size_ = 0;
  rate_limit_group* owner_;
  net::any_io_executor executor_;
  // Made at the first wait (a timer brings up the io_context's reactor), reset once dissolved.
  std::array<std::optional<net::steady_timer>, 2> timers_;
  std::array<std::uint64_t, 2> generation_{}; // a re-armed timer's old wait is void
  std::array<bool, 2> armed_{};
  std::vector<fair_waiter*> served_; // scratch, kept to reuse its memory
  // Activity since take_activity: waits, and members that asked (each member once: its
  // asked_in names the interval it was counted in).
  std::array<std::uint64_t, 2> waits_{};
  std::array<std::size_t, 2> askers_{};
  std::array<std::uint64_t, 2> interval_{1, 1};
};

} // namespace sluice::detail

#endif
