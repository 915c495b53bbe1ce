// The proxy: its routes, each with a listener and an upstream, the connections they
// accept, and the limits over them all, which can change while it runs.
#ifndef SLUICE_TOOL_PROXY_SERVER_HPP
#define SLUICE_TOOL_PROXY_SERVER_HPP

#include "proxy_clients.hpp"
#include "proxy_fleet.hpp"
#include "proxy_logger.hpp"
#include "proxy_options.hpp"
#include "proxy_relay.hpp"
#include "proxy_routes.hpp"

#include <sluice/rate_limit.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice::proxy {

/// One route: where it listens, where it connects, and what it moved.
struct route {
  route_spec spec;
  std::vector<stream_endpoint> upstream; // every address, tried in turn
  std::unique_ptr<listener> listen;
  traffic counts;
};

class proxy {
public:
  /// How many connections one wake-up of a listener accepts at most: enough to empty a
  /// backlog in a few rounds even when each round waits behind every busy connection's I/O,
  /// few enough that a flood of connections does not hold up those.
  static constexpr int accept_batch = 64;

  /// Listens on every route (throws std::runtime_error when one cannot).
  proxy(boost::asio::io_context& ctx, const proxy_options& opts, logger& log,
        std::vector<std::vector<stream_endpoint>> listen,
        std::vector<std::vector<stream_endpoint>> upstream);

  /// `max_open`: connections open at once over all routes; beyond, new ones wait in the
  /// listen backlogs. Logs a "listening" line per route, ending in `at_most`.
  void start(std::uint64_t max_open, const std::string& at_most);
  /// Stops accepting and resets every connection (a transfer cut short must not look
  /// whole); once their coroutines have unwound, the io_context runs out of work.
  void stop();

  /// The limits now. set_limits() applies new ones, checked already (check_limits), to
  /// every open connection at once.
  const limit_set& limits() const { return limits_; }
  void set_limits(const limit_set& next);

  const std::vector<std::unique_ptr<route>>& routes() const { return routes_; }
  const traffic& all() const { return all_; }
  std::size_t client_addresses() const { return clients_.size(); }
  std::uint64_t max_open() const { return max_open_; }
  clock_type::time_point started() const { return started_; }
  /// --total-store: the fleet and each direction's share of its total (null where the
  /// direction has no --total).
  const std::optional<fleet_spec>& fleet() const { return opts_.fleet; }
  const fleet_total* fleet_down() const { return fleet_down_.get(); }
  const fleet_total* fleet_up() const { return fleet_up_.get(); }

  /// "100.0 KiB/s", or "down 1.0 MiB/s, up unlimited" when the directions differ.
  static std::string limit_text(const direction_rates& r);

private:
  std::function<void(std::exception_ptr)> report_failure(const char* what);
  boost::asio::awaitable<void> accept_loop(route& r);
  boost::asio::awaitable<void> pace_loop();
  boost::asio::awaitable<boost::system::error_code> connect_upstream(connection& c, route& r);
  boost::asio::awaitable<void> serve(std::uint64_t id, stream_socket socket, route& r);
  void return_memory_after_burst();
  void return_memory();
  boost::asio::awaitable<void> stats_loop(std::chrono::nanoseconds interval);
  void log_closed(const connection& c);
  void shape(connection& c);
  rate_limit_group* total_down();
  rate_limit_group* total_up();
  template <class Join>
  void reshape_fleet(std::unique_ptr<fleet_total>& total, const std::optional<std::uint64_t>& rate,
                     const char* direction, Join&& join);
  boost::asio::awaitable<void> fleet_watch();

  boost::asio::io_context& ctx_;
  proxy_options opts_;
  limit_set limits_;
  logger& log_;
  std::vector<std::unique_ptr<route>> routes_;
  boost::asio::steady_timer stats_timer_;
  boost::asio::steady_timer trim_timer_; // returns memory a while after the last close
  bool trim_pending_ = false;
  boost::asio::steady_timer slot_free_; // accept loops wait on it while max_open_ are open
  std::optional<rate_limit_group> total_down_, total_up_; // --total
  std::unique_ptr<fleet_total> fleet_down_, fleet_up_;    // --total with --total-store
  boost::asio::steady_timer fleet_timer_;                 // fleet_watch()'s
  client_table clients_;                                  // --per-ip
  std::map<std::uint64_t, connection*> connections_;      // open ones, by id
  relay_settings relay_;
  traffic all_;            // all routes; closed connections too
  bool pacing_ = false;    // pace_loop() runs
  std::uint64_t open_ = 0; // accepted and not yet ended (some not in the table yet)
  std::uint64_t max_open_ = 0;
  std::uint64_t open_peak_ = 0; // the most open since memory was last returned
  std::uint64_t last_id_ = 0;
  std::uint64_t accept_failures_ = 0;
  clock_type::time_point last_accept_report_{};
  clock_type::time_point started_ = clock_type::now();
  bool stopping_ = false;
};

} // namespace sluice::proxy

#endif
