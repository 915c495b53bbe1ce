// Stress: members of shared groups on two threads with two io_contexts, a group on a third,
// many small writes and reads over pipes that cross the threads, with cancellations of every
// kind, joins and leaves, own limits changed on the fly, groups re-configured, topped up and
// destroyed from a fourth thread. Every byte must arrive exactly once and in order, nothing
// may hang, and once all is done every io_context must run out of work by itself (no timer
// left armed, no operation left parked). Meant to run under TSan too.
#include <boost/test/unit_test.hpp>

#include <sluice/pipe.hpp>
#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <boost/asio.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#if defined(__SANITIZE_THREAD__)
#define SLUICE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SLUICE_TSAN 1
#endif
#endif

namespace net = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using limited_pipe = sluice::rate_limited_stream<sluice::pipe>;

namespace {

#ifdef SLUICE_TSAN
constexpr std::size_t bytes_per_pair = 64 * 1024;
#else
constexpr std::size_t bytes_per_pair = 112 * 1024;
#endif
constexpr int pairs_per_context = 4;

char expected_byte(int pair, std::size_t i) {
  return static_cast<char>((i * 131 + static_cast<std::size_t>(pair) * 17 + i / 997) & 0xff);
}

const net::cancellation_type kinds[] = {net::cancellation_type::terminal,
                                        net::cancellation_type::partial,
                                        net::cancellation_type::total};

sluice::token_bucket_config config(std::uint64_t read_rate, std::uint64_t write_rate,
                                   std::chrono::nanoseconds tick) {
  sluice::token_bucket_config cfg;
  cfg.read_rate = cfg.read_burst = read_rate;
  cfg.write_rate = write_rate;
  cfg.write_burst = write_rate == sluice::unlimited ? write_rate : 2 * write_rate;
  cfg.tick = tick;
  return cfg;
}

/// What all pairs share: the groups a member may move between, and the progress count.
struct shared_state {
  sluice::rate_limit_group* g1;
  sluice::rate_limit_group* g2;
  std::atomic<std::uint64_t> received{0};
  std::atomic<int> finished{0};
  std::mutex mutex;
  std::condition_variable all_done;
  int ends = 0;

  void end_finished() {
    if (finished.fetch_add(1) + 1 == ends) {
      std::lock_guard lock(mutex);
      all_done.notify_all();
    }
  }
};

/// One side of a pair. Everything it does runs on its own io_context's thread.
struct end_base {
  end_base(limited_pipe& s, shared_state& shared, unsigned seed)
      : stream(s), shared(shared), rng(seed) {}

  /// Sometimes moves between the groups, or changes its own limits.
  void churn(bool write) {
    auto r = rng() % 128;
    if (r == 0)
      stream.leave_group();
    else if (r == 1 || r == 2)
      stream.join(*shared.g1);
    else if (r == 3)
      stream.join(*shared.g2);
    else if (r == 4)
      stream.clear_rate_limit();
    else if (r == 5) {
      auto rate = 500 + rng() % 3000; // per 10 ms
      stream.set_rate_limit(write ? config(sluice::unlimited, rate, 10ms)
                                  : config(rate, sluice::unlimited, 10ms));
    } else if (r == 6) {
      auto n = static_cast<std::int64_t>(rng() % 4000) - 2000;
      if (write)
        stream.decrement_write_limit(n);
      else
        stream.decrement_read_limit(n);
    } else if (r == 7)
      write ? stream.set_max_single_write(1 + rng() % 200)
            : stream.set_max_single_read(1 + rng() % 200);
    else if (r == 8)
      write ? stream.set_max_single_write(SIZE_MAX) : stream.set_max_single_read(SIZE_MAX);
  }

  /// Starts an operation through `start(handler)`, and perhaps cancels it: at once by a
  /// per-operation signal or stream.cancel(), or later, from a posted handler.
  template <class Start, class Handler>
  void start_maybe_cancelled(Start start, Handler handler) {
    ++op;
    pending = true;
    switch (rng() % 12) {
    case 0:
      start(net::bind_cancellation_slot(signal.slot(), std::move(handler)));
      signal.emit(kinds[rng() % 3]);
      break;
    case 1:
      start(std::move(handler));
      stream.cancel();
      break;
    case 2:
      start(net::bind_cancellation_slot(signal.slot(), std::move(handler)));
      net::post(stream.get_executor(), [this, id = op, kind = kinds[rng() % 3]] {
        if (op == id && pending)
          signal.emit(kind);
      });
      break;
    default:
      start(std::move(handler));
    }
  }

