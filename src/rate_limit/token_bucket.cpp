#include <sluice/detail/rate_limit/token_bucket.hpp>

#include <algorithm>

namespace sluice::detail {

namespace {
// Validation bounds rate and burst by INT64_MAX and the tick by a day, so every product
// below stays far inside 128 bits: |level| <= 2^63 * 2^47 and elapsed * rate <= 2^126.
constexpr int128 floor_tokens = -token_bucket::no_limit;
} // namespace

token_bucket::token_bucket(std::uint64_t rate, std::uint64_t burst, std::chrono::nanoseconds tick,
                           clock::time_point now)
    : level_(int128(std::min(rate, burst)) * tick.count()), cap_(int128(burst) * tick.count()),
      burst_(static_cast<std::int64_t>(burst)), rate_(rate), tick_ns_(tick.count()), last_(now) {}

void token_bucket::refill(clock::time_point now) {
  if (now <= last_)
    return; // time stands still (or a caller's clock is behind): nothing accrues
  std::int64_t elapsed = (now - last_).count();
  last_ = now;
  if (level_ >= cap_)
    return;
  int128 room = cap_ - level_;
  int128 added = int128(elapsed) * rate_;
  level_ = added >= room ? cap_ : level_ + added;
}

std::int64_t token_bucket::tokens(clock::time_point now) {
  if (!limited())
    return no_limit;
  refill(now);
  if (level_ == cap_) // the common case of a limit that does not bind: no division
    return burst_;
  int128 whole = level_ / tick_ns_; // rounds toward zero: -0.5 tokens reads as 0
  if (level_ < 0 && whole * tick_ns_ != level_)
    --whole; // floor, so that an overdrawn bucket never reads as having a token
  return static_cast<std::int64_t>(whole);
}

void token_bucket::take(std::int64_t n, clock::time_point now) {
  if (!limited())
    return;
  refill(now);
  level_ -= int128(n) * tick_ns_;
  level_ = std::clamp(level_, floor_tokens * tick_ns_, cap_);
}

void token_bucket::give_back(std::int64_t n) {
  if (limited())
    level_ = std::min(level_ + int128(n) * tick_ns_, cap_);
}

std::chrono::nanoseconds token_bucket::time_until(std::int64_t wanted, clock::time_point now) {
  if (!limited())
    return {};
  refill(now);
  int128 target = int128(wanted) * tick_ns_;
  if (level_ >= target)
    return {};
  int128 ns = (target - level_ + rate_ - 1) / rate_;
  return std::chrono::nanoseconds(
      static_cast<std::int64_t>(std::min<int128>(ns, std::chrono::nanoseconds::max().count())));
}

void token_bucket::reconfigure(std::uint64_t rate, std::uint64_t burst,
                               std::chrono::nanoseconds tick, clock::time_point now) {
  if (rate == std::numeric_limits<std::uint64_t>::max()) {
    *this = token_bucket();
    return;
  }
  bool was_limited = limited();
  std::int64_t held = tokens(now);
  *this = token_bucket(rate, burst, tick, now);
  if (was_limited)
    level_ = std::clamp(int128(held) * tick_ns_, floor_tokens * tick_ns_, cap_);
}

} // namespace sluice::detail
