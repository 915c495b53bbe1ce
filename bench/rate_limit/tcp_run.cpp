#include "rate_limit/tcp_run.hpp"
#include "rate_limit/client_reader.hpp"
#include "support/measure.hpp"
#include "support/report.hpp"
#include "support/system.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <thread>

namespace sluice::bench::ratelim_bench {
namespace {

double seconds_since(bench_clock::time_point t) {
  return std::chrono::duration<double>(bench_clock::now() - t).count();
}

/// The average of `samples` counts of every connection, spread evenly over `span`.
struct window {
  std::vector<double> counts;
  double time = 0; // seconds since `origin`, averaged likewise
};

window sample_window(const client_reader& reader, bench_clock::time_point origin,
                     bench_clock::duration span, int samples) {
  window w;
  w.counts.assign(reader.size(), 0.0);
  auto start = bench_clock::now();
  for (int k = 0; k < samples; ++k) {
    std::this_thread::sleep_until(start + span * k / samples);
    w.time += std::chrono::duration<double>(bench_clock::now() - origin).count();
    for (std::size_t i = 0; i < reader.size(); ++i)
      w.counts[i] += static_cast<double>(reader.received(i));
  }
  w.time /= samples;
  for (double& c : w.counts)
    c /= samples;
  return w;
}

} // namespace

void run_result::summarize() {
  std::size_t n = rates.size();
  if (n == 0)
    return;
  double sum = 0, sum_sq = 0;
  min = max = rates[0];
  for (double r : rates) {
    sum += r;
    sum_sq += r * r;
    min = std::min(min, r);
    max = std::max(max, r);
  }
  total = sum;
  mean = sum / static_cast<double>(n);
  double var = 0;
  for (double r : rates)
    var += (r - mean) * (r - mean);
  sd = std::sqrt(var / static_cast<double>(n)); // population, as test-ratelim
  cv = mean > 0 ? sd / mean : 0;
  jain = sum_sq > 0 ? sum * sum / (static_cast<double>(n) * sum_sq) : 0;
}

run_result run_tcp(impl which, std::size_t n, const limits& lim, const options& opt) {
  run_result res;
  std::vector<connection_fds> conns = connect_loopback(n);
  std::unique_ptr<rate_limited_server> server;
  try {
    if (which == impl::sluice)
      server = make_sluice_server(conns, lim);
    else
      server = make_libevent_server(conns, lim);
  } catch (...) {
    close_all(conns);
    throw;
  }
  for (auto& c : conns)
    c.server = -1; // the server owns them now
  std::optional<client_reader> started;
  try {
    started.emplace(conns);
  } catch (...) {
    close_all(conns);
    throw;
  }
  client_reader& reader = *started;
  server->start();

  auto origin = bench_clock::now();
  std::this_thread::sleep_until(origin + std::chrono::duration<double>(opt.warm_up));
  // Each end of the span averages over one tick (at least 10 ms): see tcp_run.hpp.
  auto span = std::chrono::duration_cast<bench_clock::duration>(
      std::chrono::milliseconds(std::max(lim.tick_ms, 10)));
  constexpr int samples = 20;

  auto cpu_at = [&] {
    return std::array<double, 3>{process_cpu_seconds(), thread_cpu_seconds(server->native_thread()),
                                 thread_cpu_seconds(reader.native_thread())};
  };
  auto t0 = bench_clock::now();
  auto cpu0 = cpu_at();
  std::uint64_t writes0 = server->writes();
  window a = sample_window(reader, origin, span, samples);
  std::this_thread::sleep_until(t0 + std::chrono::duration_cast<bench_clock::duration>(
                                         std::chrono::duration<double>(opt.duration)));
  window b = sample_window(reader, origin, span, samples);
  auto cpu1 = cpu_at();
  std::uint64_t writes1 = server->writes();
  double cpu_span = seconds_since(t0);

  server->stop();
  int closed = reader.closed();
  reader.stop();
  res.failure = server->failure();
  if (res.failure.empty() && closed > 0)
    res.failure = format("%d client connections ended early", closed);
  server.reset();
  for (auto& c : conns)
    if (c.client >= 0)
      ::close(c.client);

  res.seconds = b.time - a.time;
  for (std::size_t i = 0; i < n; ++i)
    res.rates.push_back((b.counts[i] - a.counts[i]) / res.seconds);
  res.summarize();
  double scale = opt.duration / cpu_span; // CPU seconds per nominal duration
  res.cpu = (cpu1[0] - cpu0[0]) * scale;
  res.cpu_server = (cpu1[1] - cpu0[1]) * scale;
  res.cpu_client = (cpu1[2] - cpu0[2]) * scale;
  res.writes_per_s = static_cast<double>(writes1 - writes0) / cpu_span;
  return res;
}

} // namespace sluice::bench::ratelim_bench