  /// Records an operation's result; false if it broke a rule.
  bool account(error_code ec, std::size_t n) {
    pending = false;
    if (ec == net::error::operation_aborted) {
      ++aborted;
      if (n != 0)
        ++violations; // a cancelled wait moves nothing, nor does a cancelled pipe operation
      return true;
    }
    if (ec) {
      ++violations;
      error = ec;
      return false;
    }
    if (n == 0)
      ++violations; // a non-empty *_some moves at least a byte
    return true;
  }

  limited_pipe& stream;
  shared_state& shared;
  std::mt19937 rng;
  net::cancellation_signal signal;
  std::uint64_t op = 0;
  bool pending = false;
  std::size_t aborted = 0, violations = 0, ops = 0;
  error_code error;
  bool done = false;
};

struct writer : end_base {
  writer(limited_pipe& s, shared_state& shared, int pair)
      : end_base(s, shared, 1000u + static_cast<unsigned>(pair)), data(bytes_per_pair, '\0') {
    for (std::size_t i = 0; i < data.size(); ++i)
      data[i] = expected_byte(pair, i);
  }

  void next() {
    if (offset == data.size()) {
      done = true;
      shared.end_finished();
      return;
    }
    churn(true);
    ++ops;
    std::size_t size = std::min<std::size_t>(1 + rng() % 300, data.size() - offset);
    auto buffer = net::buffer(data.data() + offset, size);
    start_maybe_cancelled([&](auto&& h) { stream.async_write_some(buffer, std::move(h)); },
                          [this](error_code ec, std::size_t n) {
                            if (!account(ec, n))
                              return;
                            offset += n;
                            next();
                          });
  }

  std::string data;
  std::size_t offset = 0;
};

struct reader : end_base {
  reader(limited_pipe& s, shared_state& shared, int pair)
      : end_base(s, shared, 2000u + static_cast<unsigned>(pair)), pair(pair), buf(1024) {}

  void next() {
    if (received == bytes_per_pair) {
      done = true;
      shared.end_finished();
      return;
    }
    churn(false);
    ++ops;
    auto buffer = net::buffer(buf.data(), 1 + rng() % buf.size());
    start_maybe_cancelled([&](auto&& h) { stream.async_read_some(buffer, std::move(h)); },
                          [this](error_code ec, std::size_t n) {
                            if (!account(ec, n))
                              return;
                            for (std::size_t i = 0; i < n; ++i)
                              if (received + i >= bytes_per_pair ||
                                  buf[i] != expected_byte(pair, received + i))
                                ++mismatches;
                            received += n;
                            shared.received += n;
                            next();
                          });
  }

  int pair;
  std::vector<char> buf;
  std::size_t received = 0, mismatches = 0;
};

/// A pipe whose ends are on different io_contexts (and so threads), both rate-limited.
struct pair_of_ends {
  pair_of_ends(const net::any_io_executor& wex, const net::any_io_executor& rex,
               shared_state& shared, int id)
      : pair_of_ends(sluice::make_pipe(wex, rex), shared, id) {}

  limited_pipe ws, rs;
  writer w;
  reader r;

private:
  pair_of_ends(std::pair<sluice::pipe, sluice::pipe> ends, shared_state& shared, int id)
      : ws(std::move(ends.first)), rs(std::move(ends.second)), w(ws, shared, id),
        r(rs, shared, id) {}
};

} // namespace

