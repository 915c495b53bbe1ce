// [2] Redis time per renewal against the number of members; [3] store calls per member per
// second of a steady fleet. Both read the server's own accounting (INFO commandstats).
#include "redis/fleet_bench.hpp"
#include "support/report.hpp"

#include <sluice/detail/redis/lease_store.hpp>
#include <sluice/pipe.hpp>
#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>
#include <sluice/redis/shared_group.hpp>

#include <sluice_test/flat_out.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace sluice::bench::fleet_bench {

namespace net = boost::asio;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using redis::detail::lease_request;
using redis::detail::lease_store;

std::optional<std::vector<redis::reply>> exec(net::io_context& ctx, redis::client& c,
                                              std::vector<redis::command> commands,
                                              std::string& error) {
  std::optional<std::vector<redis::reply>> out;
  bool done = false;
  c.async_exec(std::move(commands), [&](boost::system::error_code ec, std::vector<redis::reply> r) {
    done = true;
    if (ec)
      error = ec.message();
    else
      out = std::move(r);
  });
  while (!done) {
    ctx.restart();
    ctx.run_one();
  }
  return out;
}

command_stats parse_command_stats(const std::string& info, const std::string& command) {
  command_stats s;
  const std::string key = "cmdstat_" + command + ":";
  const auto at = info.find(key);
  if (at == std::string::npos)
    return s;
  const std::string line = info.substr(at, info.find('\n', at) - at);
  auto field = [&](const char* name) -> const char* {
    const auto f = line.find(name);
    return f == std::string::npos ? nullptr
                                  : line.c_str() + f + std::char_traits<char>::length(name);
  };
  if (const char* v = field("calls="))
    s.calls = std::strtoull(v, nullptr, 10);
  if (const char* v = field(",usec="))
    s.usec = std::strtod(v, nullptr);
  return s;
}

std::optional<command_stats> read_command_stats(net::io_context& ctx, redis::client& c,
                                                const std::string& command, std::string& error) {
  auto r = exec(ctx, c, {{"INFO", "commandstats"}}, error);
  if (!r)
    return std::nullopt;
  if (r->at(0).type != redis::reply::kind::string) {
    error = "INFO commandstats: " + r->at(0).str;
    return std::nullopt;
  }
  return parse_command_stats(r->at(0).str, command);
}

namespace {

constexpr std::uint64_t budget = 20'000'000; // B/s, as in the fleet tests

/// The script's answer to every request of `requests` in one round trip; false, with `error`
/// set, when a request or a reply failed.
bool lease(net::io_context& ctx, lease_store& store, const std::vector<std::string>& keys,
           std::vector<lease_request> requests, std::string& error) {
  std::vector<std::vector<std::string>> k(requests.size(), keys);
  std::optional<lease_store::outcome> out;
  store.async_lease(std::move(k), std::move(requests),
                    [&](lease_store::outcome o) { out = std::move(o); });
  while (!out) {
    ctx.restart();
    ctx.run_one();
  }
  if (out->ec)
    error = out->ec.message();
  else if (!out->error.empty())
    error = out->error;
  return error.empty();
}

/// A member of a scripted group: its id, demand and sequence number.
struct scripted_member {
  std::string id;
  double demand;
  std::uint64_t seq = 0;
};

/// N members with demands like a fleet's: a quarter unbounded, the others finite, spread from
/// a fifth to twice the fair share (deterministically).
std::vector<scripted_member> make_members(std::size_t n) {
  std::vector<scripted_member> m;
  const double fair = static_cast<double>(budget) / static_cast<double>(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double spread = std::fmod(static_cast<double>(i) * 0.6180339887, 1.0);
    std::string id = "bench:";
    id += std::to_string(n);
    id += ':';
    id += std::to_string(i);
    m.push_back({std::move(id), i % 4 == 0 ? -1.0 : fair * (0.2 + 1.8 * spread)});
  }
  return m;
}

lease_request request_for(scripted_member& m) {
  lease_request q;
  q.member = m.id;
  q.seq = ++m.seq;
  q.demand = m.demand;
  q.weight = 1;
  q.rate = budget;
  q.burst = budget / 5;
  q.lease_us = 200'000;
  q.ttl_us = 600'000'000; // nobody expires while the benchmark renews the others
  q.version = 1;
  return q;
}

/// Every member renews once, in pipelines of up to 100 calls spread over `span` (a half
/// lease: as a fleet renews), or back to back when the store is slower than that.
bool round(net::io_context& ctx, lease_store& store, const std::vector<std::string>& keys,
           std::vector<scripted_member>& members, clock_type::duration span, std::string& error) {
  const auto start = clock_type::now();
  const std::size_t batches = (members.size() + 99) / 100;
  for (std::size_t b = 0; b < batches; ++b) {
    std::vector<lease_request> batch;
    for (std::size_t j = b * 100; j < std::min(members.size(), (b + 1) * 100); ++j)
      batch.push_back(request_for(members[j]));
    if (!lease(ctx, store, keys, std::move(batch), error))
      return false;
    std::this_thread::sleep_until(start +
                                  span * static_cast<long>(b + 1) / static_cast<long>(batches));
  }
  return true;
}

} // namespace

