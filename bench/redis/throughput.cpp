// [1] A stream in a shared_group against the same stream in a plain rate_limit_group at the
// rate the store grants: what the lease costs the bytes, and what the loop costs per
// operation. One member, so that the grant is the whole budget.
#include "redis/fleet_bench.hpp"
#include "support/report.hpp"
#include "support/system.hpp"

#include <sluice/pipe.hpp>
#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>
#include <sluice/redis/shared_group.hpp>

#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/recycling_allocator.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace sluice::bench::fleet_bench {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

constexpr std::uint64_t binding_rate = 100'000'000;    // B/s: far below what a pipe moves
constexpr std::uint64_t non_binding_rate = 1ull << 50; // 1 PiB/s: never binds

/// What a window of steady traffic moved, and what it cost.
struct window {
  double seconds = 0, cpu = 0; // wall, and this thread's CPU
  std::uint64_t bytes = 0, writes = 0, allocations = 0, calls = 0;

  window& operator+=(const window& w) {
    seconds += w.seconds;
    cpu += w.cpu;
    bytes += w.bytes;
    writes += w.writes;
    allocations += w.allocations;
    calls += w.calls;
    return *this;
  }
};

/// How the writer's handler comes: as users write it (no allocator), or with Asio's
/// recycling allocator bound to it.
enum class handler_kind { plain_lambda, recycling_allocator };

/// One contender: a rate_limited_stream<pipe> writing flat out into a drained pipe, joined to a
/// shared_group or to a plain group, on an io_context of its own.
class flow {
public:
  flow(bool shared, std::uint64_t rate, std::size_t write_size, handler_kind handler,
       const options& opt)
      : handler_(handler), src_(write_size, 'x'), dst_(64 * 1024) {
    if (shared) {
      redis::shared_group_options o;
      o.store = opt.store;
      o.name = "throughput-" + std::to_string(rate) + "-" + std::to_string(write_size);
      o.write_rate = rate;
      shared_.emplace(ctx_, o);
    } else {
      plain_.emplace(ctx_, token_bucket_config::per_second(unlimited, rate));
    }
    // An io_context polls epoll between handlers once it has a timer or a socket, as every
    // real program's has and as the shared group's has (its loop has both): the plain
    // contender's gets a timer too, or the comparison would measure epoll.
    reactor_.expires_after(std::chrono::hours(24));
    reactor_.async_wait([](boost::system::error_code) {});
    auto ends = make_pipe(ctx_);
    out_.emplace(std::move(ends.first));
    sink_.emplace(std::move(ends.second));
    out_->join(shared_ ? shared_->group() : *plain_);
  }
  flow(const flow&) = delete;
  flow& operator=(const flow&) = delete;
  ~flow() {
    stopping_ = true; // completions still queued find the streams gone
    out_.reset();
    sink_.reset();
    shared_.reset(); // its release goes out while the context runs a little longer
    reactor_.cancel();
    ctx_.restart();
    ctx_.run_for(50ms);
  }

  /// Starts the traffic; for a shared group, once the store has granted (bounded: 5 s).
  bool start() {
    if (shared_ && !run_until(
                       [&] {
                         auto s = shared_->status();
                         return s.state == redis::shared_group::mode::leased && s.renewals >= 3;
                       },
                       5s))
      return false;
    write();
    drain();
    return true;
  }

  /// Runs the traffic for `d` (after `warm` of it untimed, so that a shared group catches up
  /// with the store after the other contender's turn), and measures.
  window run(clock_type::duration warm, clock_type::duration d) {
    ctx_.restart();
    ctx_.run_for(warm);
    return measure([&] {
      ctx_.restart();
      ctx_.run_for(d);
    });
  }

  /// What the operations alone allocate: for a shared group, counted only between its store
  /// calls (from an answer to 20 ms later; the next call or look is a quarter lease after the
  /// last call), windows adding up to `d`.
  window between_calls(clock_type::duration d) {
    if (!shared_)
      return run(0s, d);
    window sum;
    const auto deadline = clock_type::now() + d;
    while (clock_type::now() < deadline) {
      const auto renewals = shared_->status().renewals;
      if (!run_until([&] { return shared_->status().renewals != renewals; }, 1s, true))
        break; // no answer: the store is stuck
      sum += measure([&] {
        ctx_.restart();
        ctx_.run_for(20ms);
      });
    }
    return sum;
  }

