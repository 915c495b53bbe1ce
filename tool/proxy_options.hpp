// Command-line options of sluice-proxy, parsed with no I/O so that every unit and every
// error case can be tested directly.
#ifndef SLUICE_TOOL_PROXY_OPTIONS_HPP
#define SLUICE_TOOL_PROXY_OPTIONS_HPP

#include <sluice/rate_limit.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
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

/// A limit in bytes per second for each direction: down is upstream -> client (a
/// download), up is client -> upstream. No value: that direction is free.
struct direction_rates {
  std::optional<std::uint64_t> down;
  std::optional<std::uint64_t> up;
  bool any() const { return down || up; }
  bool operator==(const direction_rates&) const = default;
};

/// One end of a route: HOST:PORT (TCP), or unix:PATH (a unix-domain stream socket).
struct endpoint_spec {
  host_port tcp;         ///< when unix_path is empty
  std::string unix_path; ///< not empty: unix:PATH
  bool is_unix() const { return !unix_path.empty(); }
  /// Back to what was typed: "HOST:PORT" or "unix:PATH".
  std::string text() const;
};

/// Where connections are accepted, and where each is relayed to.
struct route_spec {
  endpoint_spec listen; ///< port 0: any free port (printed at start)
  endpoint_spec upstream;
};

enum class log_format { text, json };

/// What a proxy does with its share of a fleet's total while the store cannot be reached
/// (--total-on-failure): sluice::redis::failure_policy, by the same names.
enum class store_failure { hold_then_safe, hold, closed, open };

/// --total-store and --total-group: the --total of every proxy that names the same store and
/// group is one budget, leased from Redis by a sluice::redis::shared_group per direction
/// (doc/fleet.md).
struct fleet_spec {
  std::string store;                                        ///< unix:PATH or redis://HOST:PORT
  std::string group;                                        ///< the fleet's name
  std::chrono::milliseconds lease{200};                     ///< --total-lease
  store_failure on_failure = store_failure::hold_then_safe; ///< --total-on-failure
  bool operator==(const fleet_spec&) const = default;
};

/// "hold_then_safe", "hold", "closed", "open".
const char* store_failure_name(store_failure f);

/// True when this build has sluice::redis; without it, --total-store and the flags that go
/// with it are refused.
bool have_store_support();

/// The limits of the running proxy: the command line sets them, PUT /limits of the admin
/// endpoint changes them (proxy_limits.hpp), and the proxy applies them to every open
/// connection at once.
struct limit_set {
  direction_rates rate;   ///< each connection: --rate, --rate-down, --rate-up
  direction_rates per_ip; ///< all connections of one client address: --per-ip...
  direction_rates total;  ///< all connections together: --total, --total-down, --total-up
  std::optional<std::uint64_t> per_ip_max_connections; ///< open at once per address
  std::optional<std::uint64_t> burst;                  ///< bytes a bucket may hold
  std::chrono::nanoseconds tick = std::chrono::milliseconds(10);
  bool any_rate() const { return rate.any() || per_ip.any() || total.any(); }
  bool operator==(const limit_set&) const = default;
};

struct proxy_options {
  /// --route, one per route; or the one that --listen and --upstream give.
  std::vector<route_spec> routes;
  limit_set limits;
  std::optional<fleet_spec> fleet;               ///< --total-store, --total-group...
  std::optional<std::uint64_t> max_connections;  ///< open at once; more wait
  std::optional<std::chrono::nanoseconds> stats; ///< interval of the stats line
  /// Round-trip latency added: half of it to every chunk each way, give or take half the
  /// jitter, so that a request and its response take `delay` +- `jitter` longer.
  std::chrono::nanoseconds delay{};
  std::chrono::nanoseconds jitter{};
  log_format log = log_format::text;
  std::optional<host_port> admin;  ///< --admin: the HTTP endpoint (proxy_admin.hpp)
  bool admin_allow_remote = false; ///< --admin-allow-remote: any address, any Origin
  bool help = false;               ///< --help: print usage, nothing else is read
  bool version = false;            ///< --version: print the version, nothing else is read
};

/// "256KiB" -> 262144. Units: B; K/KB (1000), Ki/KiB (1024), M/MB, Mi/MiB, G/GB, Gi/GiB,
/// T/TB, Ti/TiB, case-insensitive, optionally followed by "/s"; a bare number is bytes. A
/// decimal fraction is allowed ("1.5MiB") and rounded down to whole bytes. Throws
/// std::invalid_argument (no option name: the caller adds it) for anything else, a negative
/// number, or a value above INT64_MAX.
std::uint64_t parse_size(std::string_view text);

/// "10ms" -> 10'000'000 ns. Units: ns, us (also µs), ms, s; a unit is required. A decimal
/// fraction is allowed ("1.5s"). Throws std::invalid_argument as parse_size does.
std::chrono::nanoseconds parse_duration(std::string_view text);