void run_script_cost(const options& opt) {
  const double budget_s = opt.quick ? 0.4 : 1.5;
  std::printf("[2] Redis time per renewal (the lease script) against the members of a group\n"
              "    members filled by calling the script directly (a quarter unbounded, the others\n"
              "    from 0.2 to 2 fair shares, lease 200 ms), then renewing as a fleet does: each\n"
              "    member once per half lease, up to 100 calls per round trip, spread over it;\n"
              "    %.1f s (two rounds at least). Redis's own INFO commandstats; Redis core: the\n"
              "    share of Redis's one thread the members take at that pace (10 calls/s each);\n"
              "    joining: the members' first calls, all at once (as after a restart of Redis).\n",
              budget_s);
  std::fflush(stdout);
  std::fprintf(stderr, "fleet_bench: script cost...\n");
  net::io_context ctx{1};
  redis::client c(ctx.get_executor(), opt.store, 5s);
  lease_store store(c);
  table t({14, 10, 13, 14, 19});
  t.row({"    members", "calls", "µs/call", "Redis core", "joining µs/call"});
  double at_200 = -1;
  for (std::size_t n : opt.sizes) {
    std::string error;
    const std::vector<std::string> keys =
        redis::detail::lease_keys("script-" + std::to_string(n), "write");
    std::vector<scripted_member> members = make_members(n);
    std::optional<command_stats> stats, joining, loading;
    // Every member joins at once, as after a restart of Redis; then the fleet renews.
    if (exec(ctx, c, {{"CONFIG", "RESETSTAT"}}, error) &&
        round(ctx, store, keys, members, 0s, error) &&
        (joining = read_command_stats(ctx, c, "evalsha", error)) &&
        (loading = read_command_stats(ctx, c, "eval", error)) &&
        exec(ctx, c, {{"CONFIG", "RESETSTAT"}}, error)) {
      const auto start = clock_type::now();
      int rounds = 0;
      bool ok = true;
      while (ok &&
             (rounds < 2 || clock_type::now() - start < std::chrono::duration<double>(budget_s)))
        ok = round(ctx, store, keys, members, 100ms, error) && ++rounds;
      if (ok)
        stats = read_command_stats(ctx, c, "evalsha", error);
    }
    if (!stats || stats->calls == 0) {
      std::printf("    %-10zu FAILED: %s\n", n, error.empty() ? "no calls counted" : error.c_str());
      continue;
    }
    const double per_call = stats->usec / static_cast<double>(stats->calls);
    if (n == 200)
      at_200 = per_call;
    const double load = static_cast<double>(n) * 10 * per_call / 1e6;
    const double join_calls = static_cast<double>(joining->calls + loading->calls);
    t.row({format("    %zu", n), format("%llu", static_cast<unsigned long long>(stats->calls)),
           format("%.1f", per_call), format("%.0f %%", 100 * load),
           join_calls > 0 ? format("%.1f", (joining->usec + loading->usec) / join_calls) : "-"});
  }
  std::printf("  targets:\n");
  print_verdict("Redis time per renewal at 200 members <= 100 µs",
                at_200 >= 0 ? format("%.1f µs", at_200) : "-", at_200 >= 0, at_200 <= 100);
  std::printf("\n");
  std::fflush(stdout);
}

