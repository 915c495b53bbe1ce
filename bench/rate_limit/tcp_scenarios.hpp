// The TCP scenarios: the scenario of libevent's test-ratelim, written anew, run with sluice
// and with libevent, one after the other, each on fresh connections.
//
// Loopback TCP: a server writes to each of N connections as fast as its limits allow (per
// connection, and/or a group shared by all); the clients read and count the bytes of each
// connection. After a warm-up, the bytes counted over a duration D give total B/s, the mean
// per connection, its standard deviation and coefficient of variation, and Jain's fairness
// index; getrusage gives the CPU time of the process over the same span, and each
// implementation's CPU delta is taken apart for the server and client threads. Rates and
// bursts are per tick, as ev_token_bucket_cfg_new takes them; burst = rate (one tick's worth)
// unless --burst-ticks says otherwise (libevent's test-ratelim itself uses 4). Only the
// server's writes are limited.
//
// The server is one thread running one io_context (sluice) or one event_base (libevent). The
// clients are in the same process, on a thread of their own: one plain epoll loop, the same
// code for both.
#ifndef SLUICE_BENCH_RATE_LIMIT_TCP_SCENARIOS_HPP
#define SLUICE_BENCH_RATE_LIMIT_TCP_SCENARIOS_HPP

#include "rate_limit/options.hpp"
#include "rate_limit/server.hpp"

#include <cstddef>
#include <vector>

namespace sluice::bench::ratelim_bench {

struct scenario {
  const char* key;
  std::size_t conns;
  std::size_t quick_conns;
  limits lim;
  const char* reported;   // what was reported for libevent's own test-ratelim
  double total_tolerance; // fraction of the expected total; 0: no target
  double cv_max;          // 0: no target
  bool cpu_target;        // sluice's CPU <= libevent's
};

/// The scenarios, keyed "1" to "4".
extern const std::vector<scenario> scenarios;

/// Runs `s` with sluice, then with libevent, and prints its table and targets.
void run_scenario(const scenario& s, const options& opt);

} // namespace sluice::bench::ratelim_bench

#endif
