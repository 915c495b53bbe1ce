#ifndef SLUICE_RATE_LIMIT_HPP
#define SLUICE_RATE_LIMIT_HPP

#include <chrono>
#include <cstdint>
#include <limits>

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

  /// Limits per second, with one second's worth as burst. `unlimited` leaves a direction free.
  static token_bucket_config per_second(std::uint64_t read_bytes_per_second,
                                        std::uint64_t write_bytes_per_second);
};

} // namespace sluice

#endif
