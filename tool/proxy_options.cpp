#include "proxy_options.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <limits>
#include <utility>

namespace sluice::proxy {

namespace {

__extension__ typedef unsigned __int128 uint128; // exact products of 64-bit values

constexpr std::uint64_t int64_max = std::numeric_limits<std::int64_t>::max();

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Built by appending: GCC 12 warns falsely (-Wrestrict, its bug 105651) on "'" + string.
std::string quoted(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '\'';
  out += s;
  out += '\'';
  return out;
}

// A decimal number ("12", "1.5") times `unit`, rounded down, in exact integer arithmetic
// (so "1.1GB" is 1'100'000'000, not 1'099'999'999 as a double could make it).
std::uint64_t scale(std::string_view number, std::uint64_t unit, std::string_view whole) {
  auto dot = number.find('.');
  std::string_view int_part = number.substr(0, dot);
  std::string_view frac_part = dot == std::string_view::npos ? "" : number.substr(dot + 1);
  auto all_digits = [](std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if ((int_part.empty() && frac_part.empty()) || !all_digits(int_part) || !all_digits(frac_part))
    throw std::invalid_argument(quoted(whole) + " is not a number with a unit");

  uint128 value = 0;
  for (char c : int_part) {
    value = value * 10 + static_cast<unsigned>(c - '0');
    if (value * unit > int64_max)
      throw std::invalid_argument(quoted(whole) + " is too large");
  }
  value *= unit;
  // Digits past the 18th are dropped (rounding down, as documented): they keep the
  // arithmetic within 128 bits.
  uint128 frac = 0, denominator = 1;
  for (char c : frac_part.substr(0, 18)) {
    frac = frac * 10 + static_cast<unsigned>(c - '0');
    denominator *= 10;
  }
  value += frac * unit / denominator;
  if (value > int64_max)
    throw std::invalid_argument(quoted(whole) + " is too large");
  return static_cast<std::uint64_t>(value);
}

// Splits "256KiB" into "256" and "KiB": the number is the leading digits and dots.
std::pair<std::string_view, std::string_view> split_unit(std::string_view text) {
  if (text.empty())
    throw std::invalid_argument("the value is empty");
  if (text.starts_with('-'))
    throw std::invalid_argument(quoted(text) + " is negative");
  auto end = text.find_first_not_of("0123456789.");
  if (end == std::string_view::npos)
    return {text, {}};
  return {text.substr(0, end), text.substr(end)};
}

std::uint64_t parse_port(std::string_view text, std::string_view whole) {
  if (text.empty() || text.size() > 5 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    throw std::invalid_argument(quoted(whole) + " has no port number (HOST:PORT)");
  std::uint64_t port = std::stoul(std::string(text));
  if (port > 65535)
    throw std::invalid_argument(quoted(whole) + ": port " + std::string(text) + " is above 65535");
  return port;
}

} // namespace

std::uint64_t parse_size(std::string_view text) {
  auto [number, unit] = split_unit(text);
  std::string u = lower(unit);
  if (u.size() >= 2 && u.ends_with("/s"))
    u.resize(u.size() - 2);
  static constexpr std::array<std::pair<std::string_view, std::uint64_t>, 14> units{{
      {"", 1},
      {"b", 1},
      {"k", 1000},
      {"kb", 1000},
      {"ki", 1024},
      {"kib", 1024},
      {"m", 1000'000},
      {"mb", 1000'000},
      {"mi", 1024 * 1024},
      {"mib", 1024 * 1024},
      {"g", 1000'000'000},
      {"gb", 1000'000'000},
      {"gi", 1024 * 1024 * 1024},
      {"gib", 1024 * 1024 * 1024},
  }};
  for (auto [name, factor] : units)
    if (u == name)
      return scale(number, factor, text);
  throw std::invalid_argument(quoted(text) + ": unknown unit " + quoted(unit) +
                              " (B, K/KB, Ki/KiB, M/MB, Mi/MiB, G/GB, Gi/GiB)");
}

std::chrono::nanoseconds parse_duration(std::string_view text) {
  auto [number, unit] = split_unit(text);
  if (unit.empty())
    throw std::invalid_argument(quoted(text) + " needs a unit (s, ms, us)");
  static constexpr std::array<std::pair<std::string_view, std::uint64_t>, 5> units{{
      {"s", 1000'000'000},
      {"ms", 1000'000},
      {"us", 1000},
      {"\xC2\xB5s", 1000}, // µs in UTF-8
      {"ns", 1},
  }};
  std::string u = lower(unit);
  for (auto [name, factor] : units)
    if (u == name)
      return std::chrono::nanoseconds(scale(number, factor, text));
  throw std::invalid_argument(quoted(text) + ": unknown unit " + quoted(unit) + " (s, ms, us)");
}

std::string host_port::text() const {
  std::string out = host.find(':') == std::string::npos ? host : "[" + host + "]";
  return out + ":" + std::to_string(port);
}

host_port parse_host_port(std::string_view text) {
  std::string_view host, port;
  if (text.starts_with('[')) { // [v6 address]:port
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      throw std::invalid_argument(quoted(text) + " is not [ADDR]:PORT");
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (!host.empty() && host.find(':') == std::string_view::npos)
      throw std::invalid_argument(quoted(text) + ": brackets are for IPv6 addresses only");
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos)
      throw std::invalid_argument(quoted(text) + " has no port (HOST:PORT)");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      throw std::invalid_argument(quoted(text) + ": write an IPv6 address as [ADDR]:PORT");
  }
  if (host.empty())
    throw std::invalid_argument(quoted(text) + " has no host (HOST:PORT)");
  return {std::string(host), static_cast<unsigned short>(parse_port(port, text))};
}

token_bucket_config bucket_config(std::uint64_t bytes_per_second, std::chrono::nanoseconds tick,
                                  std::uint64_t burst_ticks) {
  if (bytes_per_second == 0 || tick <= std::chrono::nanoseconds::zero() || burst_ticks == 0)
    throw std::invalid_argument("the rate, the tick and the burst must be positive");
  // A whole number of bytes per tick, at least one...
  uint128 per_tick =
      (uint128(bytes_per_second) * static_cast<std::uint64_t>(tick.count()) + 500'000'000) /
      1000'000'000;
  per_tick = std::max<uint128>(per_tick, 1);
  if (per_tick * burst_ticks > int64_max)
    throw std::invalid_argument(std::to_string(bytes_per_second) +
                                " bytes per second is too large for this tick");
  // ...and the tick fitted to it, to the nanosecond, so that the rate stays exact: 256 KiB/s
  // at 10 ms is 2621 bytes every 9'998'322 ns, where 2621 bytes every 10 ms would be 0.02%
  // slow, and 150 B/s at 10 ms 1 byte every 6.67 ms, where rounding the bytes would be 33%.
  uint128 tick_ns = (per_tick * 1000'000'000 + bytes_per_second / 2) / bytes_per_second;
  token_bucket_config cfg;
  cfg.read_rate = cfg.write_rate = static_cast<std::uint64_t>(per_tick);
  cfg.read_burst = cfg.write_burst = static_cast<std::uint64_t>(per_tick * burst_ticks);
  cfg.tick = std::chrono::nanoseconds(static_cast<std::int64_t>(tick_ns));
  cfg.validate();
  return cfg;
}

proxy_options parse_options(const std::vector<std::string>& args) {
  proxy_options opts;
  bool have_listen = false, have_upstream = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") {
      opts.help = true;
      return opts;
    }
    // "--name value" or "--name=value".
    std::string_view name = arg, value;
    bool inline_value = false;
    if (auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      inline_value = true;
    }
    static constexpr std::array<std::string_view, 6> known{"--listen", "--upstream", "--rate",
                                                           "--total",  "--tick",     "--stats"};
    if (std::find(known.begin(), known.end(), name) == known.end())
      throw option_error(std::string(name),
                         arg.starts_with("-") ? "unknown option" : "unexpected argument");
    if (!inline_value) {
      // A flag where the value should be ("--rate --total 1M") means the value is missing.
      if (i + 1 >= args.size() || std::string_view(args[i + 1]).starts_with("--"))
        throw option_error(std::string(name), "needs a value");
      value = args[++i];
    }
    if (value.empty())
      throw option_error(std::string(name), "needs a value");

    try {
      if (name == "--listen") {
        opts.listen = parse_host_port(value);
        have_listen = true;
      } else if (name == "--upstream") {
        opts.upstream = parse_host_port(value);
        if (opts.upstream.port == 0)
          throw std::invalid_argument(quoted(value) + ": the upstream needs a port other than 0");
        have_upstream = true;
      } else if (name == "--rate" || name == "--total") {
        std::uint64_t rate = parse_size(value);
        if (rate == 0)
          throw std::invalid_argument(quoted(value) + ": must be more than 0 bytes per second "
                                                      "(leave the option out for no limit)");
        (name == "--rate" ? opts.rate : opts.total) = rate;
      } else if (name == "--tick") {
        opts.tick = parse_duration(value);
        if (opts.tick <= std::chrono::nanoseconds::zero() || opts.tick > std::chrono::hours(24))
          throw std::invalid_argument(quoted(value) + ": must be more than 0 and at most 24h");
      } else { // --stats
        opts.stats = parse_duration(value);
        if (*opts.stats <= std::chrono::nanoseconds::zero())
          throw std::invalid_argument(quoted(value) + ": must be more than 0");
      }
    } catch (const option_error&) {
      throw;
    } catch (const std::invalid_argument& e) {
      throw option_error(std::string(name), e.what());
    }
  }
  if (!have_listen)
    throw option_error("--listen", "is required");
  if (!have_upstream)
    throw option_error("--upstream", "is required");
  // Checked once all is read: whether a rate's burst fits in a bucket depends on the tick.
  try {
    if (opts.rate)
      bucket_config(*opts.rate, opts.tick);
  } catch (const std::invalid_argument& e) {
    throw option_error("--rate", e.what());
  }
  try {
    if (opts.total)
      bucket_config(*opts.total, opts.tick, group_burst_ticks);
  } catch (const std::invalid_argument& e) {
    throw option_error("--total", e.what());
  }
  return opts;
}

std::string usage() {
  return "usage: sluice-proxy --listen HOST:PORT --upstream HOST:PORT\n"
         "                    [--rate SIZE] [--total SIZE] [--tick DURATION] [--stats DURATION]\n"
         "\n"
         "A TCP proxy that shapes every connection with sluice token buckets.\n"
         "\n"
         "  --listen HOST:PORT    accept connections here (port 0: any free port, printed)\n"
         "  --upstream HOST:PORT  connect each of them to this address\n"
         "  --rate SIZE           limit of each connection, bytes per second in each direction\n"
         "  --total SIZE          limit of all connections together, shared fairly\n"
         "  --tick DURATION       token-bucket tick (default 10ms): a connection's bucket holds\n"
         "                        one tick's worth and the --total group's two, so no burst\n"
         "                        is longer\n"
         "  --stats DURATION      print the connections and their rates every DURATION\n"
         "  --help                print this and exit\n"
         "\n"
         "SIZE: a number and a unit: B, K/KB (1000), Ki/KiB (1024), M/MB, Mi/MiB, G/GB,\n"
         "      Gi/GiB (a bare number is bytes). DURATION: a number and s, ms or us.\n"
         "HOST:PORT: a name or an address and a port number: localhost:8080, 127.0.0.1:8080,\n"
         "      [::1]:8080. Names are resolved once, at start: --listen binds the first\n"
         "      address, each connection tries the upstream's addresses in turn.\n";
}

std::string format_bytes(double bytes) {
  static constexpr std::array<const char*, 4> units{"KiB", "MiB", "GiB", "TiB"};
  char text[32];
  if (bytes < 1024) {
    std::snprintf(text, sizeof text, "%.0f B", bytes);
    return text;
  }
  std::size_t i = 0;
  bytes /= 1024;
  while (bytes >= 1024 && i + 1 < units.size()) {
    bytes /= 1024;
    ++i;
  }
  std::snprintf(text, sizeof text, "%.1f %s", bytes, units[i]);
  return text;
}

} // namespace sluice::proxy