  const std::string& failure() const { return failure_; }

private:
  template <class F>
  window measure(F&& run) {
    const std::uint64_t c0 = calls(), w0 = written_, n0 = writes_;
    const std::uint64_t a0 = allocations();
    const auto t0 = clock_type::now();
    const double cpu0 = this_thread_cpu_seconds();
    run();
    const double cpu1 = this_thread_cpu_seconds();
    const auto t1 = clock_type::now();
    const std::uint64_t a1 = allocations();
    return {std::chrono::duration<double>(t1 - t0).count(),
            cpu1 - cpu0,
            written_ - w0,
            writes_ - n0,
            a1 - a0,
            calls() - c0};
  }

  // Runs the context until `done()` (one handler at a time with `fine`), at most `bound`.
  template <class Pred>
  bool run_until(Pred done, clock_type::duration bound, bool fine = false) {
    const auto deadline = clock_type::now() + bound;
    while (!done() && clock_type::now() < deadline) {
      ctx_.restart();
      if (fine)
        ctx_.run_one_for(10ms);
      else
        ctx_.run_for(10ms);
    }
    return done();
  }

  std::uint64_t calls() const {
    if (!shared_)
      return 0;
    const auto s = shared_->status();
    return s.renewals + s.failures;
  }

  void write() {
    auto done = [this](boost::system::error_code ec, std::size_t n) {
      if (stopping_)
        return;
      if (ec) {
        failure_ = "write: " + ec.message();
        return;
      }
      written_ += n;
      ++writes_;
      write();
    };
    if (handler_ == handler_kind::recycling_allocator)
      out_->async_write_some(net::buffer(src_),
                             net::bind_allocator(net::recycling_allocator<void>(), done));
    else
      out_->async_write_some(net::buffer(src_), done);
  }

  void drain() {
    sink_->async_read_some(net::buffer(dst_), [this](boost::system::error_code ec, std::size_t) {
      if (!ec && !stopping_)
        drain();
    });
  }

  net::io_context ctx_{1};
  net::steady_timer reactor_{ctx_};
  std::optional<redis::shared_group> shared_;
  std::optional<rate_limit_group> plain_;
  std::optional<rate_limited_stream<pipe>> out_;
  std::optional<pipe> sink_;
  handler_kind handler_;
  std::vector<char> src_, dst_;
  std::uint64_t written_ = 0, writes_ = 0;
  bool stopping_ = false;
  std::string failure_;
};

/// A case: the two contenders' runs, by turns, then what their operations allocate.
struct outcome {
  std::vector<window> shared, plain;
  window shared_ops, plain_ops; // allocations of the operations alone
  std::string failure;
};

outcome measure(std::uint64_t budget, std::size_t write_size, handler_kind handler, int reps,
                clock_type::duration d, const options& opt) {
  outcome out;
  flow shared(true, budget, write_size, handler, opt);
  flow plain(false, budget, write_size, handler, opt);
  if (!shared.start()) {
    out.failure = "the store granted nothing within 5 s";
    return out;
  }
  plain.start();
  for (int i = 0; i < reps; ++i) {
    out.shared.push_back(shared.run(500ms, d));
    out.plain.push_back(plain.run(500ms, d));
  }
  out.shared_ops = shared.between_calls(1s);
  out.plain_ops = plain.between_calls(1s);
  if (!shared.failure().empty() || !plain.failure().empty())
    out.failure = shared.failure() + plain.failure();
  return out;
}

double wall_rate(const window& w) {
  return w.seconds > 0 ? static_cast<double>(w.bytes) / w.seconds : 0;
}

double cpu_rate(const window& w) {
  return w.cpu > 0 ? static_cast<double>(w.bytes) / w.cpu : 0;
}

template <class Rate>
double median(const std::vector<window>& ws, Rate rate) {
  std::vector<double> r;
  for (const window& w : ws)
    r.push_back(rate(w));
  if (r.empty())
    return 0;
  std::sort(r.begin(), r.end());
  return r.size() % 2 ? r[r.size() / 2] : (r[r.size() / 2 - 1] + r[r.size() / 2]) / 2;
}

template <class Rate>
double best(const std::vector<window>& ws, Rate rate) {
  double b = 0;
  for (const window& w : ws)
    b = std::max(b, rate(w));
  return b;
}

double per_write(const window& w) {
  return w.writes > 0 ? static_cast<double>(w.allocations) / static_cast<double>(w.writes) : -1;
}

