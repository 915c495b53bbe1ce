#include <sluice/detail/redis/share_policy.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

namespace sluice::redis::detail {

namespace {
std::uint64_t floored(std::uint64_t rate) {
  return rate == unlimited ? rate : std::max(rate, least_rate);
}
} // namespace

token_bucket_config local_config(std::uint64_t read_rate, std::uint64_t write_rate) {
  return token_bucket_config::per_second(floored(read_rate), floored(write_rate));
}

bool held_back(std::uint64_t waits, double consumed_per_second, std::uint64_t granted) {
  return waits > 0 && consumed_per_second >= 0.5 * static_cast<double>(granted);
}

double estimate_demand(double& smoothed, bool fresh, double consumed_per_second, bool waited) {
  // Half the weight on the last interval: a process that slows down gives its share up
  // within a few renewals, and one burst of reads does not double its demand.
  smoothed = fresh ? consumed_per_second : 0.5 * smoothed + 0.5 * consumed_per_second;
  if (waited)
    return -1;
  return 1.1 * smoothed;
}

bool demand_changed(double reported, double consumed_per_second, bool waited, std::uint64_t granted,
                    std::uint64_t safe) {
  if (safe == 0 || granted == unlimited)
    return false; // no share known yet, or nothing shared to give back
  const double worth = static_cast<double>(std::max(granted, safe));
  const double before = reported < 0 ? worth : std::min(reported, worth);
  const double now = waited ? worth : std::min(1.1 * consumed_per_second, worth);
  const double change = std::abs(now - before);
  return change > 0.25 * before && change > static_cast<double>(safe) / 8;
}

std::uint64_t fallback_rate(failure_policy policy, std::uint64_t last, std::uint64_t safe) {
  switch (policy) {
  case failure_policy::hold:
    return last;
  case failure_policy::closed:
    return 0;
  case failure_policy::open:
    return unlimited;
  case failure_policy::hold_then_safe:
    break;
  }
  return safe == 0 ? last : std::min(last, safe);
}

std::int64_t give_back(std::int64_t level, std::uint64_t rate, bool waited) {
  if (waited || rate == unlimited || level == std::numeric_limits<std::int64_t>::max())
    return 0;
  // per_second's tick is about 10 ms: keep that much, for the next operation.
  const auto tick_worth = static_cast<std::int64_t>(std::min<std::uint64_t>(
      rate / 100, static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())));
  return std::max<std::int64_t>(0, level - tick_worth);
}

} // namespace sluice::redis::detail
