#ifndef SLUICE_REDIS_SHARED_GROUP_HPP
#define SLUICE_REDIS_SHARED_GROUP_HPP

#include <sluice/rate_limit.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/execution_context.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>

namespace sluice::redis {

/// What a process does with its share when the store cannot be reached, once the last lease
/// has been held for `hold`.
enum class failure_policy {
  hold_then_safe, ///< min(last share, safe share): the fleet stays within its budget
  hold,           ///< keep the last share (the fleet may exceed its budget if members change)
  closed,         ///< stop (a trickle of 100 B/s per direction, the least a bucket runs at)
  open,           ///< no shared limit: the streams' own limits only
};

struct shared_group_options {
  std::string store; ///< unix:PATH or redis://HOST:PORT
  std::string name;  ///< the fleet group: every process naming it shares its budget
  /// The fleet's budget in bytes per second per direction; `unlimited` leaves a direction
  /// unshared (and unlimited here).
  std::uint64_t read_rate = unlimited;
  std::uint64_t write_rate = unlimited;
  /// The shared buckets' size in bytes; 0: one lease's worth of the rate.
  std::uint64_t read_burst = 0;
  std::uint64_t write_burst = 0;
  /// The rate and burst of a fleet are the ones sent with the highest version.
  std::uint64_t config_version = 1;
  std::chrono::milliseconds lease{200}; ///< renewed every half lease
  std::chrono::milliseconds ttl{1000};  ///< a member silent this long is dropped
  std::chrono::milliseconds hold{5000}; ///< how long the last share outlives the store
  failure_policy on_failure = failure_policy::hold_then_safe;
  /// The rate until the store's first answer (bytes per second). The only case in which a
  /// fleet can exceed its budget, so it is never implicit: 0 (the default) waits for a grant.
  std::uint64_t startup_read_rate = 0;
  std::uint64_t startup_write_rate = 0;
  /// This process's weight; 0: the number of its streams that asked for bytes in the last
  /// interval (at least 1), so that every stream of the fleet counts the same.
  double weight = 0;

  /// Throws std::invalid_argument naming the bad field: a bad store address, a bad name, no
  /// limited direction, a burst below a lease's worth, a lease under 10 ms, a TTL under two
  /// leases, a negative hold or weight.
  void validate() const;
};

namespace detail {
class shared_group_state;
}

/// A rate_limit_group whose rate is leased from a Redis store, so that a fleet of processes
/// shares one budget (doc/fleet.md).
///
/// Streams: they join group() exactly as they join any rate_limit_group; no stream
/// operation ever waits on the store. A renewal loop on the executor leases this process's
/// share every half lease: it reports the demand (unbounded when an operation waited for
/// the group in the last interval and the process used at least half its grant, else 1.1x the
/// smoothed consumption) and the weight, applies the grant to the local group, and gives back
/// the tokens the group did not spend. A quarter lease after each call it looks at the
/// demand, and renews at once if it has moved by more than a quarter: never more than one call
/// per quarter lease.
///
/// Time: the loop and the local group read `clock` (std::chrono::steady_clock by default; a
/// manual_rate_clock in tests); the store's leases run on the store's clock, and each call
/// times out after 0.4 lease of real time.
///
/// Guarantee: while every member reaches the store, the fleet's bytes in any window W stay
/// within burst + rate * (W + lease) per direction (plus what startup shares allow).
///
/// Failure: a slow store lets the current lease flow; an unreachable one leaves the last
/// share for `hold`, then applies `on_failure`. A store that lost its state (restart,
/// FLUSHALL) is seen by its epoch; for a TTL after it, shares are capped at the safe share last
/// seen (learning). Nothing the store does makes a stream operation throw or hang.
///
/// Lifetime: the destructor stops the loop and sends a release (if the executor still runs),
/// so the share returns to the others at once rather than after the TTL. The group must
/// outlive its member streams, as any rate_limit_group must.
///
/// Thread safety: group() and status() may be used from any thread; the loop runs on the
/// executor, which must not run two of its handlers at once (one thread, or a strand).
class shared_group {
public:
  template <class Executor>
  requires(!std::is_convertible_v<Executor&, boost::asio::execution_context&>)
      shared_group(const Executor& ex, const shared_group_options& options,
                   const rate_clock& clock = rate_clock::steady())
      : shared_group(boost::asio::any_io_executor(ex), options, clock, 0) {}
  template <class ExecutionContext>
  requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  shared_group(ExecutionContext& ctx, const shared_group_options& options,
               const rate_clock& clock = rate_clock::steady())
      : shared_group(boost::asio::any_io_executor(ctx.get_executor()), options, clock, 0) {}
  template <class ExecutorOrContext>
  shared_group(ExecutorOrContext&&, const shared_group_options&, const rate_clock&&) = delete;
  shared_group(const shared_group&) = delete;
  shared_group& operator=(const shared_group&) = delete;
  ~shared_group();

  /// The local group that streams join.
  rate_limit_group& group() { return *group_; }
  operator rate_limit_group&() { return *group_; }

  enum class mode {
    starting, ///< no answer from the store yet: the startup shares
    leased,   ///< the store's grants
    learning, ///< the store lost its state: grants capped at the last safe share
    holding,  ///< the store is unreachable: the last share, for `hold`
    fallback, ///< unreachable for longer: on_failure applies
  };
  struct status_type {
    mode state = mode::starting;
    bool connected = false;
    std::uint64_t read_rate = unlimited; ///< applied to the local group now
    std::uint64_t write_rate = unlimited;
    std::uint64_t members = 0;        ///< as the store last said
    std::int64_t epoch = 0;           ///< of the store's state (its write bucket's if shared)
    std::uint64_t renewals = 0;       ///< answered
    std::uint64_t failures = 0;       ///< failed or timed out
    std::uint64_t early_renewals = 0; ///< sent before the half lease: the demand had moved
    std::string last_error;           ///< of the last failure
  };
  status_type status() const;
  /// This process's member id in the store (host:pid:nonce).
  const std::string& member() const;

private:
  shared_group(const boost::asio::any_io_executor& ex, const shared_group_options& options,
               const rate_clock& clock, int);

  std::unique_ptr<rate_limit_group> group_;
  std::shared_ptr<detail::shared_group_state> state_;
};

} // namespace sluice::redis

#endif