namespace {

/// What a fleet's store calls came to, per member per second.
struct call_figures {
  double counted = -1; // by Redis (EVALSHA); -1: not read
  double answered = 0, failed = 0, early = 0;
  std::string error;
};

/// `n` shared_groups (the processes) on one io_context, each with a writer: steady (half flat
/// out, half at a limit of their own of a quarter of a fair share), or swinging (flat out and
/// a trickle by turns every `swing`, half of them in antiphase).
call_figures measure_fleet(const options& opt, bool swinging, clock_type::duration warm,
                           clock_type::duration span) {
  const std::size_t n = opt.fleet;
  net::io_context ctx{1};
  redis::client c(ctx.get_executor(), opt.store, 5s);
  std::vector<std::unique_ptr<redis::shared_group>> groups;
  std::vector<std::unique_ptr<sluice_test::flat_out_writer>> writers;
  redis::shared_group_options o;
  o.store = opt.store;
  o.name = std::string(swinging ? "swinging-" : "steady-") + std::to_string(n);
  o.write_rate = budget;
  o.lease = opt.lease;
  o.ttl = std::max<std::chrono::milliseconds>(1000ms, 5 * opt.lease);
  const auto own = std::max<std::uint64_t>(budget / n / 4, 1000);
  constexpr std::uint64_t trickle = 1000;
  for (std::size_t i = 0; i < n; ++i) {
    groups.push_back(std::make_unique<redis::shared_group>(ctx, o));
    writers.push_back(std::make_unique<sluice_test::flat_out_writer>(
        ctx, groups.back()->group(), i % 2 ? (swinging ? trickle : own) : unlimited));
    writers.back()->start();
  }
  // A swing a little longer than a quarter lease, so that it falls anywhere in the loop's looks.
  net::steady_timer swing(ctx);
  const auto period = opt.lease / 4 + opt.lease / 20;
  bool phase = false;
  std::function<void()> turn = [&] {
    swing.expires_after(period);
    swing.async_wait([&](boost::system::error_code ec) {
      if (ec)
        return;
      phase = !phase;
      for (std::size_t i = 0; i < n; ++i)
        writers[i]->set_own_rate((i % 2 == 0) == phase ? unlimited : trickle);
      turn();
    });
  };
  if (swinging)
    turn();
  auto run_for = [&](clock_type::duration d) {
    ctx.restart();
    ctx.run_for(d);
  };
  auto totals = [&] {
    std::array<std::uint64_t, 3> s{}; // answered, failed, early
    for (auto& g : groups) {
      const auto st = g->status();
      s[0] += st.renewals;
      s[1] += st.failures;
      s[2] += st.early_renewals;
    }
    return s;
  };
  // Warm-up: every process leased (bounded), then a while longer.
  const auto deadline = clock_type::now() + 10s;
  auto all_leased = [&] {
    return std::all_of(groups.begin(), groups.end(), [](auto& g) {
      return g->status().state == redis::shared_group::mode::leased;
    });
  };
  while (!all_leased() && clock_type::now() < deadline)
    run_for(50ms);
  run_for(warm);

  call_figures f;
  const auto s0 = totals();
  const auto c0 = read_command_stats(ctx, c, "evalsha", f.error);
  const auto t0 = clock_type::now();
  run_for(span);
  const auto c1 = read_command_stats(ctx, c, "evalsha", f.error);
  const double seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  const auto s1 = totals();
  const double per_member = static_cast<double>(n) * seconds;
  f.answered = static_cast<double>(s1[0] - s0[0]) / per_member;
  f.failed = static_cast<double>(s1[1] - s0[1]) / per_member;
  f.early = static_cast<double>(s1[2] - s0[2]) / per_member;
  if (c0 && c1)
    f.counted = static_cast<double>(c1->calls - c0->calls) / per_member;
  swing.cancel();
  writers.clear();
  groups.clear(); // their releases go out while the context runs a little longer
  run_for(100ms);
  return f;
}

} // namespace

void run_call_rate(const options& opt) {
  const auto warm = 1500ms;
  const auto span = opt.quick ? 2s : 5s;
  const double lease_s = std::chrono::duration<double>(opt.lease).count();
  std::printf(
      "[3] store calls per member per second\n"
      "    %zu shared_groups (the processes) on one io_context, budget %.0f MB/s, lease %.0f ms.\n"
      "    steady: half write flat out, half at a limit of their own (a quarter of a fair\n"
      "    share); swinging: each flat out and at a trickle by turns every %.0f ms, half of\n"
      "    them in antiphase. %.1f s of warm-up, then %.0f s counted by Redis (EVALSHA).\n",
      opt.fleet, budget / 1e6, lease_s * 1e3, lease_s * 1e3 * 0.3,
      std::chrono::duration<double>(warm).count(), std::chrono::duration<double>(span).count());
  std::fflush(stdout);
  std::fprintf(stderr, "fleet_bench: calls per member...\n");
  const call_figures steady = measure_fleet(opt, false, warm, span);
  const call_figures swinging = measure_fleet(opt, true, warm, span);
  for (const call_figures* f : {&steady, &swinging})
    if (f->counted < 0)
      std::printf("    INFO commandstats FAILED: %s\n", f->error.c_str());
  auto figure = [](double v) { return v >= 0 ? format("%.2f", v) : std::string("-"); };
  table t({46, 10, 10});
  t.row({"    per member per second", "steady", "swinging"});
  t.row({"    store calls (Redis's count of EVALSHA)", figure(steady.counted),
         figure(swinging.counted)});
  t.row({"    answered renewals (the processes' count)", figure(steady.answered),
         figure(swinging.answered)});
  t.row({"      of them early (demand moved)", figure(steady.early), figure(swinging.early)});
  t.row({"    failed or timed out", figure(steady.failed), figure(swinging.failed)});
  const double bound = 2 / lease_s;
  std::printf("  targets:\n");
  print_verdict(format("steady: store calls <= 2 per lease (%.0f/s)", bound),
                figure(steady.counted), steady.counted >= 0, steady.counted <= bound * 1.02);
  print_verdict(format("swinging: no more than one per quarter lease (%.0f/s)", 2 * bound),
                figure(swinging.counted), swinging.counted >= 0,
                swinging.counted <= 2 * bound * 1.02);
  std::printf("\n");
  std::fflush(stdout);
}

} // namespace sluice::bench::fleet_bench