BOOST_AUTO_TEST_CASE(members_on_three_threads_lose_nothing) {
  net::io_context ctx_a(1), ctx_b(1), ctx_g(1);
  // g1's timers on a thread of their own; g2's and g3's on the members' threads.
  sluice::rate_limit_group g1(ctx_g.get_executor(), config(3000, 2000, 10ms));
  sluice::rate_limit_group g2(ctx_a.get_executor(), config(1500, 1000, 10ms));
  auto g3 = std::make_unique<sluice::rate_limit_group>(ctx_b.get_executor(), config(500, 500, 5ms));
  g1.set_min_share(32);

  shared_state shared;
  shared.g1 = &g1;
  shared.g2 = &g2;
  std::vector<std::unique_ptr<pair_of_ends>> pairs;
  for (int i = 0; i < 2 * pairs_per_context; ++i) {
    bool a_writes = i % 2 == 0;
    auto wex = net::any_io_executor((a_writes ? ctx_a : ctx_b).get_executor());
    auto rex = net::any_io_executor((a_writes ? ctx_b : ctx_a).get_executor());
    pairs.push_back(std::make_unique<pair_of_ends>(wex, rex, shared, i));
    auto& p = *pairs.back();
    // Start out in every combination: both in g1, writer in g3 (to be destroyed), and so on.
    switch (i % 4) {
    case 0:
      p.ws.join(g1);
      p.rs.join(g1);
      break;
    case 1:
      p.ws.join(*g3);
      p.rs.join(g2);
      break;
    case 2:
      p.ws.join(g2);
      p.rs.join(*g3);
      p.ws.set_rate_limit(config(sluice::unlimited, 2000, 10ms));
      break;
    default:
      p.ws.join(*g3);
      break;
    }
  }
  shared.ends = static_cast<int>(2 * pairs.size());

  // Each end starts on its own thread.
  for (auto& p : pairs) {
    net::post(p->ws.get_executor(), [w = &p->w] { w->next(); });
    net::post(p->rs.get_executor(), [r = &p->r] { r->next(); });
  }
  auto guard_a = net::make_work_guard(ctx_a), guard_b = net::make_work_guard(ctx_b),
       guard_g = net::make_work_guard(ctx_g);
  std::array<std::promise<void>, 3> ran_out;
  std::array<std::future<void>, 3> ran_out_f{ran_out[0].get_future(), ran_out[1].get_future(),
                                             ran_out[2].get_future()};
  std::vector<std::thread> threads;
  std::array<net::io_context*, 3> contexts{&ctx_a, &ctx_b, &ctx_g};
  for (int i = 0; i < 3; ++i)
    threads.emplace_back([&, i] {
      contexts[i]->run();
      ran_out[i].set_value();
    });

    // This thread re-configures and tops up the groups while the members run, and destroys g3
    // once a quarter of the bytes have moved.
#ifdef SLUICE_TSAN
  const auto bound = 90s;
#else
  const auto bound = 30s;
#endif
  const auto t0 = clock_type::now();
  const auto deadline = t0 + bound;
  const std::uint64_t all_bytes = bytes_per_pair * pairs.size();
  std::mt19937 rng(7);
  bool finished = false;
  int reconfigs = 0;
  while (!finished && clock_type::now() < deadline) {
    {
      std::unique_lock lock(shared.mutex);
      finished =
          shared.all_done.wait_for(lock, 5ms, [&] { return shared.finished == shared.ends; });
    }
    if (finished)
      break;
    ++reconfigs;
    switch (rng() % 6) {
    case 0:
      g1.set_config(config(2000 + rng() % 2000, 1000 + rng() % 2000, 10ms));
      break;
    case 1:
      g2.decrement_write_limit(static_cast<std::int64_t>(rng() % 6000) - 3000);
      break;
    case 2:
      g1.decrement_read_limit(static_cast<std::int64_t>(rng() % 6000) - 3000);
      break;
    case 3:
      g1.set_min_share(1 + rng() % 256);
      break;
    case 4:
      g2.set_config(rng() % 2 ? config(1500, 1000, 10ms) : config(150, 100, 1ms));
      break;
    default:
      (void)g1.totals();
      (void)g2.size();
      if (g3 && shared.received.load() > all_bytes / 4)
        g3.reset(); // its members carry on without it
    }
  }
  const double took = std::chrono::duration<double>(clock_type::now() - t0).count();
  BOOST_TEST_MESSAGE("finished " << shared.finished.load() << " of " << shared.ends << " ends in "
                                 << took << " s, " << reconfigs << " group changes");
  BOOST_TEST(finished);
  BOOST_TEST(!g3); // destroyed while in use

  // All done: with the guards gone, every io_context must run out of work by itself.
  guard_a.reset();
  guard_b.reset();
  guard_g.reset();
  bool drained = true;
  for (auto& f : ran_out_f)
    drained = drained && f.wait_until(deadline + 5s) == std::future_status::ready;
  BOOST_TEST(drained, "an io_context kept work: a timer armed or an operation parked");
  for (auto* ctx : contexts)
    ctx->stop();
  for (auto& t : threads)
    t.join();

  std::size_t aborted = 0, ops = 0;
  for (auto& p : pairs) {
    BOOST_TEST_CONTEXT("pair " << p->r.pair) {
      BOOST_TEST(p->w.done);
      BOOST_TEST(p->r.done);
      BOOST_TEST(p->w.offset == bytes_per_pair);
      BOOST_TEST(p->r.received == bytes_per_pair);
      BOOST_TEST(p->r.mismatches == 0u);
      BOOST_TEST(p->w.violations == 0u);
      BOOST_TEST(p->r.violations == 0u);
      BOOST_TEST(!p->w.error, p->w.error.message());
      BOOST_TEST(!p->r.error, p->r.error.message());
      BOOST_TEST(p->rs.next_layer().available() == 0u);
    }
    aborted += p->w.aborted + p->r.aborted;
    ops += p->w.ops + p->r.ops;
  }
  BOOST_TEST_MESSAGE(ops << " operations, " << aborted << " cancelled");
  BOOST_TEST(aborted > 0u);
  BOOST_TEST(g1.totals().written <= all_bytes);
  BOOST_TEST(g1.totals().read <= all_bytes);
  BOOST_TEST(g1.size() + g2.size() <= 2 * pairs.size());
}
