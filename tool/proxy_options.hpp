// Command-line options of sluice-proxy, parsed with no I/O so that every unit and every
// error case can be tested directly.
#ifndef SLUICE_TOOL_PROXY_OPTIONS_HPP
#define SLUICE_TOOL_PROXY_OPTIONS_HPP

#include <sluice/rate_limit.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::proxy {

/// A bad command line. `what()` says what is wrong, starting with the argument at fault
/// (e.g. "--rate '0': must be more than 0 bytes per second").
class option_error : public std::invalid_argument {
public:
  option_error(std::string option, const std::string& message)
      : std::invalid_argument(option + ": " + message), option_(std::move(option)) {}
  /// The argument at fault, as the user typed its name ("--rate", "--bogus").
  const std::string& option() const noexcept { return option_; }

private:
  std::string option_;
};

/// HOST:PORT as given on the command line, not resolved yet: the host is a name or a
/// numeric address, without the brackets of "[::1]:8080".
struct host_port {
  std::string host;
  unsigned short port = 0;
  /// Back to "HOST:PORT", with brackets around a host that has colons (an IPv6 address).
  std::string text() const;
};

struct proxy_options {
  host_port listen; ///< port 0: any free port (printed at start)
  host_port upstream;
  std::optional<std::uint64_t> rate;  ///< bytes/s per connection, each direction
  std::optional<std::uint64_t> total; ///< bytes/s of all connections, each direction
  std::chrono::nanoseconds tick = std::chrono::milliseconds(10);
  std::optional<std::chrono::nanoseconds> stats; ///< interval of the stats line
  bool help = false;                             ///< --help: print usage, nothing else is read
};

/// "256KiB" -> 262144. Units: B; K/KB (1000), Ki/KiB (1024), M/MB, Mi/MiB, G/GB, Gi/GiB,
/// case-insensitive, optionally followed by "/s"; a bare number is bytes. A decimal
/// fraction is allowed ("1.5MiB") and rounded down to whole bytes. Throws
/// std::invalid_argument (no option name: the caller adds it) for anything else, a negative
/// number, or a value above INT64_MAX.
std::uint64_t parse_size(std::string_view text);

/// "10ms" -> 10'000'000 ns. Units: s, ms, us (also µs), ns; a unit is required. A decimal
/// fraction is allowed ("1.5s"). Throws std::invalid_argument as parse_size does.
std::chrono::nanoseconds parse_duration(std::string_view text);

/// "localhost:8080", "127.0.0.1:8080" or "[::1]:8080" split into host and port. The port is
/// a number; the host is checked only for its form (not empty, colons only in brackets):
/// resolving it is I/O, done by the caller.
host_port parse_host_port(std::string_view text);

/// Parses the arguments after the program name. Both "--rate 1MiB" and "--rate=1MiB" work.
/// Throws option_error naming the bad argument: an unknown flag, a missing value, a bad
/// unit or number, a zero rate, a tick not in (0, 24h], a malformed HOST:PORT, a missing
/// --listen or --upstream.
proxy_options parse_options(const std::vector<std::string>& args);

/// Token buckets for `bytes_per_second` in both directions that hold `burst_ticks` ticks'
/// worth: the bursts the proxy lets through are at most that long. The bucket's rate is a
/// whole number of bytes (at least 1), so its tick is fitted to the nanosecond to keep the
/// rate exact: close to `tick`, or longer where a tick's worth would be under one byte.
/// Throws std::invalid_argument when the burst would be above INT64_MAX bytes.
token_bucket_config bucket_config(std::uint64_t bytes_per_second, std::chrono::nanoseconds tick,
                                  std::uint64_t burst_ticks = 1);

/// The burst of the --total group, in ticks. A group refills its waiting members a tick's
/// worth at a time, when that much has accrued; with room for only one tick, every
/// microsecond that the refill is served late would be tokens lost (a busy machine lost a
/// quarter of the rate that way). A second tick of room keeps them.
inline constexpr std::uint64_t group_burst_ticks = 2;

/// The usage text, ending in a newline.
std::string usage();

/// 262144 -> "256.0 KiB" (binary units, one decimal; bytes below 1 KiB as "512 B").
std::string format_bytes(double bytes);

} // namespace sluice::proxy

#endif