/// Allocations per store call in the timed runs, the operations' own taken out.
double per_call(const std::vector<window>& ws, const window& ops) {
  window sum;
  for (const window& w : ws)
    sum += w;
  if (sum.calls == 0)
    return -1;
  const double by_ops = std::max(0.0, per_write(ops)) * static_cast<double>(sum.writes);
  return std::max(0.0, static_cast<double>(sum.allocations) - by_ops) /
         static_cast<double>(sum.calls);
}

std::string mb(double bytes_per_second) {
  return bytes_per_second > 0 ? format("%.1f MB/s", bytes_per_second / 1e6) : std::string("-");
}

std::string count(double v) {
  return v < 0 ? std::string("-") : format("%.4f", v);
}

} // namespace

void run_throughput(const options& opt) {
  const int reps = opt.quick ? 2 : 3;
  const auto d = opt.quick ? 1s : 2s;
  const auto d_loose = opt.quick ? 500ms : 1s;
  std::printf(
      "[1] a stream in a shared_group against a plain rate_limit_group at the same rate\n"
      "    rate_limited_stream<pipe> writing flat out into a drained pipe, one thread; one\n"
      "    member, so the grant is the budget. %d runs each by turns, 0.5 s untimed before\n"
      "    each: binding %.0f s (wall-clock rate, median), non-binding %.1f s (bytes per CPU\n"
      "    second of the thread, best: the machine is shared). Allocations: operator new per\n"
      "    write over 1 s of traffic, the shared group's between its store calls.\n",
      reps, std::chrono::duration<double>(d).count(),
      std::chrono::duration<double>(d_loose).count());
  std::fflush(stdout);
  std::fprintf(stderr, "fleet_bench: throughput...\n");

  const outcome bind = measure(binding_rate, 64 * 1024, handler_kind::plain_lambda, reps, d, opt);
  const outcome loose =
      measure(non_binding_rate, 4 * 1024, handler_kind::plain_lambda, reps + 1, d_loose, opt);
  const outcome recycled =
      measure(binding_rate, 64 * 1024, handler_kind::recycling_allocator, 1, 500ms, opt);
  for (const outcome* o : {&bind, &loose, &recycled})
    if (!o->failure.empty())
      std::printf("    FAILED: %s\n", o->failure.c_str());

  const double bind_shared = median(bind.shared, wall_rate);
  const double bind_plain = median(bind.plain, wall_rate);
  const double loose_shared = best(loose.shared, cpu_rate);
  const double loose_plain = best(loose.plain, cpu_rate);

  table t({56, 14, 14, 8});
  t.row({"", "shared_group", "plain group", "ratio"});
  t.row({"    binding, 100 MB/s, 64 KiB writes", mb(bind_shared), mb(bind_plain),
         ratio(bind_shared, bind_plain)});
  t.row({"    non-binding, 1 PiB/s, 4 KiB writes (per CPU s)", mb(loose_shared), mb(loose_plain),
         ratio(loose_shared, loose_plain)});
  t.row({"      the same, wall clock", mb(best(loose.shared, wall_rate)),
         mb(best(loose.plain, wall_rate)), ""});
  t.row({"    allocations per write, binding", count(per_write(bind.shared_ops)),
         count(per_write(bind.plain_ops)), ""});
  t.row({"    allocations per write, non-binding", count(per_write(loose.shared_ops)),
         count(per_write(loose.plain_ops)), ""});
  t.row({"    allocations per write, binding, handler's allocator",
         count(per_write(recycled.shared_ops)), count(per_write(recycled.plain_ops)), ""});
  const double loop = per_call(loose.shared, loose.shared_ops);
  std::printf("    the shared group's loop: %s allocations per store call\n",
              loop < 0 ? "-" : format("%.0f", loop).c_str());
  std::printf("  targets:\n");
  const double rb = bind_plain > 0 ? bind_shared / bind_plain : 0;
  const double rf = loose_plain > 0 ? loose_shared / loose_plain : 0;
  print_verdict("binding: shared >= 0.95x plain", rb > 0 ? format("%.3fx", rb) : "-", rb > 0,
                rb >= 0.95);
  print_verdict("non-binding (per-operation cost): shared >= 0.95x plain",
                rf > 0 ? format("%.3fx", rf) : "-", rf > 0, rf >= 0.95);
  for (const auto& [what, o] : {std::pair{"binding", &bind}, std::pair{"non-binding", &loose}}) {
    const double a = per_write(o->shared_ops);
    print_verdict(format("allocations per write, shared group, %s: 0", what), count(a), a >= 0,
                  a == 0);
  }
  std::printf("\n");
  std::fflush(stdout);
}

} // namespace sluice::bench::fleet_bench
