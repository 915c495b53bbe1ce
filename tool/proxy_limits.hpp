// The limits of the running proxy as JSON: what GET /limits shows and PUT /limits changes.
// No I/O, so that every case is unit-tested (test/tool/proxy_options.cpp).
#ifndef SLUICE_TOOL_PROXY_LIMITS_HPP
#define SLUICE_TOOL_PROXY_LIMITS_HPP

#include "proxy_options.hpp"

#include <stdexcept>
#include <string>
#include <string_view>

namespace sluice::proxy {

/// A PUT /limits body that cannot be applied. `what()` names the key at fault.
class limits_error : public std::invalid_argument {
public:
  using std::invalid_argument::invalid_argument;
};

/// A PUT /limits body that changes a total shared by a fleet (--total-store): valid, but not
/// this proxy's to change.
class limits_conflict : public limits_error {
public:
  using limits_error::limits_error;
};

/// The largest PUT /limits body taken: a body of every key with long values is far less.
inline constexpr std::size_t max_limits_body = 16 * 1024;

/// `current` changed by a PUT /limits body: a JSON object whose keys are the limit flags
/// without their dashes, '-' written '_' (rate, rate_down, rate_up, per_ip, per_ip_down,
/// per_ip_up, total, total_down, total_up, per_ip_max_connections, burst). A value is a
/// number of bytes (per second) or a SIZE string ("256KiB"), or null for no limit. A key
/// for both directions sets both; a direction's own key in the same body wins. Keys not
/// given keep their value. Throws limits_error (nothing is changed) for a body that is not
/// such an object, an unknown key, a bad value, or limits that do not make buckets
/// (check_limits); the message starts with the key at fault. With `total_shared` (--total-store),
/// a body that changes total_down or total_up throws limits_conflict: the fleet's budget is
/// that of the proxy started last (doc/proxy.md), and one proxy changing it would leave the
/// others showing a total no longer in force. A body that sets the total it has is taken.
limit_set update_limits(const limit_set& current, std::string_view body, bool total_shared = false);

/// The limits as a JSON object: every key of update_limits but the ones for both
/// directions, null where there is no limit, and "tick_ns".
std::string limits_json(const limit_set& limits);

} // namespace sluice::proxy

#endif
