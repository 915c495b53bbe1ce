// --per-ip: the connections of each client address, sharing a rate_limit_group per
// direction, made at the address's first connection and dropped with its last.
#ifndef SLUICE_TOOL_PROXY_CLIENTS_HPP
#define SLUICE_TOOL_PROXY_CLIENTS_HPP

#include "proxy_options.hpp"
#include "proxy_relay.hpp"

#include <sluice/rate_limit.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice::proxy {

/// The bucket of one direction of a limit: write-only (proxy_options.hpp), or none.
std::optional<token_bucket_config> write_bucket(const std::optional<std::uint64_t>& rate,
                                                const limit_set& limits);

/// Makes `group` what `cfg` says: made (then `join` is called with it, for its members),
/// changed, or dropped (its members carry on without it).
template <class Join>
void reshape(std::optional<rate_limit_group>& group, const std::optional<token_bucket_config>& cfg,
             const boost::asio::any_io_executor& ex, Join&& join) {
  if (cfg && group) {
    group->set_config(*cfg);
  } else if (cfg) {
    group.emplace(ex, *cfg);
    join(*group);
  } else {
    group.reset();
  }
}

/// One client address and its open connections.
struct client_entry {
  std::string address;
  std::vector<connection*> connections;
  std::optional<rate_limit_group> down, up; // --per-ip-down, --per-ip-up
};

class client_table {
public:
  explicit client_table(const boost::asio::any_io_executor& ex) : executor_(ex) {}

  /// Counts `c` in its address's entry and puts its streams in the address's groups; false
  /// (and nothing done) when the address has --per-ip-max-connections open already.
  bool admit(connection& c, const limit_set& limits);
  /// Takes `c` out; the entry goes with its last connection.
  void release(connection& c);
  /// Applies changed --per-ip limits to every address and its open connections.
  void apply(const limit_set& limits);
  /// Connections open from `address`.
  std::size_t open_from(const std::string& address) const;
  std::size_t size() const { return entries_.size(); }

private:
  void shape(client_entry& e, const limit_set& limits);

  boost::asio::any_io_executor executor_;
  std::map<std::string, client_entry> entries_;
};

} // namespace sluice::proxy

#endif
