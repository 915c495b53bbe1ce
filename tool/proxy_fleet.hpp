// --total-store: the proxy's --total shared with a fleet of proxies through Redis, one
// sluice::redis::shared_group per direction (doc/fleet.md, doc/proxy.md). Compiled with or
// without sluice::redis: without it, making a fleet_total throws (the command line refuses
// the flags before it comes to that).
#ifndef SLUICE_TOOL_PROXY_FLEET_HPP
#define SLUICE_TOOL_PROXY_FLEET_HPP

#include "proxy_options.hpp"

#include <sluice/rate_limit.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::redis {
class shared_group;
}

namespace sluice::proxy {

/// What one direction of a fleet's total says of itself: the shared_group's status.
struct fleet_status {
  std::string mode = "starting"; ///< starting, leased, learning, holding, fallback
  bool connected = false;        ///< to the store, as of the last renewal
  /// Bytes per second this proxy may send in the direction now (its share); none: unlimited
  /// (--total-on-failure open, after the store was lost).
  std::optional<std::uint64_t> share;
  std::uint64_t members = 0; ///< proxies sharing the direction, as the store last said
  std::int64_t epoch = 0;    ///< of the store's state: changes when the store lost it
  std::uint64_t renewals = 0;
  std::uint64_t failures = 0;
  std::string last_error; ///< of the last failed renewal
};

/// One direction of --total with --total-store: a shared_group named GROUP:down or GROUP:up
/// whose *write* rate is the direction's total. Each direction of the proxy is shaped where
/// it is written (down by the client's socket, up by the upstream's), so each is the write
/// direction of a group of its own, and so of a shared group of its own.
class fleet_total {
public:
  /// `version`: of `rate` in the store, where the highest version wins (fleet_version()).
  /// Until the store's first answer the share is the whole `rate`, as if the proxy were
  /// alone (none with --total-on-failure closed). Throws std::invalid_argument for options
  /// the library refuses, std::logic_error in a build without Redis support.
  fleet_total(const boost::asio::any_io_executor& ex, const fleet_spec& spec,
              std::string_view direction, std::uint64_t rate, std::uint64_t version);
  /// Releases the share at once (a last call to the store, if the executor runs on).
  ~fleet_total();
  fleet_total(const fleet_total&) = delete;
  fleet_total& operator=(const fleet_total&) = delete;

  /// The local group that the connections' streams join.
  rate_limit_group& group();
  std::uint64_t rate() const { return rate_; }
  const std::string& direction() const { return direction_; }
  fleet_status status() const;

private:
  std::uint64_t rate_;
  std::string direction_;
  std::unique_ptr<redis::shared_group> shared_;
};

/// The version of a fleet's rate made now: milliseconds since the Unix epoch (greater than
/// the last one this process made), so that the --total of the proxy started last wins in
/// the store, and a fleet restarted with a new --total has it at once.
std::uint64_t fleet_version();

/// The store's name of one direction of the fleet: "GROUP:down", "GROUP:up".
std::string fleet_group_name(const fleet_spec& spec, std::string_view direction);

/// The fleet as a JSON object, for /stats and the stats line: "store", "group", and for
/// "down" and "up" the status of the direction (null when it is not shared).
std::string fleet_json(const fleet_spec& spec, const fleet_total* down, const fleet_total* up);

/// "share 341.3 KiB/s, 3 members, leased" (and the store's error when it is not reached).
std::string fleet_text(const fleet_status& s);

} // namespace sluice::proxy

#endif
