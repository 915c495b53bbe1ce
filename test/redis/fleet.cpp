// A fleet on one machine: this executable re-runs itself as N child processes, each with a
// shared_group and flat-out writers over drained pipes, reporting its bytes every 100 ms on
// its stdout; the parent checks what the fleet moved together. Redis is the test's own, and
// the fault test freezes it (SIGSTOP) for 3 s.
#include <boost/test/unit_test.hpp>

#include <sluice/redis/shared_group.hpp>

#include <boost/asio.hpp>

#include <sluice_test/flat_out.hpp>
#include <sluice_test/redis_server.hpp>
#include <sluice_test/support.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace net = boost::asio;
using namespace std::chrono_literals;
using std::chrono::steady_clock;

namespace {

constexpr std::uint64_t R = 20'000'000; // the fleet's write budget, bytes per second
constexpr const char* child_variable = "SLUICE_FLEET_CHILD";

double now_ms() {
  return std::chrono::duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

/// What a child is told: "store name own_rate streams seconds" (own_rate 0: flat out).
struct child_spec {
  std::string store, name;
  std::uint64_t own_rate = 0;
  int streams = 1;
  double seconds = 5;

  std::string encode() const {
    std::ostringstream out;
    out << store << ' ' << name << ' ' << own_rate << ' ' << streams << ' ' << seconds;
    return out.str();
  }
  static child_spec decode(const std::string& text) {
    child_spec s;
    std::istringstream in(text);
    in >> s.store >> s.name >> s.own_rate >> s.streams >> s.seconds;
    return s;
  }
};

/// The child: writes flat out (or at its own rate) through a shared_group for the time it
/// is given, printing "<steady ms> <bytes written> <granted rate>" every 100 ms.
int run_child(const child_spec& spec) {
  net::io_context ctx;
  sluice::redis::shared_group_options o;
  o.store = spec.store;
  o.name = spec.name;
  o.write_rate = R;
  auto fleet_holder = std::make_unique<sluice::redis::shared_group>(ctx, o);
  sluice::redis::shared_group& fleet = *fleet_holder;
  std::vector<std::unique_ptr<sluice_test::flat_out_writer>> writers;
  for (int i = 0; i < spec.streams; ++i)
    writers.push_back(std::make_unique<sluice_test::flat_out_writer>(
        ctx, fleet.group(),
        spec.own_rate == 0 ? sluice::unlimited
                           : spec.own_rate / static_cast<std::uint64_t>(spec.streams)));
  for (auto& w : writers)
    w->start();
  net::steady_timer report(ctx);
  const auto end = steady_clock::now() + std::chrono::duration<double>(spec.seconds);
  std::function<void()> tick = [&] {
    std::uint64_t total = 0;
    for (auto& w : writers)
      total += w->written();
    std::printf("%.3f %llu %llu\n", now_ms(), static_cast<unsigned long long>(total),
                static_cast<unsigned long long>(fleet.status().write_rate));
    std::fflush(stdout);
    if (steady_clock::now() >= end)
      return ctx.stop();
    report.expires_after(100ms);
    report.async_wait([&](boost::system::error_code ec) {
      if (!ec)
        tick();
    });
  };
  tick();
  ctx.run();
  writers.clear();
  fleet_holder.reset(); // sends the release, which the io_context then runs
  ctx.restart();
  ctx.run_for(200ms);
  return 0;
}

struct child_mode {
  child_mode() {
    if (const char* spec = std::getenv(child_variable)) {
      std::fflush(stdout);
      std::_Exit(run_child(child_spec::decode(spec)));
    }
    sluice_test::redis_server::require();
  }
};

/// One child's reports: its cumulative bytes at given steady times (ms).
struct series {
  std::vector<double> t;
  std::vector<double> bytes;
  std::vector<double> granted; // the rate applied at each report
  std::string partial;         // a line not yet complete

  /// Bytes written by `at`, interpolated between reports.
  double at(double ms) const {
    auto it = std::lower_bound(t.begin(), t.end(), ms);
    if (it == t.begin())
      return bytes.front();
    if (it == t.end())
      return bytes.back();
    auto i = static_cast<std::size_t>(it - t.begin());
    double f = (ms - t[i - 1]) / (t[i] - t[i - 1]);
    return bytes[i - 1] + f * (bytes[i] - bytes[i - 1]);
  }
};

/// Children running, and what they reported.
class fleet_run {
public:
  /// Starts one child per spec. `during` is called about every 50 ms with the ms since the
  /// start, until every child has exited.
  std::vector<series> run(const std::vector<child_spec>& specs,
                          const std::function<void(double)>& during = {}) {
    std::vector<pid_t> pids;
    std::vector<int> fds;
    for (const child_spec& spec : specs) {
      int out[2];
      BOOST_REQUIRE(::pipe(out) == 0);
      posix_spawn_file_actions_t actions;
      posix_spawn_file_actions_init(&actions);
      posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
      posix_spawn_file_actions_addclose(&actions, out[0]);
      std::vector<std::string> env;
      for (char** e = environ; *e; ++e)
        env.emplace_back(*e);
      env.push_back(std::string(child_variable) + "=" + spec.encode());
      std::vector<char*> envp;
      for (auto& e : env)
        envp.push_back(e.data());
      envp.push_back(nullptr);
      std::string self = "/proc/self/exe";
      char* argv[] = {self.data(), nullptr};
      pid_t pid = -1;
      BOOST_REQUIRE(::posix_spawn(&pid, self.c_str(), &actions, nullptr, argv, envp.data()) == 0);
      posix_spawn_file_actions_destroy(&actions);
      ::close(out[1]);
      pids.push_back(pid);
      fds.push_back(out[0]);
    }
    std::vector<series> reports(specs.size());
    const double start = now_ms();
    std::size_t open = fds.size();
    const double limit = start + 1000 * (specs.front().seconds + 30);
    while (open > 0 && now_ms() < limit) {
      std::vector<pollfd> polled;
      for (int fd : fds)
        polled.push_back({fd, POLLIN, 0});
      ::poll(polled.data(), polled.size(), 50);
      for (std::size_t i = 0; i < fds.size(); ++i) {
        if (fds[i] < 0 || !(polled[i].revents & (POLLIN | POLLHUP)))
          continue;
        char buf[4096];
        ssize_t n = ::read(fds[i], buf, sizeof buf);
        if (n <= 0) {
          ::close(fds[i]);
          fds[i] = -1;
          --open;
          continue;
        }
        series& s = reports[i];
        s.partial.append(buf, static_cast<std::size_t>(n));
        std::size_t nl;
        while ((nl = s.partial.find('\n')) != std::string::npos) {
          double t = 0, bytes = 0, granted = 0;
          if (std::sscanf(s.partial.substr(0, nl).c_str(), "%lf %lf %lf", &t, &bytes, &granted) ==
              3) {
            s.t.push_back(t);
            s.bytes.push_back(bytes);
            s.granted.push_back(granted);
          }
          s.partial.erase(0, nl + 1);
        }
      }
      if (during)
        during(now_ms() - start);
    }
    for (pid_t pid : pids) {
      int status = 0;
      if (open > 0)
        ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0),
                 "child " << pid << " failed: "
                          << (WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                                : "signal " + std::to_string(WTERMSIG(status))));
    }
    for (const series& s : reports)
      BOOST_REQUIRE_MESSAGE(s.t.size() >= 10, "a child reported too little");
    return reports;
  }
};

