// fleet_bench: what sluice::redis::shared_group costs (fleet_bench.hpp lists the parts). It
// starts a redis-server of its own (unix socket, no persistence), as the tests do, unless
// --store names one. This file is the command line.
#include "redis/fleet_bench.hpp"
#include "support/command_line.hpp"
#include "support/system.hpp"

#include <sluice_test/redis_server.hpp>

#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace sluice::bench::fleet_bench {
namespace {

void print_usage(const char* argv0) {
  std::printf(
      "usage: %s [--quick] [--part K]... [--members N,...] [--fleet N] [--lease-ms L]\n"
      "          [--store ADDRESS]\n"
      "  --quick          smoke run: shorter runs (about 15 s in all)\n"
      "  --part K         run only K (repeatable, or comma-separated): throughput, script,\n"
      "                   calls; default: all\n"
      "  --members N,...  [2]: group sizes (default 10,200,1000)\n"
      "  --fleet N        [3]: processes in the fleet (default 8)\n"
      "  --lease-ms L     [3]: the fleet's lease (default 200)\n"
      "  --store ADDRESS  a Redis to use (unix:PATH or redis://HOST:PORT; its statistics are\n"
      "                   reset) instead of a redis-server of the benchmark's own\n",
      argv0);
}

bool parse_args(int argc, char** argv, options& opt) {
  command_line args(argc, argv);
  while (args.next()) {
    std::string_view arg = args.option();
    if (arg == "--quick") {
      opt.quick = true;
    } else if (arg == "--part") {
      args.list("part", opt.only,
                [](auto& k) { return k == "throughput" || k == "script" || k == "calls"; });
    } else if (arg == "--members") {
      std::set<std::string> sizes;
      args.list("size", sizes, [](auto& k) {
        auto n = parse_size(k);
        return n && *n >= 1 && *n <= 100'000;
      });
      if (!sizes.empty()) {
        opt.sizes.clear();
        for (const std::string& s : sizes)
          opt.sizes.push_back(*parse_size(s));
        std::sort(opt.sizes.begin(), opt.sizes.end());
      }
    } else if (arg == "--fleet") {
      if (auto n = args.number(1, 10'000))
        opt.fleet = static_cast<std::size_t>(*n);
    } else if (arg == "--lease-ms") {
      if (auto l = args.number(10, 60'000))
        opt.lease = std::chrono::milliseconds(static_cast<long>(*l));
    } else if (arg == "--store") {
      if (const char* v = args.value())
        opt.store = v;
    } else {
      args.help_or_unknown(print_usage);
    }
  }
  return args.ok();
}

} // namespace
} // namespace sluice::bench::fleet_bench

int main(int argc, char** argv) {
  using namespace sluice::bench;
  using namespace sluice::bench::fleet_bench;
  options opt;
  if (!parse_args(argc, argv, opt))
    return 2;
  auto wanted = [&](const char* key) { return opt.only.empty() || opt.only.contains(key); };
  raise_file_limit("fleet_bench", 2 * opt.fleet + 64); // [3]: a connection per process

  std::unique_ptr<sluice_test::redis_server> server;
  if (opt.store.empty()) {
    if (sluice_test::redis_server::program().empty()) { // skipped, not failed (run_benchmarks)
      std::printf("fleet_bench: skipped: redis-server is not installed (Debian: the "
                  "redis-server package); or name a Redis with --store\n");
      return 0;
    }
    try {
      server = std::make_unique<sluice_test::redis_server>();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "fleet_bench: %s\n", e.what());
      return 1;
    }
    opt.store = server->address();
  }

  std::printf("The fleet group: sluice::redis::shared_group against a plain rate_limit_group, and\n"
              "what it asks of Redis. Redis: %s%s. %u CPUs, shared; load average %s.\n\n",
              opt.store.c_str(), server ? " (its own redis-server, no persistence)" : "",
              std::thread::hardware_concurrency(), load_average().c_str());
  std::fflush(stdout);
  try {
    if (wanted("throughput"))
      run_throughput(opt);
    if (wanted("script"))
      run_script_cost(opt);
    if (wanted("calls"))
      run_call_rate(opt);
  } catch (const std::exception& e) {
    std::printf("FAILED: %s\n", e.what());
    return 1;
  }
  return 0;
}
