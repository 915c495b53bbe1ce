#include "rate_limit/tcp_scenarios.hpp"
#include "rate_limit/tcp_run.hpp"
#include "support/report.hpp"
#include "support/system.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <exception>
#include <string>

namespace sluice::bench::ratelim_bench {

const std::vector<scenario> scenarios = {
    {"1", 30, 10, {1000, 0, 100}, "total 30000, sd 0", 0.01, 0.02, false},
    {"2", 30, 10, {0, 30000, 100}, "total 30004, sd 23", 0.01, 0.03, false},
    {"3", 500, 50, {0, 5'000'000, 10}, "total 4,995,573, sd 10,782 (cv 108 %)", 0.01, 0.05, false},
    {"4", 1000, 100, {0, 10'000'000, 100}, "total 9,988,075, cv 111 %", 0, 0.05, true},
};

namespace {

std::string describe(std::size_t n, const limits& lim) {
  std::string d = format("%zu conns", n);
  if (lim.conn_rate)
    d += format(", %llu B/s each", static_cast<unsigned long long>(lim.conn_rate));
  if (lim.group_rate)
    d += format(", group %llu B/s", static_cast<unsigned long long>(lim.group_rate));
  d += format(", %d ms ticks", lim.tick_ms);
  if (lim.burst_ticks != 1)
    d += format(", burst %d ticks' worth", lim.burst_ticks);
  return d;
}

double expected_total(std::size_t n, const limits& lim) {
  double own = lim.conn_rate ? static_cast<double>(lim.conn_rate) * static_cast<double>(n) : 0;
  double group = static_cast<double>(lim.group_rate);
  if (own > 0 && group > 0)
    return std::min(own, group);
  return own > 0 ? own : group;
}

} // namespace

void run_scenario(const scenario& s, const options& opt) {
  limits lim = s.lim;
  if (opt.tick_ms > 0)
    lim.tick_ms = opt.tick_ms;
  lim.burst_ticks = opt.burst_ticks;
  std::size_t n = opt.quick ? s.quick_conns : s.conns;
  double expected = expected_total(n, lim);
  std::printf("[%s] %s: expected total %.0f B/s, %.1f B/s per connection\n", s.key,
              describe(n, lim).c_str(), expected, expected / static_cast<double>(n));
  if (!opt.quick && opt.tick_ms <= 0 && opt.burst_ticks == 1)
    std::printf("    reported for libevent's own test-ratelim: %s\n", s.reported);
  std::fflush(stdout);

  std::array<run_result, 2> results;
  std::array<const char*, 2> names = {"sluice", "libevent"};
  for (int k = 0; k < 2; ++k) {
    std::fprintf(stderr, "ratelim_bench: scenario %s, %s...\n", s.key, names[k]);
    try {
      results[k] = run_tcp(k == 0 ? impl::sluice : impl::libevent, n, lim, opt);
    } catch (const std::exception& e) {
      results[k].failure = std::string("set-up: ") + e.what();
    }
  }

  table t({10, 11, 9, 10, 9, 7, 8, 9, 9, 7, 7, 7, 9, 8});
  t.row({"    impl", "total B/s", "vs exp", "avg B/s", "sd B/s", "cv %", "Jain", "min B/s",
         "max B/s", "CPU s", "server", "client", "writes/s", "B/write"});
  for (int k = 0; k < 2; ++k) {
    const run_result& r = results[k];
    if (r.rates.empty()) {
      std::printf("    %-8s FAILED: %s\n", names[k], r.failure.c_str());
      continue;
    }
    t.row({std::string("    ") + names[k], format("%.0f", r.total),
           format("%+.2f%%", (r.total / expected - 1) * 100), format("%.1f", r.mean),
           format("%.1f", r.sd), format("%.2f", r.cv * 100), format("%.4f", r.jain),
           format("%.0f", r.min), format("%.0f", r.max), format("%.3f", r.cpu),
           format("%.3f", r.cpu_server), format("%.3f", r.cpu_client),
           format("%.0f", r.writes_per_s),
           r.writes_per_s > 0 ? format("%.0f", r.total / r.writes_per_s) : std::string("-")});
    if (!r.failure.empty())
      std::printf("    %-8s WARNING: %s\n", names[k], r.failure.c_str());
  }
  const run_result& sl = results[0];
  const run_result& le = results[1];
  bool ok = !sl.rates.empty() && sl.total > 0;
  std::printf("  targets (sluice; measured over %.2f s; load average now %s):\n", sl.seconds,
              load_average().c_str());
  if (s.total_tolerance > 0) {
    double off = ok ? sl.total / expected - 1 : 0;
    print_verdict(format("total within %.0f %% of %.0f B/s", s.total_tolerance * 100, expected),
                  format("%+.2f%%", off * 100), ok, std::fabs(off) <= s.total_tolerance);
  }
  if (s.cv_max > 0)
    print_verdict(format("sd <= %.0f %% of the mean (cv)", s.cv_max * 100),
                  format("%.2f%%", sl.cv * 100), ok, sl.cv <= s.cv_max);
  if (s.cpu_target) {
    bool both = ok && !le.rates.empty() && le.cpu > 0;
    print_verdict("CPU <= libevent's (process, same span)",
                  both ? format("%.3f / %.3f s", sl.cpu, le.cpu) : std::string("-"), both,
                  sl.cpu <= le.cpu);
  }
  std::printf("\n");
  std::fflush(stdout);
}

} // namespace sluice::bench::ratelim_bench
