#ifndef SLUICE_DETAIL_REDIS_SHARE_POLICY_HPP
#define SLUICE_DETAIL_REDIS_SHARE_POLICY_HPP

#include <sluice/rate_limit.hpp>
#include <sluice/redis/shared_group.hpp>

#include <cstdint>

namespace sluice::redis::detail {

/// The least rate a local bucket is given (bytes per second): a grant of 0 becomes this
/// trickle, since a token bucket cannot run at 0 (token_bucket_config::validate).
inline constexpr std::uint64_t least_rate = 100;

/// The local group's config for the rates of the two directions (`unlimited` for free).
token_bucket_config local_config(std::uint64_t read_rate, std::uint64_t write_rate);

/// Whether the group held a direction back in an interval: an operation waited for its tokens,
/// and the process used at least half of `granted` (the lowest rate in force in the interval).
/// A wait or two while the process used little of its grant (the last operations before it
/// went idle) does not make its demand unbounded.
bool held_back(std::uint64_t waits, double consumed_per_second, std::uint64_t granted);

/// What a direction's demand is, from one interval: unbounded (negative) when the group held
/// it back (`waited`, from held_back), else `headroom` times the smoothed consumption. `smoothed`
/// is the running average (bytes per second), updated here; `fresh` when it has no history yet.
double estimate_demand(double& smoothed, bool fresh, double consumed_per_second, bool waited);

/// Whether a direction's demand has moved by more than a quarter of what it was at its last
/// report, so that the process renews before the half lease is up. `reported` is the demand
/// last sent (negative: unbounded); `consumed_per_second` and `waited` describe the interval
/// since; `granted` is the rate applied now and `safe` the last safe share.
///
/// Demands are compared as what they are worth to this process: no demand is worth more than
/// max(granted, safe), which an unbounded demand is worth (a member that keeps waiting is still
/// unbounded; one that stops using its grant is not). Changes smaller than an eighth of the
/// safe share never count, so that an idle process does not renew for a few bytes.
bool demand_changed(double reported, double consumed_per_second, bool waited, std::uint64_t granted,
                    std::uint64_t safe);

/// The rate a direction runs at once the store has been unreachable for longer than `hold`:
/// `last` is the last share applied, `safe` the last safe share (0 when none is known).
std::uint64_t fallback_rate(failure_policy policy, std::uint64_t last, std::uint64_t safe);

/// Unspent tokens to give back: what the local bucket holds beyond one tick's worth of its
/// rate, and nothing after an interval in which an operation waited (a busy group has none
/// to spare; taking its last tokens would make the next operation wait for nothing).
std::int64_t give_back(std::int64_t level, std::uint64_t rate, bool waited);

} // namespace sluice::redis::detail

#endif
