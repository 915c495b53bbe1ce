#include "proxy_options.hpp"

#include <boost/asio/ip/address.hpp>

#ifdef SLUICE_PROXY_HAVE_REDIS
#include <sluice/redis/address.hpp>
#endif

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

// The units the parsers accept, for their messages (usage() lists them too).
constexpr std::string_view size_units = "B, K/KB, Ki/KiB, M/MB, Mi/MiB, G/GB, Gi/GiB, T/TB, Ti/TiB";
constexpr std::string_view duration_units = "ns, us or \xC2\xB5s, ms, s";

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

// Any number of digits (leading zeros are fine: "00080" and "000080" are both 80), at most
// 65535.
std::uint64_t parse_port(std::string_view text, std::string_view whole) {
  if (text.empty() ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    throw std::invalid_argument(quoted(whole) + " has no port number (HOST:PORT)");
  std::uint64_t port = 0;
  for (char c : text) {
    port = port * 10 + static_cast<unsigned>(c - '0');
    if (port > 65535)
      throw std::invalid_argument(quoted(whole) + ": port " + std::string(text) +
                                  " is above 65535");
  }
  return port;
}

// "12" -> 12: a plain positive count, no unit.
std::uint64_t parse_count(std::string_view text) {
  if (text.empty() ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    throw std::invalid_argument(quoted(text) + " is not a whole number");
  std::uint64_t n = 0;
  for (char c : text) {
    n = n * 10 + static_cast<unsigned>(c - '0');
    if (n > 1000'000'000)
      throw std::invalid_argument(quoted(text) + " is too large");
  }
  if (n == 0)
    throw std::invalid_argument(quoted(text) + ": must be at least 1");
  return n;
}

// Whether text is valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF):
// the fleet's store and group go into JSON (the log, /stats) as they are.
bool valid_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    std::size_t n = c < 0x80             ? 0
                    : (c & 0xE0) == 0xC0 ? 1
                    : (c & 0xF0) == 0xE0 ? 2
                    : (c & 0xF8) == 0xF0 ? 3
                                         : 4;
    if (n == 4)
      return false;
    std::uint32_t cp = n == 0 ? c : c & (0x3F >> n);
    for (std::size_t k = 1; k <= n; ++k) {
      if (i + k >= text.size())
        return false;
      auto d = static_cast<unsigned char>(text[i + k]);
      if ((d & 0xC0) != 0x80)
        return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    static constexpr std::uint32_t least[] = {0, 0x80, 0x800, 0x10000};
    if (cp < least[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

// --total-store: the form of a store address (no I/O: a name is resolved at start).
std::string parse_store(std::string_view text) {
  if (!valid_utf8(text))
    throw std::invalid_argument(quoted(text) + ": not valid UTF-8");
#ifdef SLUICE_PROXY_HAVE_REDIS
  sluice::redis::address a;
  try {
    a = sluice::redis::address::parse(text);
  } catch (const std::invalid_argument& e) {
    std::string why = e.what(); // "sluice::redis: bad store address "X": WHY (expected ...)"
    if (auto colon = why.find("\": "); colon != std::string::npos)
      why.erase(0, colon + 3);
    throw std::invalid_argument(quoted(text) + ": " + why);
  }
  if (a.type == sluice::redis::address::kind::unix_socket && a.path.size() > max_unix_path)
    throw std::invalid_argument(quoted(text) + ": the path is longer than " +
                                std::to_string(max_unix_path) + " bytes");
#endif
  return std::string(text);
}

// --total-group: the name is part of the store's keys ({sluice:NAME:down}:...), whose braces
// are Redis Cluster's hash tag.
std::string parse_group(std::string_view text) {
  if (text.size() > 128)
    throw std::invalid_argument(quoted(text.substr(0, 20)) + "...: longer than 128 bytes");
  for (char c : text)
    if (c == '{' || c == '}' || static_cast<unsigned char>(c) <= ' ' || c == '\x7f')
      throw std::invalid_argument(quoted(text) +
                                  ": must have no '{', '}', spaces or control characters");
  if (!valid_utf8(text))
    throw std::invalid_argument(quoted(text) + ": not valid UTF-8");
  return std::string(text);
}

constexpr std::array<std::pair<std::string_view, store_failure>, 4> store_failures{{
    {"hold_then_safe", store_failure::hold_then_safe},
    {"hold", store_failure::hold},
    {"closed", store_failure::closed},
    {"open", store_failure::open},
}};

} // namespace

const char* store_failure_name(store_failure f) {
  for (auto [name, value] : store_failures)
    if (value == f)
      return name.data();
  return "?";
}

bool have_store_support() {
#ifdef SLUICE_PROXY_HAVE_REDIS
  return true;
#else
  return false;
#endif
}

std::uint64_t parse_size(std::string_view text) {
  auto [number, unit] = split_unit(text);
  std::string u = lower(unit);
  if (u.size() >= 2 && u.ends_with("/s"))
    u.resize(u.size() - 2);
  static constexpr std::uint64_t ki = 1024;
  static constexpr std::array<std::pair<std::string_view, std::uint64_t>, 18> units{{
      {"", 1},
      {"b", 1},
      {"k", 1000},
      {"kb", 1000},
      {"ki", ki},
      {"kib", ki},
      {"m", 1000'000},
      {"mb", 1000'000},
      {"mi", ki * ki},
      {"mib", ki * ki},
      {"g", 1000'000'000},
      {"gb", 1000'000'000},
      {"gi", ki * ki * ki},
      {"gib", ki * ki * ki},
      {"t", 1000'000'000'000},
      {"tb", 1000'000'000'000},
      {"ti", ki * ki * ki * ki},
      {"tib", ki * ki * ki * ki},
  }};
  for (auto [name, factor] : units)
    if (u == name)
      return scale(number, factor, text);
  throw std::invalid_argument(quoted(text) + ": unknown unit " + quoted(unit) + " (" +
                              std::string(size_units) + ")");
}

std::chrono::nanoseconds parse_duration(std::string_view text) {
  auto [number, unit] = split_unit(text);
  if (unit.empty())
    throw std::invalid_argument(quoted(text) + " needs a unit (" + std::string(duration_units) +
                                ")");
  static constexpr std::array<std::pair<std::string_view, std::uint64_t>, 5> units{{
      {"ns", 1},
      {"us", 1000},
      {"\xC2\xB5s", 1000}, // µs in UTF-8
      {"ms", 1000'000},
      {"s", 1000'000'000},
  }};
  std::string u = lower(unit);
  for (auto [name, factor] : units)
    if (u == name)
      return std::chrono::nanoseconds(scale(number, factor, text));
  throw std::invalid_argument(quoted(text) + ": unknown unit " + quoted(unit) + " (" +
                              std::string(duration_units) + ")");
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

std::string endpoint_spec::text() const {
  return is_unix() ? "unix:" + unix_path : tcp.text();
}

endpoint_spec parse_endpoint(std::string_view text) {
  endpoint_spec e;
  if (text.starts_with("unix:")) {
    e.unix_path = text.substr(5);
    if (e.unix_path.empty())
      throw std::invalid_argument(quoted(text) + " has no path (unix:PATH)");
    if (e.unix_path.size() > max_unix_path)
      throw std::invalid_argument(quoted(text) + ": the path is longer than " +
                                  std::to_string(max_unix_path) + " bytes");
    if (e.unix_path.find('\0') != std::string::npos)
      throw std::invalid_argument(quoted(text) + ": the path has a NUL byte");
    return e;
  }
  e.tcp = parse_host_port(text);
  return e;
}

route_spec parse_route(std::string_view text) {
  auto eq = text.find('=');
  if (eq == std::string_view::npos)
    throw std::invalid_argument(quoted(text) + " is not LISTEN=UPSTREAM");
  route_spec r{parse_endpoint(text.substr(0, eq)), parse_endpoint(text.substr(eq + 1))};
  if (!r.upstream.is_unix() && r.upstream.tcp.port == 0)
    throw std::invalid_argument(quoted(text) + ": the upstream needs a port other than 0");
  return r;
}

bool is_loopback_host(std::string_view host) {
  if (lower(host) == "localhost")
    return true;
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(std::string(host), ec);
  if (ec)
    return false;
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6())
        .is_loopback();
  return address.is_loopback();
}

bucket_shape shape_bucket(std::uint64_t bytes_per_second, std::chrono::nanoseconds tick,
                          std::optional<std::uint64_t> burst) {
  if (bytes_per_second == 0 || tick <= std::chrono::nanoseconds::zero() || burst == 0u)
    throw std::invalid_argument("the rate, the tick and the burst must be positive");
  // A whole number of bytes per tick, at least one...
  uint128 per_tick =
      (uint128(bytes_per_second) * static_cast<std::uint64_t>(tick.count()) + 500'000'000) /
      1000'000'000;
  per_tick = std::max<uint128>(per_tick, 1);
  // ...and the burst: two ticks' worth, or default_burst_time's if that is more, within
  // what a bucket can hold.
  uint128 held = uint128(bytes_per_second) *
                 static_cast<std::uint64_t>(default_burst_time.count()) / 1000'000'000;
  held = burst ? uint128(*burst) : std::min<uint128>(int64_max, std::max(per_tick * 2, held));
  if (per_tick > int64_max)
    throw std::invalid_argument(format_bytes(static_cast<double>(bytes_per_second)) +
                                "/s is too large for --tick " + format_duration(tick));
  if (held < per_tick)
    throw std::invalid_argument(std::to_string(*burst) + " bytes is less than a tick's worth of " +
                                format_bytes(static_cast<double>(bytes_per_second)) + "/s (" +
                                std::to_string(static_cast<std::uint64_t>(per_tick)) +
                                " bytes at --tick " + format_duration(tick) +
                                "): raise --burst or shorten --tick");
  // ...and the tick fitted to it, to the nanosecond, so that the rate stays exact: 256 KiB/s
  // at 10 ms is 2621 bytes every 9'998'322 ns, where 2621 bytes every 10 ms would be 0.02%
  // slow, and 150 B/s at 10 ms 1 byte every 6.67 ms, where rounding the bytes would be 33%.
  uint128 tick_ns = (per_tick * 1000'000'000 + bytes_per_second / 2) / bytes_per_second;
  bucket_shape shape;
  shape.per_tick = static_cast<std::uint64_t>(per_tick);
  shape.burst = static_cast<std::uint64_t>(held);
  shape.tick = std::chrono::nanoseconds(static_cast<std::int64_t>(tick_ns));
  write_limit(shape).validate();
  return shape;
}

token_bucket_config write_limit(const bucket_shape& shape) {
  token_bucket_config cfg; // reads stay unlimited
  cfg.write_rate = shape.per_tick;
  cfg.write_burst = shape.burst;
  cfg.tick = shape.tick;
  return cfg;
}

void check_limits(const limit_set& limits, const std::function<bool(std::string_view)>& given) {
  // The flag blamed is the one that set the rate; a burst too small is --burst's fault.
  auto check = [&](const std::optional<std::uint64_t>& r, std::string_view own_flag,
                   std::string_view both_flag) {
    if (!r)
      return;
    std::string flag(given(own_flag) ? own_flag : both_flag);
    try {
      shape_bucket(*r, limits.tick);
    } catch (const std::invalid_argument& e) {
      throw option_error(flag, e.what());
    }
    try {
      shape_bucket(*r, limits.tick, limits.burst);
    } catch (const std::invalid_argument& e) {
      throw option_error("--burst", std::string(e.what()) + " (" + flag + ")");
    }
  };
  check(limits.rate.down, "--rate-down", "--rate");
  check(limits.rate.up, "--rate-up", "--rate");
  check(limits.per_ip.down, "--per-ip-down", "--per-ip");
  check(limits.per_ip.up, "--per-ip-up", "--per-ip");
  check(limits.total.down, "--total-down", "--total");
  check(limits.total.up, "--total-up", "--total");
}

proxy_options parse_options(const std::vector<std::string>& args) {
  proxy_options opts;
  limit_set& limits = opts.limits;
  // What was given, for the checks that need all of it and for "given twice".
  std::vector<std::string_view> seen;
  // Each rate flag's value, by flag, until all are read: a direction's own flag wins.
  std::vector<std::pair<std::string_view, std::uint64_t>> rates;
  std::optional<endpoint_spec> listen, upstream;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") {
      opts.help = true;
      return opts;
    }
    if (arg == "--version") {
      opts.version = true;
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
    static constexpr std::string_view known[] = {"--listen",
                                                 "--upstream",
                                                 "--route",
                                                 "--rate",
                                                 "--rate-down",
                                                 "--rate-up",
                                                 "--per-ip",
                                                 "--per-ip-down",
                                                 "--per-ip-up",
                                                 "--total",
                                                 "--total-down",
                                                 "--total-up",
                                                 "--burst",
                                                 "--tick",
                                                 "--delay",
                                                 "--jitter",
                                                 "--stats",
                                                 "--max-connections",
                                                 "--log-format",
                                                 "--help",
                                                 "--version",
                                                 "--admin",
                                                 "--admin-allow-remote",
                                                 "--per-ip-max-connections",
                                                 "--total-store",
                                                 "--total-group",
                                                 "--total-lease",
                                                 "--total-on-failure"};
    if (std::find(std::begin(known), std::end(known), name) == std::end(known))
      throw option_error(std::string(name),
                         arg.starts_with("-") ? "unknown option" : "unexpected argument");
    const bool takes_value =
        name != "--admin-allow-remote" && name != "--help" && name != "--version";
    if (inline_value && !takes_value)
      throw option_error(std::string(name), "takes no value");
    // --route is repeatable: one per route.
    if (name != "--route" && std::find(seen.begin(), seen.end(), name) != seen.end())
      throw option_error(std::string(name), "is given twice");
    seen.push_back(name);
    if (!takes_value) {
      opts.admin_allow_remote = true;
      continue;
    }
    if (!inline_value) {
      // A flag where the value should be ("--rate --total 1M") means the value is missing.
      if (i + 1 >= args.size() || std::string_view(args[i + 1]).starts_with("--"))
        throw option_error(std::string(name), "needs a value");
      value = args[++i];
    }
    if (value.empty())
      throw option_error(std::string(name), "needs a value");
    const bool fleet_flag = name == "--total-store" || name == "--total-group" ||
                            name == "--total-lease" || name == "--total-on-failure";
    if (fleet_flag && !have_store_support())
      throw option_error(std::string(name),
                         "sluice-proxy was built without Redis support (it needs hiredis: "
                         "CMake option SLUICE_BUILD_REDIS)");

    try {
      if (fleet_flag) {
        if (!opts.fleet)
          opts.fleet.emplace();
        if (name == "--total-store") {
          opts.fleet->store = parse_store(value);
        } else if (name == "--total-group") {
          opts.fleet->group = parse_group(value);
        } else if (name == "--total-lease") {
          auto lease = std::chrono::duration_cast<std::chrono::milliseconds>(parse_duration(value));
          if (lease < min_lease || lease > max_lease)
            throw std::invalid_argument(quoted(value) + ": must be from " +
                                        format_duration(min_lease) + " to " +
                                        format_duration(max_lease));
          opts.fleet->lease = lease;
        } else { // --total-on-failure
          auto it = std::find_if(store_failures.begin(), store_failures.end(),
                                 [&](const auto& f) { return f.first == value; });
          if (it == store_failures.end())
            throw std::invalid_argument(quoted(value) +
                                        ": must be hold_then_safe, hold, closed or open");
          opts.fleet->on_failure = it->second;
        }
      } else if (name == "--listen") {
        listen = parse_endpoint(value);
      } else if (name == "--upstream") {
        upstream = parse_endpoint(value);
        if (!upstream->is_unix() && upstream->tcp.port == 0)
          throw std::invalid_argument(quoted(value) + ": the upstream needs a port other than 0");
      } else if (name == "--route") {
        route_spec r = parse_route(value);
        for (const route_spec& other : opts.routes)
          if (other.listen.text() == r.listen.text() &&
              (r.listen.is_unix() || r.listen.tcp.port != 0))
            throw std::invalid_argument(quoted(value) + ": another --route listens on " +
                                        r.listen.text());
        opts.routes.push_back(std::move(r));
      } else if (name.starts_with("--rate") || name.starts_with("--total") ||
                 (name.starts_with("--per-ip") && name != "--per-ip-max-connections")) {
        std::uint64_t r = parse_size(value);
        if (r == 0)
          throw std::invalid_argument(quoted(value) + ": must be more than 0 bytes per second "
                                                      "(leave the option out for no limit)");
        rates.emplace_back(name, r);
      } else if (name == "--burst") {
        limits.burst = parse_size(value);
        if (*limits.burst == 0)
          throw std::invalid_argument(quoted(value) + ": must be more than 0 bytes");
      } else if (name == "--tick") {
        limits.tick = parse_duration(value);
        if (limits.tick < min_tick)
          throw std::invalid_argument(
              quoted(value) + ": must be at least " + format_duration(min_tick) +
              ", the smallest tick that works: shorter ones wake the proxy more often than it "
              "can serve, and it falls behind the rate");
        if (limits.tick > max_tick)
          throw std::invalid_argument(quoted(value) + ": must be at most " +
                                      format_duration(max_tick) + " (a day)");
      } else if (name == "--delay" || name == "--jitter") {
        auto d = parse_duration(value);
        if (d <= std::chrono::nanoseconds::zero())
          throw std::invalid_argument(quoted(value) +
                                      ": must be more than 0 (leave the option out for none)");
        if (d > max_delay)
          throw std::invalid_argument(quoted(value) + ": must be at most " +
                                      format_duration(max_delay));
        (name == "--delay" ? opts.delay : opts.jitter) = d;
      } else if (name == "--stats") {
        opts.stats = parse_duration(value);
        if (*opts.stats < min_stats)
          throw std::invalid_argument(quoted(value) + ": must be at least " +
                                      format_duration(min_stats));
      } else if (name == "--max-connections") {
        opts.max_connections = parse_count(value);
      } else if (name == "--per-ip-max-connections") {
        limits.per_ip_max_connections = parse_count(value);
      } else if (name == "--admin") {
        opts.admin = parse_host_port(value);
      } else { // --log-format
        if (value == "text")
          opts.log = log_format::text;
        else if (value == "json")
          opts.log = log_format::json;
        else
          throw std::invalid_argument(quoted(value) + ": must be text or json");
      }
    } catch (const option_error&) {
      throw;
    } catch (const std::invalid_argument& e) {
      throw option_error(std::string(name), e.what());
    }
  }
  auto given = [&](std::string_view name) {
    return std::find(seen.begin(), seen.end(), name) != seen.end();
  };
  if (!opts.routes.empty() && (listen || upstream))
    throw option_error(listen ? "--listen" : "--upstream",
                       "cannot be mixed with --route: give every route with --route, or the "
                       "one route with --listen and --upstream");
  if (opts.routes.empty()) {
    if (!listen)
      throw option_error("--listen", "is required (or --route)");
    if (!upstream)
      throw option_error("--upstream", "is required (or --route)");
    opts.routes.push_back({*listen, *upstream});
  }
  // A direction's own flag wins over the one for both, whatever their order.
  auto rate_of = [&](std::string_view flag) -> std::optional<std::uint64_t> {
    for (auto& [f, r] : rates)
      if (f == flag)
        return r;
    return std::nullopt;
  };
  auto directions = [&](std::string_view both, std::string_view down, std::string_view up) {
    auto b = rate_of(both), d = rate_of(down), u = rate_of(up);
    return direction_rates{d ? d : b, u ? u : b};
  };
  limits.rate = directions("--rate", "--rate-down", "--rate-up");
  limits.per_ip = directions("--per-ip", "--per-ip-down", "--per-ip-up");
  limits.total = directions("--total", "--total-down", "--total-up");
  if (given("--jitter") && !given("--delay"))
    throw option_error("--jitter", "needs --delay (a round trip takes DELAY +- JITTER longer)");
  if (opts.jitter > opts.delay)
    throw option_error("--jitter", quoted(format_duration(opts.jitter)) +
                                       ": must be at most --delay (" + format_duration(opts.delay) +
                                       ")");
  if (opts.fleet) {
    for (const char* flag : {"--total-group", "--total-lease", "--total-on-failure"})
      if (given(flag) && !given("--total-store"))
        throw option_error(flag, "needs --total-store (the Redis that the fleet's proxies share)");
    if (!given("--total-group"))
      throw option_error("--total-store", "needs --total-group NAME (the proxies that name the "
                                          "same store and group share one --total)");
    if (!limits.total.any())
      throw option_error("--total-store",
                         "needs --total, --total-down or --total-up (the budget the fleet shares)");
  }
  if (limits.burst && !limits.any_rate())
    throw option_error("--burst", "needs a limit to shape (--rate, --per-ip or --total)");
  if (given("--admin-allow-remote") && !opts.admin)
    throw option_error("--admin-allow-remote", "needs --admin");
  if (opts.admin && !opts.admin_allow_remote && !is_loopback_host(opts.admin->host)) {
    boost::system::error_code ec;
    boost::asio::ip::make_address(opts.admin->host, ec);
    if (!ec) // a name is resolved, and its addresses checked, at start
      throw option_error("--admin", quoted(opts.admin->text()) +
                                        ": not a loopback address; anyone who can reach it could "
                                        "change the limits (add --admin-allow-remote to mean it)");
  }
  check_limits(limits, given);
  return opts;
}

std::string usage() {
  return "usage: sluice-proxy --listen ADDRESS --upstream ADDRESS [options]\n"
         "       sluice-proxy --route LISTEN=UPSTREAM [--route ...] [options]\n"
         "\n"
         "A TCP proxy that shapes every connection with sluice token buckets.\n"
         "\n"
         "  --listen ADDRESS       accept connections here (port 0: any free port, printed)\n"
         "  --upstream ADDRESS     connect each of them to this address\n"
         "  --route LISTEN=UPSTREAM  a route of its own: a listener and its upstream;\n"
         "                         repeat for more (instead of --listen and --upstream)\n"
         "  --rate SIZE            limit of each connection, bytes per second, each direction\n"
         "  --rate-down SIZE       the same for downloads only (upstream -> client)\n"
         "  --rate-up SIZE         the same for uploads only (client -> upstream)\n"
         "  --per-ip SIZE          limit of all connections from one client address together,\n"
         "                         shared fairly (unix-socket clients are one address)\n"
         "  --per-ip-down SIZE     the same for downloads only\n"
         "  --per-ip-up SIZE       the same for uploads only\n"
         "  --per-ip-max-connections N\n"
         "                         connections open at once from one client address; more\n"
         "                         are refused (closed at once) and logged\n"
         "  --total SIZE           limit of all connections together, shared fairly\n"
         "  --total-down SIZE      the same for downloads only\n"
         "  --total-up SIZE        the same for uploads only\n"
         "  --total-store ADDRESS  share --total with every proxy that names this Redis\n"
         "                         (unix:PATH or redis://HOST:PORT) and --total-group\n"
         "  --total-group NAME     the fleet's name in the store\n"
         "  --total-lease DURATION how long a share is leased, 10ms to 5s (default 200ms)\n"
         "  --total-on-failure POLICY\n"
         "                         while the store is unreachable, after 5 s on the last\n"
         "                         share: hold_then_safe (default), hold, closed or open\n"
         "  --burst SIZE           bytes a bucket may hold, the longest burst (default: 50ms\n"
         "                         or two ticks of its rate, whichever is more)\n"
         "  --tick DURATION        token-bucket tick, 1ms to 86400s (default 10ms): tokens\n"
         "                         are handed out a tick's worth at a time\n"
         "  --delay DURATION       round-trip latency added: half of it to every chunk each\n"
         "                         way, without reordering bytes\n"
         "  --jitter DURATION      a round trip takes DELAY +- JITTER longer, at random\n"
         "                         (at most --delay)\n"
         "  --max-connections N    connections open at once; more wait to be accepted\n"
         "                         (default: as many as file descriptors allow)\n"
         "  --stats DURATION       log the connections and their rates every DURATION\n"
         "                         (100ms at least)\n"
         "  --admin HOST:PORT      HTTP endpoint: GET /metrics (Prometheus), GET /stats and\n"
         "                         GET /limits (JSON), PUT /limits (JSON) changes the limits\n"
         "                         of the running proxy; loopback only\n"
         "  --admin-allow-remote   let --admin listen on any address and take requests of\n"
         "                         any Origin\n"
         "  --log-format FORMAT    text (default) or json: one object per line\n"
         "  --version              print the version and exit\n"
         "  --help                 print this and exit\n"
         "\n"
         "A direction's own flag (--rate-down) wins over the flag for both (--rate). A\n"
         "connection gets the least of --rate, its share of --per-ip and its share of --total.\n"
         "Limits and counts are of the whole proxy, across its routes.\n"
         "SIZE: a number and a unit: B, K/KB (1000), Ki/KiB (1024), M/MB, Mi/MiB, G/GB,\n"
         "      Gi/GiB, T/TB, Ti/TiB (a bare number is bytes).\n"
         "DURATION: a number and a unit: ns, us (or µs), ms, s.\n"
         "ADDRESS: HOST:PORT, or unix:PATH for a unix-domain socket.\n"
         "HOST:PORT: a name or an address and a port number: localhost:8080, 127.0.0.1:8080,\n"
         "      [::1]:8080. Names are resolved once, at start: a listener binds the first\n"
         "      address, each connection tries the upstream's addresses in turn.\n"
         "Log lines go to stdout, each with a UTC timestamp; SIGHUP is logged and ignored,\n"
         "SIGINT and SIGTERM stop the proxy.\n";
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

std::string format_duration(std::chrono::nanoseconds d) {
  static constexpr std::array<std::pair<const char*, std::int64_t>, 3> units{{
      {"s", 1000'000'000},
      {"ms", 1000'000},
      {"us", 1000},
  }};
  for (auto [name, factor] : units)
    if (d.count() != 0 && d.count() % factor == 0)
      return std::to_string(d.count() / factor) + name;
  return std::to_string(d.count()) + "ns";
}

} // namespace sluice::proxy
