#include "rate_limit/group_members.hpp"
#include "rate_limit/limited_pipe.hpp"
#include "support/measure.hpp"
#include "support/report.hpp"
#include "support/system.hpp"

#include <sluice/pipe.hpp>
#include <sluice/rate_limit.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace sluice::bench::ratelim_bench {
namespace {

namespace net = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;

enum class membership { none, loose_group, binding_group };

struct member_result {
  double cpu_ns = 0, wall_ns = 0, ops_per_s = 0, bytes_per_s = 0;
  std::string failure;
};

constexpr std::size_t small_write = 64;
constexpr std::uint64_t binding_rate_per_tick = 64'000; // 6.4 MB/s with 10 ms ticks

/// M pipes, each writing end a rate_limited_stream<pipe> (in the group or not) with one
/// 64-byte write always pending, each reading end a bare pipe with one read always pending.
member_result run_members(std::size_t m, membership how, double warm_s, double measure_s) {
  struct member {
    limited_pipe w;
    sluice::pipe r;
    std::array<std::byte, small_write> buf{};
    member(sluice::pipe&& a, sluice::pipe&& b) : w(std::move(a)), r(std::move(b)) {}
  };
  static const std::array<std::byte, small_write> out{};

  member_result res;
  net::io_context ctx{1};
  std::unique_ptr<sluice::rate_limit_group> group;
  if (how == membership::loose_group) {
    group = std::make_unique<sluice::rate_limit_group>(ctx.get_executor(), loose_limits());
  } else if (how == membership::binding_group) {
    sluice::token_bucket_config cfg;
    cfg.write_rate = cfg.write_burst = binding_rate_per_tick;
    cfg.tick = 10ms;
    group = std::make_unique<sluice::rate_limit_group>(ctx.get_executor(), cfg);
  }
  std::vector<std::unique_ptr<member>> members;
  members.reserve(m);
  for (std::size_t i = 0; i < m; ++i) {
    auto ends = sluice::make_pipe(ctx, sluice::pipe_options{256});
    members.push_back(std::make_unique<member>(std::move(ends.first), std::move(ends.second)));
    if (group)
      members.back()->w.join(*group);
  }

  bool stopping = false;
  std::uint64_t writes = 0, reads = 0;
  std::function<void(member&)> write = [&](member& x) {
    x.w.async_write_some(net::buffer(out), [&, p = &x](const error_code& ec, std::size_t n) {
      if (stopping)
        return;
      if (ec || n == 0) {
        res.failure = "write: " + (ec ? ec.message() : std::string("0 bytes"));
        return;
      }
      ++writes;
      write(*p);
    });
  };
  std::function<void(member&)> read = [&](member& x) {
    x.r.async_read_some(net::buffer(x.buf), [&, p = &x](const error_code& ec, std::size_t n) {
      if (stopping)
        return;
      if (ec || n == 0) {
        res.failure = "read: " + (ec ? ec.message() : std::string("0 bytes"));
        return;
      }
      reads += n;
      read(*p);
    });
  };
  for (auto& x : members) {
    read(*x);
    write(*x);
  }

  struct mark {
    bench_clock::time_point t;
    double cpu = 0;
    std::uint64_t writes = 0, bytes = 0;
  } start, end;
  auto take = [&](mark& k) {
    k.t = bench_clock::now();
    k.cpu = this_thread_cpu_seconds();
    k.writes = writes;
    k.bytes = reads;
  };
  net::steady_timer warm(ctx), done(ctx);
  warm.expires_after(
      std::chrono::duration_cast<bench_clock::duration>(std::chrono::duration<double>(warm_s)));
  warm.async_wait([&](const error_code&) {
    take(start);
    done.expires_after(std::chrono::duration_cast<bench_clock::duration>(
        std::chrono::duration<double>(measure_s)));
    done.async_wait([&](const error_code&) {
      take(end);
      stopping = true;
      ctx.stop();
    });
  });
  ctx.run();

  // Wind down: every pending operation completes (aborted) and issues nothing more.
  stopping = true;
  ctx.restart();
  for (auto& x : members) {
    x->w.cancel();
    x->w.next_layer().close();
    x->r.close();
  }
  ctx.run_for(5s);
  if (!ctx.stopped() && res.failure.empty())
    res.failure = "operations still pending 5 s after cancel() and close()";
  members.clear();
  group.reset();

  std::uint64_t ops = end.writes - start.writes;
  double wall = std::chrono::duration<double>(end.t - start.t).count();
  if (ops > 0) {
    res.cpu_ns = (end.cpu - start.cpu) * 1e9 / static_cast<double>(ops);
    res.wall_ns = wall * 1e9 / static_cast<double>(ops);
  }
  res.ops_per_s = wall > 0 ? static_cast<double>(ops) / wall : 0;
  res.bytes_per_s = wall > 0 ? static_cast<double>(end.bytes - start.bytes) / wall : 0;
  return res;
}

} // namespace