/// "localhost:8080", "127.0.0.1:8080" or "[::1]:8080" split into host and port. The port is
/// a decimal number up to 65535 (leading zeros are allowed: 00080 is 80); the host is
/// checked only for its form (not empty, colons only in brackets): resolving it is I/O,
/// done by the caller.
host_port parse_host_port(std::string_view text);

/// The longest unix:PATH: what a sockaddr_un holds, less its terminating zero.
inline constexpr std::size_t max_unix_path = 107;

/// "unix:/run/x.sock" or HOST:PORT as parse_host_port takes it. The path is not checked
/// beyond its length (at most max_unix_path) and not being empty.
endpoint_spec parse_endpoint(std::string_view text);

/// "LISTEN=UPSTREAM", split at the first '=' (a HOST:PORT has none; a unix path may).
route_spec parse_route(std::string_view text);

/// True for a host that names loopback only: "localhost", 127.0.0.0/8, ::1 (also
/// IPv4-mapped). Other names are resolved, and their addresses checked, by the caller.
bool is_loopback_host(std::string_view host);

/// Parses the arguments after the program name. Both "--rate 1MiB" and "--rate=1MiB" work.
/// Throws option_error naming the bad argument: an unknown flag, one given twice, a missing
/// value, a bad unit or number, a zero rate, a tick out of range, a burst smaller than a
/// tick's worth, a malformed HOST:PORT, a missing --listen or --upstream, --route mixed with
/// them, two routes on one listen address, an --admin address that is not loopback without
/// --admin-allow-remote, --total-store without --total-group (or the other way round) or
/// without a --total, a malformed store address, and any --total-store flag in a build
/// without Redis support.
proxy_options parse_options(const std::vector<std::string>& args);

/// Checks that every rate of `limits` makes a bucket with its tick and burst. Throws
/// option_error naming the flag at fault: the direction's own flag (--rate-down) if
/// `given` says it was given, else the flag for both (--rate); --burst for a burst under a
/// tick's worth.
void check_limits(const limit_set& limits, const std::function<bool(std::string_view)>& given);

/// The shortest --tick accepted. A bucket hands out its tokens a tick's worth at a time (an
/// operation short of them waits for half a tick's worth, a group shares a tick's worth
/// among those waiting), so a shorter tick means more wake-ups and smaller writes for the
/// same bytes: below a millisecond, the proxy's one thread spends most of its time waking
/// up, and with many connections it falls behind the rate.
inline constexpr std::chrono::nanoseconds min_tick = std::chrono::milliseconds(1);
/// The longest --tick accepted: a day, as for token_bucket_config.
inline constexpr std::chrono::nanoseconds max_tick = std::chrono::hours(24);
/// The longest --delay: a minute.
inline constexpr std::chrono::nanoseconds max_delay = std::chrono::seconds(60);
/// The shortest --stats interval: a line per connection per interval is already a lot.
inline constexpr std::chrono::nanoseconds min_stats = std::chrono::milliseconds(100);

/// The range of --total-lease: the library's least lease, and a lease long enough for a
/// store far away (a member is dropped after five leases of silence).
inline constexpr std::chrono::milliseconds min_lease{10};
inline constexpr std::chrono::milliseconds max_lease{5000};

/// How long a default burst lets a bucket go unserved before it is full and tokens are
/// lost. The wake-ups of a busy thread on a loaded machine come late by milliseconds; a
/// bucket that holds only a tick or two loses what accrues meanwhile, and the shorter the
/// tick, the more of the rate that is.
inline constexpr std::chrono::nanoseconds default_burst_time = std::chrono::milliseconds(50);

/// The token bucket of one direction of one limit, as the proxy builds it from a rate in
/// bytes per second, --tick and --burst: a whole number of bytes per tick (at least one),
/// with the tick fitted to the nanosecond so that the rate stays exact (256 KiB/s at 10 ms
/// is 2621 bytes every 9'998'322 ns), and a burst of `burst` bytes or, without it, the
/// larger of two ticks' worth and default_burst_time's worth.
struct bucket_shape {
  std::uint64_t per_tick = 0; ///< bytes a tick
  std::uint64_t burst = 0;    ///< bytes the bucket holds, >= per_tick
  std::chrono::nanoseconds tick{};
};

/// Throws std::invalid_argument (no option name) when the rate is too large for the tick,
/// or `burst` is under a tick's worth.
bucket_shape shape_bucket(std::uint64_t bytes_per_second, std::chrono::nanoseconds tick,
                          std::optional<std::uint64_t> burst = std::nullopt);

/// A token_bucket_config that limits writes only, with `shape`. The proxy shapes each
/// direction where it is written: down on the client's socket, up on the upstream's.
token_bucket_config write_limit(const bucket_shape& shape);

/// The usage text, ending in a newline.
std::string usage();

/// 262144 -> "256.0 KiB" (binary units up to TiB, one decimal; bytes below 1 KiB as
/// "512 B"), in the units parse_size accepts.
std::string format_bytes(double bytes);

/// 10'000'000 ns -> "10ms": the largest of ns, us, ms, s that keeps it whole.
std::string format_duration(std::chrono::nanoseconds d);

} // namespace sluice::proxy

#endif
