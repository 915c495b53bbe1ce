#include "proxy_fleet.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#ifdef SLUICE_PROXY_HAVE_REDIS
#include <sluice/redis/shared_group.hpp>
#else
namespace sluice::redis {
class shared_group {}; // never made: for fleet_total's unique_ptr only
} // namespace sluice::redis
#endif

namespace sluice::proxy {

#ifdef SLUICE_PROXY_HAVE_REDIS

namespace {

redis::failure_policy policy_of(store_failure f) {
  switch (f) {
  case store_failure::hold:
    return redis::failure_policy::hold;
  case store_failure::closed:
    return redis::failure_policy::closed;
  case store_failure::open:
    return redis::failure_policy::open;
  case store_failure::hold_then_safe:
    break;
  }
  return redis::failure_policy::hold_then_safe;
}

const char* mode_name(redis::shared_group::mode m) {
  switch (m) {
  case redis::shared_group::mode::starting:
    return "starting";
  case redis::shared_group::mode::leased:
    return "leased";
  case redis::shared_group::mode::learning:
    return "learning";
  case redis::shared_group::mode::holding:
    return "holding";
  case redis::shared_group::mode::fallback:
    return "fallback";
  }
  return "?";
}

} // namespace

fleet_total::fleet_total(const boost::asio::any_io_executor& ex, const fleet_spec& spec,
                         std::string_view direction, std::uint64_t rate, std::uint64_t version)
    : rate_(rate), direction_(direction) {
  redis::shared_group_options o;
  o.store = spec.store;
  o.name = fleet_group_name(spec, direction);
  o.write_rate = rate; // the proxy shapes each direction where it is written
  o.config_version = version;
  o.lease = spec.lease;
  // The library's 1 s and 5 s for the default lease of 200 ms; longer for long leases.
  o.ttl = std::max(std::chrono::milliseconds(1000), 5 * spec.lease);
  o.hold = std::max(std::chrono::milliseconds(5000), 2 * spec.lease);
  o.on_failure = policy_of(spec.on_failure);
  // A proxy that cannot reach its store at start serves as if alone (doc/proxy.md): 0, the
  // library's default, would hold every connection to a trickle until the store answers.
  o.startup_write_rate = spec.on_failure == store_failure::closed ? 0 : rate;
  shared_ = std::make_unique<redis::shared_group>(ex, o);
}

fleet_total::~fleet_total() = default;

rate_limit_group& fleet_total::group() {
  return shared_->group();
}

fleet_status fleet_total::status() const {
  auto s = shared_->status();
  fleet_status out;
  out.mode = mode_name(s.state);
  out.connected = s.connected;
  if (s.write_rate != unlimited)
    out.share = s.write_rate;
  out.members = s.members;
  out.epoch = s.epoch;
  out.renewals = s.renewals;
  out.failures = s.failures;
  out.last_error = s.last_error;
  return out;
}

#else

fleet_total::fleet_total(const boost::asio::any_io_executor&, const fleet_spec&,
                         std::string_view direction, std::uint64_t rate, std::uint64_t)
    : rate_(rate), direction_(direction) {
  throw std::logic_error("sluice-proxy was built without Redis support");
}

fleet_total::~fleet_total() = default;

rate_limit_group& fleet_total::group() {
  throw std::logic_error("sluice-proxy was built without Redis support");
}

fleet_status fleet_total::status() const {
  return {};
}

#endif

std::uint64_t fleet_version() {
  static std::uint64_t last = 0;
  auto now = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
  last = std::max(now, last + 1);
  return last;
}

std::string fleet_group_name(const fleet_spec& spec, std::string_view direction) {
  return spec.group + ":" + std::string(direction);
}

std::string fleet_json(const fleet_spec& spec, const fleet_total* down, const fleet_total* up) {
  auto one = [](const fleet_total* t) -> boost::json::value {
    if (!t)
      return nullptr;
    fleet_status s = t->status();
    boost::json::object o;
    o["total"] = t->rate();
    o["share"] = s.share ? boost::json::value(*s.share) : boost::json::value(nullptr);
    o["members"] = s.members;
    o["mode"] = s.mode;
    o["connected"] = s.connected;
    o["epoch"] = s.epoch;
    o["renewals"] = s.renewals;
    o["failures"] = s.failures;
    o["last_error"] = s.last_error;
    return o;
  };
  boost::json::object o;
  o["store"] = spec.store;
  o["group"] = spec.group;
  o["down"] = one(down);
  o["up"] = one(up);
  return boost::json::serialize(o);
}

std::string fleet_text(const fleet_status& s) {
  std::string text =
      "share " +
      (s.share ? format_bytes(static_cast<double>(*s.share)) + "/s" : std::string("unlimited")) +
      ", " + std::to_string(s.members) + " member" + (s.members == 1 ? "" : "s") + ", " + s.mode;
  if (!s.connected && !s.last_error.empty())
    text += ", store unreachable: " + s.last_error;
  return text;
}

} // namespace sluice::proxy
