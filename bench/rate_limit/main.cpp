// Rate limiting: sluice::rate_limited_stream against libevent's rate-limited bufferevents, in
// one run, side by side; then two micro-benchmarks of the limiter's own cost over sluice pipes.
//
//   TCP scenarios    libevent's test-ratelim, written anew: loopback TCP, a rate-limited
//                    server, clients that count what each connection receives
//                    (tcp_scenarios.hpp, the run in tcp_run.hpp, the servers in server.hpp,
//                    the clients in client_reader.hpp).
//   pipe throughput  (a) rate_limited_stream<pipe> with limits that never bind, against a
//                    bare pipe (pipe_throughput.hpp).
//   group members    (b) the cost of a write against the number of members of a group
//                    (group_members.hpp).
//
// This file is the command line.
#include "rate_limit/group_members.hpp"
#include "rate_limit/options.hpp"
#include "rate_limit/pipe_throughput.hpp"
#include "rate_limit/tcp_scenarios.hpp"
#include "support/command_line.hpp"
#include "support/system.hpp"

#include <event2/event.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace sluice::bench::ratelim_bench {
namespace {

void print_usage(const char* argv0) {
  std::printf(
      "usage: %s [--quick] [--duration S] [--warmup S] [--tick-ms T] [--burst-ticks K]\n"
      "          [--scenario K]...\n"
      "  --quick          smoke run: a tenth of the connections, 1 s measured, small micro runs\n"
      "  --duration S     seconds measured per TCP scenario and implementation (default 8)\n"
      "  --warmup S       seconds before measuring (default 1.5)\n"
      "  --tick-ms T      tick length for every TCP scenario (default: each its own)\n"
      "  --burst-ticks K  burst = K ticks' worth (default 1; libevent's test-ratelim uses 4)\n"
      "  --scenario K     run only K (repeatable, or comma-separated): 1, 2, 3, 4 (TCP),\n"
      "                   a (pipe throughput), b (group members); default: all\n",
      argv0);
}

bool parse_args(int argc, char** argv, options& opt) {
  std::optional<double> duration, warm;
  command_line args(argc, argv);
  while (args.next()) {
    std::string_view arg = args.option();
    if (arg == "--quick") {
      opt.quick = true;
    } else if (arg == "--duration") {
      duration = args.number(0.1, 3600);
    } else if (arg == "--warmup") {
      warm = args.number(0, 600);
    } else if (arg == "--tick-ms") {
      if (auto t = args.number(1, 60000))
        opt.tick_ms = static_cast<int>(*t);
    } else if (arg == "--burst-ticks") {
      if (auto b = args.number(1, 1000))
        opt.burst_ticks = static_cast<int>(*b);
    } else if (arg == "--scenario") {
      args.list("scenario", opt.only, [](auto& k) {
        return k == "a" || k == "b" || std::ranges::count(scenarios, k, &scenario::key) > 0;
      });
    } else {
      args.help_or_unknown(print_usage);
    }
  }
  if (opt.quick) {
    opt.duration = 1;
    opt.warm_up = 0.3;
  }
  if (duration)
    opt.duration = *duration;
  if (warm)
    opt.warm_up = *warm;
  return args.ok();
}

} // namespace
} // namespace sluice::bench::ratelim_bench

int main(int argc, char** argv) {
  using namespace sluice::bench;
  using namespace sluice::bench::ratelim_bench;
  options opt;
  if (!parse_args(argc, argv, opt))
    return 2;
  raise_file_limit("ratelim_bench", 2 * 1000 + 64); // 1000 connections take 2000 descriptors
  auto wanted = [&](const char* key) { return opt.only.empty() || opt.only.contains(key); };

  std::printf(
      "Rate limiting: sluice::rate_limited_stream<tcp::socket> vs libevent %s bufferevents.\n"
      "Loopback TCP; the server (one thread: one io_context / one event_base) writes to every\n"
      "connection as fast as its write limits allow: rate per tick, burst = %d tick's worth. The\n"
      "clients, in this process on a thread of their own (one epoll loop, same code for both),\n"
      "read and count. Warm-up %.1f s, then %.1f s measured; each end of the span is averaged\n"
      "over one tick. sd is the population sd of the per-connection rates; Jain = (sum x)^2 /\n"
      "(n sum x^2). CPU s: process CPU (getrusage) over the span; server, client: those\n"
      "threads' CPU; writes/s: the server's write system calls. %u CPUs, shared.\n\n",
      event_get_version(), opt.burst_ticks, opt.warm_up, opt.duration,
      std::thread::hardware_concurrency());
  std::fflush(stdout);

  for (const auto& s : scenarios)
    if (wanted(s.key))
      run_scenario(s, opt);
  if (wanted("a"))
    run_pipe_throughput(opt);
  if (wanted("b"))
    run_group_members(opt);
  return 0;
}
