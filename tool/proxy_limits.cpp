#include "proxy_limits.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>

namespace sluice::proxy {

namespace {

// The JSON key of a flag: "--per-ip-down" -> "per_ip_down".
std::string key_of(std::string_view flag) {
  std::string key(flag.substr(flag.starts_with("--") ? 2 : 0));
  std::replace(key.begin(), key.end(), '-', '_');
  return key;
}

// A number of bytes, a SIZE string, or null (nullopt). Zero is refused: null says "no limit".
std::optional<std::uint64_t> size_value(const boost::json::value& v, std::string_view key) {
  std::string k(key);
  if (v.is_null())
    return std::nullopt;
  std::uint64_t n = 0;
  if (v.is_string()) {
    try {
      n = parse_size(std::string_view(v.get_string()));
    } catch (const std::invalid_argument& e) {
      throw limits_error(k + ": " + e.what());
    }
  } else if (v.is_uint64()) {
    n = v.get_uint64();
  } else if (v.is_int64() && v.get_int64() >= 0) {
    n = static_cast<std::uint64_t>(v.get_int64());
  } else {
    throw limits_error(k + ": " + boost::json::serialize(v) +
                       " is not a whole number of bytes, a SIZE string (\"256KiB\") or null");
  }
  if (n == 0)
    throw limits_error(k + ": must be more than 0 (null removes the limit)");
  if (n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    throw limits_error(k + ": " + std::to_string(n) + " is too large");
  return n;
}

} // namespace

limit_set update_limits(const limit_set& current, std::string_view body, bool total_shared) {
  if (body.size() > max_limits_body)
    throw limits_error("the body is larger than " + std::to_string(max_limits_body) + " bytes");
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(body, ec);
  if (ec)
    throw limits_error("the body is not JSON: " + ec.message());
  if (!doc.is_object())
    throw limits_error("the body is not a JSON object of limits ({\"rate\": \"1MiB\", ...})");
  const boost::json::object& changes = doc.get_object();

  // Each direction's limit and whether its key (or the key for both) was in the body.
  struct rate_keys {
    std::string_view both, down, up;
    direction_rates limit_set::*member;
  };
  static constexpr std::array<rate_keys, 3> rates{{
      {"--rate", "--rate-down", "--rate-up", &limit_set::rate},
      {"--per-ip", "--per-ip-down", "--per-ip-up", &limit_set::per_ip},
      {"--total", "--total-down", "--total-up", &limit_set::total},
  }};
  for (const auto& [key, value] : changes) {
    bool known = key == "burst" || key == "per_ip_max_connections";
    for (const auto& r : rates)
      known = known || key == key_of(r.both) || key == key_of(r.down) || key == key_of(r.up);
    if (!known)
      throw limits_error(std::string(key) +
                         ": not a limit (rate, rate_down, rate_up, per_ip, per_ip_down, "
                         "per_ip_up, total, total_down, total_up, per_ip_max_connections, "
                         "burst)");
  }

  limit_set next = current;
  auto find = [&](std::string_view flag) { return changes.if_contains(key_of(flag)); };
  for (const auto& r : rates) {
    direction_rates& d = next.*r.member;
    if (auto* v = find(r.both))
      d.down = d.up = size_value(*v, key_of(r.both));
    if (auto* v = find(r.down))
      d.down = size_value(*v, key_of(r.down));
    if (auto* v = find(r.up))
      d.up = size_value(*v, key_of(r.up));
  }
  if (auto* v = find("--burst"))
    next.burst = size_value(*v, "burst");
  if (auto* v = find("--per-ip-max-connections")) {
    std::int64_t n = v->is_int64() ? v->get_int64() : 0; // a uint64 is above INT64_MAX
    if (v->is_null())
      next.per_ip_max_connections.reset();
    else if (n > 0 && n <= 1000'000'000)
      next.per_ip_max_connections = static_cast<std::uint64_t>(n);
    else
      throw limits_error("per_ip_max_connections: " + boost::json::serialize(*v) +
                         " is not a whole number from 1 to 1000000000, or null");
  }
  try {
    check_limits(next, [&](std::string_view flag) { return find(flag) != nullptr; });
  } catch (const option_error& e) {
    std::string what = e.what();
    throw limits_error(key_of(e.option()) + what.substr(e.option().size()));
  }
  if (total_shared && next.total != current.total) {
    const char* key = next.total.down != current.total.down ? "total_down" : "total_up";
    if (find("--total"))
      key = "total";
    throw limits_conflict(std::string(key) +
                          ": the total is shared with a fleet of proxies (--total-store) and is "
                          "not changed here: restart the proxies with a new --total (the one "
                          "started last sets the fleet's)");
  }
  return next;
}

std::string limits_json(const limit_set& limits) {
  auto number = [](const std::optional<std::uint64_t>& v) -> boost::json::value {
    if (v)
      return *v;
    return nullptr;
  };
  boost::json::object o;
  o["rate_down"] = number(limits.rate.down);
  o["rate_up"] = number(limits.rate.up);
  o["per_ip_down"] = number(limits.per_ip.down);
  o["per_ip_up"] = number(limits.per_ip.up);
  o["total_down"] = number(limits.total.down);
  o["total_up"] = number(limits.total.up);
  o["per_ip_max_connections"] = number(limits.per_ip_max_connections);
  o["burst"] = number(limits.burst);
  o["tick_ns"] = static_cast<std::uint64_t>(limits.tick.count());
  return boost::json::serialize(o);
}

} // namespace sluice::proxy
