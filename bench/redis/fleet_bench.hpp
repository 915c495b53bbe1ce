// The fleet group's benchmark (fleet_bench): what sluice::redis::shared_group costs.
//
//   [1] throughput   a stream in a shared_group against the same stream in a plain
//                    rate_limit_group at the rate the store granted, binding and not, and the
//                    allocations per operation (throughput.cpp)
//   [2] script       Redis time per renewal (the lease script) at 10, 200 and 1000 members,
//                    from INFO commandstats (store.cpp)
//   [3] calls        store calls per member per second of a fleet, steady and with demands
//                    that swing all the time (early renewals) (store.cpp)
//
// Every wait on the store is bounded: a frozen Redis ends a part with "FAILED", not a hang.
#ifndef SLUICE_BENCH_REDIS_FLEET_BENCH_HPP
#define SLUICE_BENCH_REDIS_FLEET_BENCH_HPP

#include <sluice/redis/client.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace sluice::bench::fleet_bench {

struct options {
  bool quick = false;
  std::set<std::string> only;                       // part keys; empty: all
  std::vector<std::size_t> sizes = {10, 200, 1000}; // [2]: members
  std::size_t fleet = 8;                            // [3]: processes (shared_groups)
  std::chrono::milliseconds lease{200};             // [3]: the fleet's lease
  std::string store;                                // unix:PATH or redis://HOST:PORT
};

void run_throughput(const options& opt);
void run_script_cost(const options& opt);
void run_call_rate(const options& opt);

/// Allocations (operator new, any form) since the program started: allocations.cpp.
std::uint64_t allocations();

/// Runs `commands` on `c` and drives `ctx` until the replies come (the client times every
/// request out, so this is bounded). nullopt, with `error` set, on a failed request.
std::optional<std::vector<redis::reply>> exec(boost::asio::io_context& ctx, redis::client& c,
                                              std::vector<redis::command> commands,
                                              std::string& error);

/// cmdstat_<command>'s calls and µs from the text of INFO commandstats (zeros if absent).
struct command_stats {
  std::uint64_t calls = 0;
  double usec = 0;
};
command_stats parse_command_stats(const std::string& info, const std::string& command);

/// INFO commandstats' entry for `command` (evalsha, eval), or nullopt with `error` set.
std::optional<command_stats> read_command_stats(boost::asio::io_context& ctx, redis::client& c,
                                                const std::string& command, std::string& error);

} // namespace sluice::bench::fleet_bench

#endif