void run_group_members(const options& opt) {
  double warm = opt.quick ? 0.05 : 0.3, measure = opt.quick ? 0.2 : 1.5;
  const std::array<std::size_t, 3> sizes = {10, 1000, 10000};
  std::printf("[b] cost per write+read (64-byte writes asked) against the number of members, one\n"
              "    thread, all members writing at once; %.1f s measured after %.2f s (CPU ns per\n"
              "    write; a write moves what the limits grant, up to 64 bytes):\n",
              measure, warm);
  std::fflush(stdout);
  struct variant {
    const char* name;
    membership how;
  };
  const std::array<variant, 3> variants = {{
      {"no group (reference)", membership::none},
      {"group, not binding", membership::loose_group},
      {"group binding 6.4 MB/s, 10 ms", membership::binding_group},
  }};
  table t({34, 14, 14, 14, 10});
  t.row({"    members:", "10", "1000", "10000", "10000/10"});
  std::array<std::array<member_result, 3>, 3> results;
  for (std::size_t v = 0; v < variants.size(); ++v) {
    for (std::size_t k = 0; k < sizes.size(); ++k) {
      std::fprintf(stderr, "ratelim_bench: %zu members, %s...\n", sizes[k], variants[v].name);
      try {
        results[v][k] = run_members(sizes[k], variants[v].how, warm, measure);
      } catch (const std::exception& e) {
        results[v][k].failure = e.what();
      }
    }
    std::vector<std::string> cells = {std::string("    ") + variants[v].name};
    for (const auto& r : results[v])
      cells.push_back(r.cpu_ns > 0 ? format("%.0f", r.cpu_ns) : "-");
    cells.push_back(ratio(results[v][2].cpu_ns, results[v][0].cpu_ns));
    t.row(cells);
  }
  std::printf("    throughput (k writes/s, wall):\n");
  for (std::size_t v = 0; v < variants.size(); ++v) {
    std::vector<std::string> cells = {std::string("    ") + variants[v].name};
    for (const auto& r : results[v])
      cells.push_back(format("%.0f", r.ops_per_s / 1e3));
    cells.push_back("");
    t.row(cells);
  }
  std::printf("    bytes per write:\n");
  for (std::size_t v = 0; v < variants.size(); ++v) {
    std::vector<std::string> cells = {std::string("    ") + variants[v].name};
    for (const auto& r : results[v])
      cells.push_back(r.ops_per_s > 0 ? format("%.1f", r.bytes_per_s / r.ops_per_s) : "-");
    cells.push_back("");
    t.row(cells);
  }
  for (std::size_t v = 0; v < variants.size(); ++v)
    for (std::size_t k = 0; k < sizes.size(); ++k)
      if (!results[v][k].failure.empty())
        std::printf("    %s, %zu members: FAILED: %s\n", variants[v].name, sizes[k],
                    results[v][k].failure.c_str());
  const double limit_bps = static_cast<double>(binding_rate_per_tick) * 100;
  std::printf("    binding group's rate, measured: %.0f / %.0f / %.0f B/s (limit %.0f)\n",
              results[2][0].bytes_per_s, results[2][1].bytes_per_s, results[2][2].bytes_per_s,
              limit_bps);
  std::printf("  targets (CPU ns per op, 10000 members / 10 members):\n");
  for (std::size_t v : {1u, 2u}) {
    double r = results[v][0].cpu_ns > 0 ? results[v][2].cpu_ns / results[v][0].cpu_ns : 0;
    print_verdict(format("%s: flat within 1.5x", variants[v].name),
                  r > 0 ? format("%.2fx", r) : "-", r > 0, r <= 1.5);
  }
  std::printf("\n");
  std::fflush(stdout);
}

} // namespace sluice::bench::ratelim_bench
