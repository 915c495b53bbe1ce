#include "fleet_harness.hpp"

#include <boost/test/unit_test.hpp>

#include <sluice/redis/shared_group.hpp>

#include <boost/asio.hpp>

#include <sluice_test/flat_out.hpp>
#include <sluice_test/redis_server.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <thread>

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace fleet_test {

namespace net = boost::asio;
using namespace std::chrono_literals;
using std::chrono::steady_clock;

namespace {

constexpr const char* child_variable = "SLUICE_FLEET_CHILD";

double now_ms() {
  return std::chrono::duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

std::string encode(const child_spec& s) {
  std::ostringstream out;
  out << s.store << ' ' << s.name << ' ' << s.own_rate << ' ' << s.streams << ' ' << s.seconds
      << ' ' << s.hold_ms << ' ' << s.delay << ' ' << s.own_until;
  return out.str();
}

child_spec decode(const std::string& text) {
  child_spec s;
  std::istringstream in(text);
  in >> s.store >> s.name >> s.own_rate >> s.streams >> s.seconds >> s.hold_ms >> s.delay >>
      s.own_until;
  return s;
}

/// The child: writes flat out (or at its own rate) through a shared_group for the time it
/// is given, printing "<steady ms> <bytes written> <granted rate>" every 100 ms.
int run_child(const child_spec& spec) {
  // A process that joins the fleet later: the scenario's timing, not a wait for a condition.
  std::this_thread::sleep_for(std::chrono::duration<double>(spec.delay));
  net::io_context ctx;
  sluice::redis::shared_group_options o;
  o.store = spec.store;
  o.name = spec.name;
  o.write_rate = R;
  o.hold = std::chrono::milliseconds(spec.hold_ms);
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
  net::steady_timer unlimit(ctx); // the demand change: its own limit goes
  if (spec.own_until > 0) {
    unlimit.expires_after(std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::duration<double>(spec.own_until)));
    unlimit.async_wait([&](boost::system::error_code ec) {
      if (!ec)
        for (auto& w : writers)
          w->set_own_rate(sluice::unlimited);
    });
  }
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

/// In a child, runs it and exits before any test case; in the parent, skips all unless
/// redis-server is installed.
struct child_mode {
  child_mode() {
    if (const char* spec = std::getenv(child_variable)) {
      std::fflush(stdout);
      std::_Exit(run_child(decode(spec)));
    }
    sluice_test::redis_server::require();
  }
};

// Reads what a child has written; false at its end.
bool read_reports(int fd, series& s) {
  char buf[4096];
  ssize_t n = ::read(fd, buf, sizeof buf);
  if (n <= 0)
    return false;
  s.partial.append(buf, static_cast<std::size_t>(n));
  std::size_t nl;
  while ((nl = s.partial.find('\n')) != std::string::npos) {
    double t = 0, bytes = 0, granted = 0;
    if (std::sscanf(s.partial.substr(0, nl).c_str(), "%lf %lf %lf", &t, &bytes, &granted) == 3) {
      s.t.push_back(t);
      s.bytes.push_back(bytes);
      s.granted.push_back(granted);
    }
    s.partial.erase(0, nl + 1);
  }
  return true;
}

pid_t spawn_child(const child_spec& spec, int& fd) {
  int out[2];
  BOOST_REQUIRE(::pipe(out) == 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    env.emplace_back(*e);
  env.push_back(std::string(child_variable) + "=" + encode(spec));
  std::vector<char*> envp;
  for (auto& e : env)
    envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string self = "/proc/self/exe";
  char* argv[] = {self.data(), nullptr};
  pid_t pid = -1;
  const int err = ::posix_spawn(&pid, self.c_str(), &actions, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  BOOST_REQUIRE(err == 0);
  fd = out[0];
  return pid;
}

} // namespace

double series::at(double ms) const {
  auto it = std::lower_bound(t.begin(), t.end(), ms);
  if (it == t.begin())
    return bytes.front();
  if (it == t.end())
    return bytes.back();
  auto i = static_cast<std::size_t>(it - t.begin());
  double f = (ms - t[i - 1]) / (t[i] - t[i - 1]);
  return bytes[i - 1] + f * (bytes[i] - bytes[i - 1]);
}

std::vector<series> run_fleet(const std::vector<child_spec>& specs,
                              const std::function<void(double, const std::vector<int>&)>& during) {
  std::vector<int> pids, fds;
  for (const child_spec& spec : specs) {
    int fd = -1;
    pids.push_back(spawn_child(spec, fd));
    fds.push_back(fd);
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
    for (std::size_t i = 0; i < fds.size(); ++i)
      if (fds[i] >= 0 && (polled[i].revents & (POLLIN | POLLHUP)) &&
          !read_reports(fds[i], reports[i])) {
        ::close(fds[i]);
        fds[i] = -1;
        --open;
      }
    if (during)
      during(now_ms() - start, pids);
  }
  for (std::size_t i = 0; i < pids.size(); ++i) {
    int status = 0;
    if (open > 0)
      ::kill(pids[i], SIGKILL);
    ::waitpid(pids[i], &status, 0);
    const bool killed_by_test = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && open == 0;
    BOOST_TEST((killed_by_test || (WIFEXITED(status) && WEXITSTATUS(status) == 0)),
               "child " << i << " failed: "
                        << (WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                              : "signal " + std::to_string(WTERMSIG(status))));
  }
  for (const series& s : reports)
    BOOST_REQUIRE_MESSAGE(s.t.size() >= 10, "a child reported too little");
  return reports;
}

double origin(const std::vector<series>& reports) {
  double first = 1e300;
  for (const series& s : reports)
    first = std::min(first, s.t.front());
  return first;
}

std::pair<double, double> span(const std::vector<series>& reports, double warmup) {
  double first = 0, last = 1e300;
  for (const series& s : reports) {
    first = std::max(first, s.t.front());
    last = std::min(last, s.t.back());
  }
  return {first + warmup, last - 100};
}

double fleet_rate(const std::vector<series>& reports, double from, double to) {
  double bytes = 0;
  for (const series& s : reports)
    bytes += s.at(to) - s.at(from);
  return bytes / ((to - from) / 1000) / static_cast<double>(R);
}

double worst_second(const std::vector<series>& reports, double from, double to) {
  double worst = 0;
  for (double t = from; t + 1000 <= to; t += 100)
    worst = std::max(worst, fleet_rate(reports, t, t + 1000));
  return worst;
}

std::vector<double> child_rates(const std::vector<series>& reports, double from, double to) {
  std::vector<double> rates;
  for (const series& s : reports)
    rates.push_back((s.at(to) - s.at(from)) / ((to - from) / 1000));
  return rates;
}

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

BOOST_TEST_GLOBAL_FIXTURE(child_mode);

} // namespace fleet_test
