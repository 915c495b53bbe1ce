#include <sluice/rate_limit.hpp>

#include <algorithm>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

namespace sluice {

namespace {

constexpr std::uint64_t max_bytes = std::numeric_limits<std::int64_t>::max();

[[noreturn]] void reject(const char* field, const std::string& value, const char* why) {
  throw std::invalid_argument(std::string("token_bucket_config.") + field + " = " + value + ": " +
                              why);
}

std::string show(std::uint64_t v) {
  return v == unlimited ? "unlimited" : std::to_string(v);
}

void validate_direction(const char* rate_name, std::uint64_t rate, const char* burst_name,
                        std::uint64_t burst) {
  if (rate == unlimited) {
    if (burst != unlimited)
      reject(burst_name, show(burst), "a burst needs a rate (the rate is unlimited)");
    return;
  }
  if (rate == 0)
    reject(rate_name, "0", "must be at least 1 (use sluice::unlimited for no limit)");
  if (rate > max_bytes)
    reject(rate_name, show(rate), "must be at most INT64_MAX");
  if (burst == unlimited)
    reject(burst_name, "unlimited", "must be set when the rate is");
  if (burst > max_bytes)
    reject(burst_name, show(burst), "must be at most INT64_MAX");
  if (burst < rate)
    reject(burst_name, show(burst), ("must be at least the rate, " + show(rate)).c_str());
}

// --- per_second ---------------------------------------------------------------------------

__extension__ typedef unsigned __int128 uint128; // exact products of 64-bit values
constexpr std::uint64_t second_ns = 1'000'000'000;
constexpr std::uint64_t aimed_tick_ns = 10'000'000;    // 10 ms
constexpr std::uint64_t longest_exact_ns = 20'000'000; // past this, round the bytes instead

// The shortest tick, in ns, that holds a whole number of bytes at `bps`: 1 s / gcd(bps, 1 s).
std::uint64_t exact_unit(std::uint64_t bps) {
  return second_ns / std::gcd(bps, second_ns);
}

// A tick near 10 ms for every rate of `fastest` down to `slowest` (none unlimited): one that
// holds a whole number of bytes of each if there is one below 20 ms (`unit` is the shortest
// that does); otherwise one that does for the fastest (to the nanosecond), the others rounding
// to the nearest byte per tick. Below 100 B/s a tick is longer: a byte of the slowest at least.
std::uint64_t smooth_tick(std::uint64_t fastest, std::uint64_t slowest, std::uint64_t unit) {
  if (unit <= longest_exact_ns)
    return std::max<std::uint64_t>(1, (aimed_tick_ns + unit / 2) / unit) * unit;
  const uint128 aim = std::max(aimed_tick_ns, (second_ns + slowest - 1) / slowest);
  const uint128 per_tick =
      std::max<uint128>(1, (uint128(fastest) * aim + second_ns / 2) / second_ns);
  return static_cast<std::uint64_t>((per_tick * second_ns + fastest / 2) / fastest);
}

std::uint64_t bytes_per_tick(std::uint64_t bps, std::uint64_t tick_ns) {
  const uint128 exact = uint128(bps) * tick_ns;
  return static_cast<std::uint64_t>(std::max<uint128>(1, (exact + second_ns / 2) / second_ns));
}

void check_per_second(const char* name, std::uint64_t bps) {
  if (bps == 0 || (bps > max_bytes && bps != unlimited))
    throw std::invalid_argument(std::string("token_bucket_config::per_second: ") + name + " = " +
                                std::to_string(bps) +
                                ": must be from 1 to INT64_MAX, or sluice::unlimited");
}

} // namespace

void token_bucket_config::validate() const {
  validate_direction("read_rate", read_rate, "read_burst", read_burst);
  validate_direction("write_rate", write_rate, "write_burst", write_burst);
  if (tick <= std::chrono::nanoseconds::zero())
    reject("tick", std::to_string(tick.count()) + "ns", "must be positive");
  if (tick > std::chrono::hours(24))
    reject("tick", std::to_string(tick.count()) + "ns", "must be at most 24 h");
}

token_bucket_config token_bucket_config::per_second(std::uint64_t read_bytes_per_second,
                                                    std::uint64_t write_bytes_per_second) {
  check_per_second("read_bytes_per_second", read_bytes_per_second);
  check_per_second("write_bytes_per_second", write_bytes_per_second);
  std::uint64_t fastest = 0, slowest = unlimited;
  std::uint64_t unit = 1; // the lcm of divisors of 1 s divides 1 s
  for (std::uint64_t bps : {read_bytes_per_second, write_bytes_per_second}) {
    if (bps == unlimited)
      continue;
    fastest = std::max(fastest, bps);
    slowest = std::min(slowest, bps);
    unit = std::lcm(unit, exact_unit(bps));
  }
  token_bucket_config cfg;
  const std::uint64_t tick_ns = fastest ? smooth_tick(fastest, slowest, unit) : aimed_tick_ns;
  cfg.tick = std::chrono::nanoseconds(tick_ns);
  // A burst of two ticks' worth: a refill a little late loses nothing, and no more than a
  // fiftieth of a second's bytes ever go at once.
  auto shape = [tick_ns](std::uint64_t bps, std::uint64_t& rate, std::uint64_t& burst) {
    if (bps == unlimited)
      return;
    rate = bytes_per_tick(bps, tick_ns);
    burst = 2 * rate;
  };
  shape(read_bytes_per_second, cfg.read_rate, cfg.read_burst);
  shape(write_bytes_per_second, cfg.write_rate, cfg.write_burst);
  return cfg;
}

} // namespace sluice