/// The common span of the reports, less `warmup` ms at the start and 100 ms at the end.
std::pair<double, double> span(const std::vector<series>& reports, double warmup) {
  double first = 0, last = 1e300;
  for (const series& s : reports) {
    first = std::max(first, s.t.front());
    last = std::min(last, s.t.back());
  }
  return {first + warmup, last - 100};
}

/// The fleet's bytes per second between `from` and `to` (ms), as a fraction of R.
double fleet_rate(const std::vector<series>& reports, double from, double to) {
  double bytes = 0;
  for (const series& s : reports)
    bytes += s.at(to) - s.at(from);
  return bytes / ((to - from) / 1000) / static_cast<double>(R);
}

/// The busiest second between `from` and `to`, as a fraction of R.
double worst_second(const std::vector<series>& reports, double from, double to) {
  double worst = 0;
  for (double t = from; t + 1000 <= to; t += 100)
    worst = std::max(worst, fleet_rate(reports, t, t + 1000));
  return worst;
}

std::vector<double> per_child_rates(const std::vector<series>& reports, double from, double to) {
  std::vector<double> rates;
  for (const series& s : reports)
    rates.push_back((s.at(to) - s.at(from)) / ((to - from) / 1000));
  return rates;
}

/// The mean of the rates a child applied between `from` and `to`, for the messages.
double mean_granted(const series& s, double from, double to) {
  double sum = 0;
  int n = 0;
  for (std::size_t i = 0; i < s.t.size(); ++i)
    if (s.t[i] >= from && s.t[i] <= to) {
      sum += s.granted[i];
      ++n;
    }
  return n ? sum / n : 0;
}

std::string group_name() {
  return "fleet-" + std::to_string(::getpid()) + "-" +
         std::to_string(boost::unit_test::framework::current_test_case().p_id);
}

} // namespace

BOOST_TEST_GLOBAL_FIXTURE(child_mode);

BOOST_AUTO_TEST_SUITE(fleet)

