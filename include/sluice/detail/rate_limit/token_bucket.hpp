#ifndef SLUICE_DETAIL_RATE_LIMIT_TOKEN_BUCKET_HPP
#define SLUICE_DETAIL_RATE_LIMIT_TOKEN_BUCKET_HPP

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>

namespace sluice::detail {

__extension__ typedef __int128 int128; // exact products of 64-bit values (GCC and Clang)

/// The arithmetic of one token bucket, with no clock of its own: every call takes `now`.
///
/// The level is kept in token-nanoseconds (tokens x tick length), so that a refill of
/// `elapsed_ns x rate` is exact integer arithmetic with no division and no rounding drift;
/// one division turns it back into whole tokens. The level never exceeds `burst` tokens,
/// so the bytes taken in any interval [t0, t1] never exceed burst + rate * (t1 - t0) / tick
/// (and a fresh bucket's start of min(rate, burst) in place of burst).
class token_bucket {
public:
  using clock = std::chrono::steady_clock;
  static constexpr std::int64_t no_limit = std::numeric_limits<std::int64_t>::max();

  /// An unlimited bucket: always no_limit tokens, takes never lower it.
  token_bucket() = default;

  /// Starts with one tick's worth, min(rate, burst). Arguments are valid (see
  /// token_bucket_config::validate).
  token_bucket(std::uint64_t rate, std::uint64_t burst, std::chrono::nanoseconds tick,
               clock::time_point now);

  bool limited() const { return rate_ != 0; }
  /// The bucket size in tokens, or no_limit.
  std::int64_t burst() const { return limited() ? burst_ : no_limit; }
  /// A tick's refill, at most the burst, in tokens; or no_limit.
  std::int64_t per_tick() const {
    return limited() ? std::min(static_cast<std::int64_t>(rate_), burst_) : no_limit;
  }

  /// Whole tokens available at `now` (negative when overdrawn), or no_limit.
  std::int64_t tokens(clock::time_point now);

  /// Removes `n` tokens (adds -n when negative); the level stays within [-max, burst].
  void take(std::int64_t n, clock::time_point now);

  /// Gives back `n` >= 0 tokens taken earlier and not used, capped at the burst. No time is
  /// needed: the level comes to the same whether the refill since is added before or after.
  void give_back(std::int64_t n);

  /// How long from `now` until at least `wanted` tokens (1 <= wanted <= burst) are there;
  /// zero if they are there now. Rounded up to the nanosecond.
  std::chrono::nanoseconds time_until(std::int64_t wanted, clock::time_point now);

  /// New rate, burst and tick from `now` on (a rate of UINT64_MAX, sluice::unlimited: no
  /// limit). The whole tokens held carry over, capped; an unlimited bucket starts afresh.
  void reconfigure(std::uint64_t rate, std::uint64_t burst, std::chrono::nanoseconds tick,
                   clock::time_point now);

private:
  void refill(clock::time_point now);

  int128 level_ = 0;       // token-nanoseconds
  int128 cap_ = 0;         // burst x tick
  std::int64_t burst_ = 0; // in tokens
  std::uint64_t rate_ = 0; // tokens per tick; 0: unlimited
  std::int64_t tick_ns_ = 1;
  clock::time_point last_{};
};

} // namespace sluice::detail

#endif