BOOST_AUTO_TEST_CASE(four_saturating_processes_share_the_budget_evenly) {
  sluice_test::redis_server server;
  std::vector<child_spec> specs(4, child_spec{server.address(), group_name(), 0, 1, 5});
  auto reports = fleet_run().run(specs);
  auto [from, to] = span(reports, 1000);
  BOOST_REQUIRE(to - from >= 3000);
  const double aggregate = fleet_rate(reports, from, to);
  const double worst = worst_second(reports, from, to);
  auto rates = per_child_rates(reports, from, to);
  double mean = 0, var = 0;
  for (double r : rates)
    mean += r / static_cast<double>(rates.size());
  for (double r : rates)
    var += (r - mean) * (r - mean) / static_cast<double>(rates.size());
  const double cv = std::sqrt(var) / mean;
  BOOST_TEST_MESSAGE("4 saturating: aggregate " << aggregate * 100 << " % of the budget, worst 1 s "
                                                << worst * 100 << " %, cv " << cv * 100 << " %");
  BOOST_TEST(std::abs(aggregate - 1) <= 0.03, aggregate);
  BOOST_TEST(worst <= 1.10, worst);
  BOOST_TEST(cv <= 0.02, cv);
}

BOOST_AUTO_TEST_CASE(mixed_demands_get_max_min_shares) {
  sluice_test::redis_server server;
  const std::string name = group_name();
  std::vector<child_spec> specs{{server.address(), name, 2'000'000, 1, 5},
                                {server.address(), name, 4'000'000, 1, 5},
                                {server.address(), name, 0, 1, 5},
                                {server.address(), name, 0, 1, 5}};
  auto reports = fleet_run().run(specs);
  auto [from, to] = span(reports, 1500);
  BOOST_REQUIRE(to - from >= 2500);
  auto rates = per_child_rates(reports, from, to);
  BOOST_TEST_MESSAGE("2, 4, inf, inf of 20 MB/s: "
                     << rates[0] / 1e6 << ", " << rates[1] / 1e6 << ", " << rates[2] / 1e6 << ", "
                     << rates[3] / 1e6 << " MB/s; aggregate " << fleet_rate(reports, from, to) * 100
                     << " %; granted " << mean_granted(reports[0], from, to) / 1e6 << ", "
                     << mean_granted(reports[1], from, to) / 1e6 << ", "
                     << mean_granted(reports[2], from, to) / 1e6 << ", "
                     << mean_granted(reports[3], from, to) / 1e6);
  BOOST_TEST(std::abs(rates[0] / 2e6 - 1) <= 0.05, rates[0]);
  BOOST_TEST(std::abs(rates[1] / 4e6 - 1) <= 0.05, rates[1]);
  const double big = (rates[2] + rates[3]) / 2;
  BOOST_TEST(std::abs(rates[2] - rates[3]) <= 0.05 * big, rates[2] << " vs " << rates[3]);
  BOOST_TEST(fleet_rate(reports, from, to) <= 1.03);
  BOOST_TEST(big >= 0.9 * 7e6, big); // the rest of the budget, less what headroom holds back
}

BOOST_AUTO_TEST_CASE(a_store_frozen_for_3_s_stalls_nobody_and_the_budget_holds) {
  sluice_test::redis_server server;
  std::vector<child_spec> specs(4, child_spec{server.address(), group_name(), 0, 1, 7.5});
  double frozen_at = -1, thawed_at = -1; // ms since the start
  const double freeze_after = 2000;
  auto reports = fleet_run().run(specs, [&](double ms) {
    if (frozen_at < 0 && ms >= freeze_after) {
      server.freeze();
      frozen_at = ms;
    } else if (frozen_at >= 0 && thawed_at < 0 && ms >= frozen_at + 3000) {
      server.thaw();
      thawed_at = ms;
    }
  });
  BOOST_REQUIRE(thawed_at > 0);
  // Back to absolute steady times, as the children report them.
  double origin = 1e300;
  for (const series& s : reports)
    origin = std::min(origin, s.t.front());
  // The children's first reports come a few ms after the parent's start: the fault's times
  // in the children's clock are within that of these.
  const double freeze = origin + frozen_at, thaw = origin + thawed_at;
  auto [from, to] = span(reports, 1000);
  BOOST_REQUIRE(to >= thaw + 2000);
  double slowest = 1e300;
  for (double t = freeze; t + 500 <= thaw; t += 500)
    for (double r : per_child_rates(reports, t, t + 500))
      slowest = std::min(slowest, r);
  const double during = fleet_rate(reports, freeze, thaw + 2000);
  const double after = fleet_rate(reports, thaw + 1000, to);
  const double worst = worst_second(reports, from, to);
  BOOST_TEST_MESSAGE("Redis frozen 3 s: slowest process in any 0.5 s of the fault "
                     << slowest / 1e6 << " MB/s; fault + 2 s " << during * 100
                     << " %; from 1 s after " << after * 100 << " %; worst 1 s " << worst * 100
                     << " %");
  BOOST_TEST(slowest >= 0.5 * static_cast<double>(R) / 4, slowest); // nobody stalls
  BOOST_TEST(during <= 1.05, during);
  BOOST_TEST(std::abs(after - 1) <= 0.05, after);
  BOOST_TEST(worst <= 1.10, worst);
  (void)from;
}

BOOST_AUTO_TEST_SUITE_END()
