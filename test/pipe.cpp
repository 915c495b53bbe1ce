// Tests of sluice::pipe against the contract in DESIGN.md (<sluice/pipe.hpp>): data and
// byte order, the ends and their partner() links, half-close and close, capacity and flush,
// zero-length operations, cancellation, and how completions are delivered (never inline,
// with the handler's allocator and executor, with every kind of completion token).
// Ported from libevent's regress_bufferevent.c pair tests, and extended.
//
// Nothing here sleeps: each test drives its io_context (poll, or run_one_for in a loop with
// an upper bound) until the condition it waits for holds, and asserts that it does.
// GCC 12 warns (-Wtsan) that ThreadSanitizer does not model std::atomic_thread_fence, for
// every use of it in libstdc++ and Boost headers. The pipe synchronises with a mutex, which
// TSan does model; the warning is about those headers, so it is silenced here.
#if defined(__SANITIZE_THREAD__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wtsan"
#endif
#define BOOST_TEST_MODULE pipe
#include <boost/test/unit_test.hpp>

#include <sluice/pipe.hpp>

#include <boost/asio.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include "support.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace net = boost::asio;
using boost::system::error_code;
using sluice::flush_mode;
using namespace std::chrono_literals;

using namespace sluice_test;

namespace {

// The most any test waits for something to happen; reached only when a test fails.
constexpr std::chrono::steady_clock::duration bound = 5s;

using bytes = std::vector<std::uint8_t>;

// Byte `i` of test stream `salt`: no short period, so a lost, duplicated or reordered byte
// shows as a mismatch.
std::uint8_t pattern_byte(std::uint64_t i, std::uint64_t salt) {
  std::uint64_t x = i + salt * 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return static_cast<std::uint8_t>(x ^ (x >> 31));
}

// Bytes [from, from + n) of test stream `salt`.
bytes pattern(std::size_t n, std::uint64_t salt = 1, std::size_t from = 0) {
  bytes out(n);
  for (std::size_t i = 0; i < n; ++i)
    out[i] = pattern_byte(from + i, salt);
  return out;
}

// "" when equal, else where they first differ (keeps failure output short).
std::string difference(const bytes& got, const bytes& want) {
  if (got.size() != want.size())
    return "sizes differ: " + std::to_string(got.size()) + " vs " + std::to_string(want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    if (got[i] != want[i])
      return "first difference at byte " + std::to_string(i);
  return "";
}

std::string as_string(const void* data, std::size_t n) {
  return std::string(static_cast<const char*>(data), n);
}

// What a completion handler was called with, and how many times.
struct outcome {
  int calls = 0;
  error_code ec;
  std::size_t n = 0;
  bool done() const { return calls > 0; }
};

auto record(outcome& o) {
  return [&o](error_code ec, std::size_t n) {
    ++o.calls;
    o.ec = ec;
    o.n = n;
  };
}

// Runs the handlers that are ready, and those they make ready, without waiting.
void settle(net::io_context& ctx) {
  ctx.restart();
  ctx.poll();
}

// Runs `ctx` on a thread of its own until destroyed; the destructor stops and joins it.
class background {
public:
  explicit background(net::io_context& ctx)
      : ctx_(ctx), work_(net::make_work_guard(ctx)), thread_([this] { ctx_.run(); }) {}
  ~background() { stop(); }

  // Stops the context and joins the thread; what the thread did happens-before the return.
  void stop() {
    if (!thread_.joinable())
      return;
    work_.reset();
    ctx_.stop();
    thread_.join();
  }

private:
  net::io_context& ctx_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::thread thread_;
};

const net::cancellation_type cancellation_types[] = {net::cancellation_type::terminal,
                                                     net::cancellation_type::partial,
                                                     net::cancellation_type::total};

const char* name(net::cancellation_type type) {
  switch (type) {
  case net::cancellation_type::terminal:
    return "terminal";
  case net::cancellation_type::partial:
    return "partial";
  case net::cancellation_type::total:
    return "total";
  default:
    return "other";
  }
}

// An allocator that counts what goes through it.
struct allocation_counts {
  std::size_t allocations = 0;
  std::size_t deallocations = 0;
};

template <class T>
struct counting_allocator {
  using value_type = T;

  explicit counting_allocator(allocation_counts* c) noexcept : counts(c) {}
  template <class U>
  counting_allocator(const counting_allocator<U>& other) noexcept : counts(other.counts) {}

  T* allocate(std::size_t n) {
    ++counts->allocations;
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) {
    ++counts->deallocations;
    std::allocator<T>().deallocate(p, n);
  }
  template <class U>
  bool operator==(const counting_allocator<U>& other) const noexcept {
    return counts == other.counts;
  }
  template <class U>
  bool operator!=(const counting_allocator<U>& other) const noexcept {
    return counts != other.counts;
  }

  allocation_counts* counts;
};

// Writes `data` from `writer` and checks that it was all taken at once (fills a buffer).
void fill_pipe(net::io_context& ctx, sluice::pipe& writer, const bytes& data) {
  outcome w;
  writer.async_write_some(net::buffer(data), record(w));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w.done(); }));
  BOOST_TEST_REQUIRE(!w.ec);
  BOOST_TEST_REQUIRE(w.n == data.size());
}

} // namespace

// --- The type ---------------------------------------------------------------------------

static_assert(!std::is_copy_constructible_v<sluice::pipe>);
static_assert(!std::is_copy_assignable_v<sluice::pipe>);
static_assert(std::is_nothrow_move_constructible_v<sluice::pipe>);
static_assert(std::is_nothrow_move_assignable_v<sluice::pipe>);
static_assert(std::is_same_v<sluice::pipe::executor_type, net::any_io_executor>);
static_assert(std::is_same_v<sluice::pipe::lowest_layer_type, sluice::pipe>);
static_assert(std::is_same_v<decltype(sluice::make_pipe(std::declval<net::io_context&>())),
                             std::pair<sluice::pipe, sluice::pipe>>);
static_assert(sluice::pipe_options{}.capacity == 64 * 1024);

BOOST_AUTO_TEST_SUITE(data)

// libevent's test_bufferevent_pair: 8333 bytes each way, with capacities around the size.
BOOST_AUTO_TEST_CASE(bytes_8333_arrive_whole_both_ways) {
  constexpr std::size_t size = 8333;
  for (std::size_t capacity : {std::size_t{64 * 1024}, std::size_t{0}, std::size_t{1},
                               std::size_t{1000}, size, size - 1}) {
    BOOST_TEST_CONTEXT("capacity " << capacity) {
      net::io_context ctx;
      auto [a, b] = sluice::make_pipe(ctx, {.capacity = capacity});
      const bytes a_out = pattern(size, 1), b_out = pattern(size, 2);
      bytes a_in(size), b_in(size);
      outcome aw, bw, ar, br;
      net::async_write(a, net::buffer(a_out), record(aw));
      net::async_write(b, net::buffer(b_out), record(bw));
      net::async_read(a, net::buffer(a_in), record(ar));
      net::async_read(b, net::buffer(b_in), record(br));
      BOOST_TEST_REQUIRE(
          run_until(ctx, [&] { return aw.done() && bw.done() && ar.done() && br.done(); }));
      BOOST_TEST(!aw.ec);
      BOOST_TEST(!bw.ec);
      BOOST_TEST(!ar.ec);
      BOOST_TEST(!br.ec);
      BOOST_TEST(aw.n == size);
      BOOST_TEST(bw.n == size);
      BOOST_TEST(ar.n == size);
      BOOST_TEST(br.n == size);
      BOOST_TEST(difference(b_in, a_out) == "");
      BOOST_TEST(difference(a_in, b_out) == "");
      BOOST_TEST(a.available() == 0u);
      BOOST_TEST(b.available() == 0u);
      BOOST_TEST(aw.calls == 1);
      BOOST_TEST(br.calls == 1);
    }
  }
}

BOOST_AUTO_TEST_CASE(default_capacity_is_64_KiB) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  const bytes out = pattern(100000);
  outcome w;
  a.async_write_some(net::buffer(out), record(w));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w.done(); }));
  BOOST_TEST(!w.ec);
  BOOST_TEST(w.n == 64u * 1024);
  BOOST_TEST(b.available() == 64u * 1024);
}

// A read takes what is there, like a socket: not more than asked, not waiting for more.
BOOST_AUTO_TEST_CASE(read_completes_with_what_is_available) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  const std::string msg = "0123456789";
  outcome w;
  a.async_write_some(net::buffer(msg), record(w));
  std::array<char, 4> small{};
  outcome r1;
  b.async_read_some(net::buffer(small), record(r1));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w.done() && r1.done(); }));
  BOOST_TEST(w.n == msg.size());
  BOOST_TEST(!r1.ec);
  BOOST_TEST(as_string(small.data(), r1.n) == "0123");
  BOOST_TEST(b.available() == 6u);
  std::array<char, 100> big{};
  outcome r2;
  b.async_read_some(net::buffer(big), record(r2));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r2.done(); }));
  BOOST_TEST(!r2.ec);
  BOOST_TEST(as_string(big.data(), r2.n) == "456789");
  BOOST_TEST(b.available() == 0u);
}

// A write into a waiting reader goes straight into the reader's buffer.
BOOST_AUTO_TEST_CASE(write_to_waiting_reader) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  std::array<char, 10> in{};
  outcome r;
  b.async_read_some(net::buffer(in), record(r));
  settle(ctx);
  BOOST_TEST_REQUIRE(!r.done());
  const bytes out = pattern(100);
  outcome w;
  a.async_write_some(net::buffer(out), record(w));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done() && w.done(); }));
  BOOST_TEST(!r.ec);
  BOOST_TEST(!w.ec);
  BOOST_TEST(r.n == in.size());
  BOOST_TEST(w.n >= r.n);
  BOOST_TEST(w.n <= out.size());
  BOOST_TEST(difference(bytes(in.begin(), in.end()), pattern(10)) == "");
  BOOST_TEST(b.available() == w.n - r.n); // the rest, if any was taken, is buffered
}

// Scatter/gather: buffer sequences of many pieces, more than a single operation takes.
BOOST_AUTO_TEST_CASE(buffer_sequences_of_many_pieces) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx, {.capacity = 100});
  const bytes out = pattern(40 * 7);
  std::vector<net::const_buffer> pieces;
  for (std::size_t i = 0; i < 40; ++i) {
    pieces.push_back(net::buffer(out.data() + i * 7, 7));
    if (i % 5 == 0)
      pieces.push_back(net::const_buffer()); // empty pieces are skipped
  }
  bytes in(out.size());
  std::vector<net::mutable_buffer> in_pieces;
  for (std::size_t i = 0; i < in.size(); i += 13)
    in_pieces.push_back(net::buffer(in.data() + i, std::min<std::size_t>(13, in.size() - i)));
  outcome w, r;
  net::async_write(a, pieces, record(w));
  net::async_read(b, in_pieces, record(r));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w.done() && r.done(); }));
  BOOST_TEST(!w.ec);
  BOOST_TEST(!r.ec);
  BOOST_TEST(w.n == out.size());
  BOOST_TEST(r.n == out.size());
  BOOST_TEST(difference(in, out) == "");
}

// A pipe is an AsyncReadStream: the composed operations written for sockets work on it.
BOOST_AUTO_TEST_CASE(read_until) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx, {.capacity = 5});
  const std::string msg = "line one\nline two\n";
  std::string in;
  outcome w, r1, r2;
  net::async_write(a, net::buffer(msg), record(w));
  net::async_read_until(b, net::dynamic_buffer(in), '\n', record(r1));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r1.done(); }));
  BOOST_TEST(!r1.ec);
  BOOST_TEST(in.substr(0, r1.n) == "line one\n");
  in.erase(0, r1.n);
  // The writer waits on the 5-byte buffer until the second line is read too.
  net::async_read_until(b, net::dynamic_buffer(in), '\n', record(r2));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r2.done() && w.done(); }));
  BOOST_TEST(!r2.ec);
  BOOST_TEST(in == "line two\n");
  BOOST_TEST(w.n == msg.size());
}

// Single-threaded soak: random sizes both ways through small and odd capacities, so that the
// ring buffer wraps, grows and empties many times. Byte-exact.
BOOST_AUTO_TEST_CASE(random_sizes_through_small_capacities) {
  constexpr std::size_t total = 200000;
  for (std::size_t capacity :
       {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{1000}, std::size_t{4096}}) {
    BOOST_TEST_CONTEXT("capacity " << capacity) {
      net::io_context ctx;
      auto p = sluice::make_pipe(ctx, {.capacity = capacity});
      const bytes out = pattern(total, 3);
      bytes in;
      std::mt19937 rng(static_cast<unsigned>(capacity + 1));
      std::uniform_int_distribution<std::size_t> size(1, 3000);
      std::exception_ptr writer_error, reader_error;
      error_code end;
      net::co_spawn(
          ctx,
          [&]() -> net::awaitable<void> {
            std::size_t sent = 0;
            while (sent < total) {
              std::size_t n = std::min(size(rng), total - sent);
              sent += co_await p.first.async_write_some(net::buffer(out.data() + sent, n),
                                                        net::use_awaitable);
            }
            p.first.shutdown(net::socket_base::shutdown_send);
          },
          [&](std::exception_ptr e) { writer_error = e; });
      net::co_spawn(
          ctx,
          [&]() -> net::awaitable<void> {
            std::vector<std::uint8_t> buf(3000);
            for (;;) {
              auto [ec, n] = co_await p.second.async_read_some(net::buffer(buf.data(), size(rng)),
                                                               net::as_tuple(net::use_awaitable));
              if (ec) {
                end = ec;
                break;
              }
              in.insert(in.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
            }
          },
          [&](std::exception_ptr e) { reader_error = e; });
      ctx.run_for(bound);
      BOOST_TEST(ctx.stopped()); // both coroutines finished
      BOOST_TEST(!writer_error);
      BOOST_TEST(!reader_error);
      BOOST_TEST(end == net::error::eof);
      BOOST_TEST(difference(in, out) == "");
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

// --- Ends: partner(), moves, destruction ------------------------------------------------

BOOST_AUTO_TEST_SUITE(ends)

BOOST_AUTO_TEST_CASE(partner_is_symmetric) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  BOOST_TEST(a.partner() == &b);
  BOOST_TEST(b.partner() == &a);
  BOOST_TEST(a.is_open());
  BOOST_TEST(b.is_open());
  BOOST_TEST(&a.lowest_layer() == &a);
  BOOST_TEST((a.get_executor() == net::any_io_executor(ctx.get_executor())));
  auto [c, d] = sluice::make_pipe(ctx);
  BOOST_TEST(c.partner() == &d); // pairs are independent
  BOOST_TEST(a.partner() == &b);
}

BOOST_AUTO_TEST_CASE(partner_follows_move_construction) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  sluice::pipe c(std::move(a));
  BOOST_TEST(c.partner() == &b);
  BOOST_TEST(b.partner() == &c);
  BOOST_TEST(c.is_open());
  BOOST_TEST(!a.is_open()); // NOLINT(bugprone-use-after-move): moved-from state is specified
  BOOST_TEST(a.partner() == nullptr);
  BOOST_TEST((c.get_executor() == net::any_io_executor(ctx.get_executor())));

  // The new object carries the data; the moved-from one is closed.
  const std::string msg = "moved";
  std::array<char, 16> in{};
  outcome w, r, stale;
  c.async_write_some(net::buffer(msg), record(w));
  b.async_read_some(net::buffer(in), record(r));
  a.async_read_some(net::buffer(in), record(stale));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w.done() && r.done() && stale.done(); }));
  BOOST_TEST(as_string(in.data(), r.n) == msg);
  BOOST_TEST(stale.ec == net::error::bad_descriptor);

  // Moving again, and destroying the moved-from objects, leaves the pair linked.
  {
    sluice::pipe e(std::move(c));
    BOOST_TEST(b.partner() == &e);
    BOOST_TEST(e.partner() == &b);
    sluice::pipe f(std::move(b));
    BOOST_TEST(e.partner() == &f);
    BOOST_TEST(f.partner() == &e);
  }
  BOOST_TEST(!b.is_open());
}

BOOST_AUTO_TEST_CASE(partner_follows_move_assignment) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  auto [c, d] = sluice::make_pipe(ctx);
  std::array<char, 8> d_in{}, c_in{};
  outcome d_read, c_read;
  d.async_read_some(net::buffer(d_in), record(d_read));
  c.async_read_some(net::buffer(c_in), record(c_read));
  settle(ctx);
  BOOST_TEST_REQUIRE(!d_read.done());
  BOOST_TEST_REQUIRE(!c_read.done());

  c = std::move(a); // closes c's end of the other pair first
  BOOST_TEST(c.partner() == &b);
  BOOST_TEST(b.partner() == &c);
  BOOST_TEST(!a.is_open()); // NOLINT(bugprone-use-after-move)
  BOOST_TEST(a.partner() == nullptr);
  BOOST_TEST(d.partner() == nullptr);
  BOOST_TEST(d.is_open());
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return d_read.done(); }));
  BOOST_TEST(d_read.ec == net::error::eof); // its partner was closed by the assignment
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return c_read.done(); }));
  BOOST_TEST(c_read.ec == net::error::operation_aborted); // c's own pending read

  sluice::pipe& alias = c;
  c = std::move(alias); // self-assignment changes nothing
  BOOST_TEST(c.is_open());
  BOOST_TEST(c.partner() == &b);

  const std::string msg = "assigned";
  std::array<char, 16> in{};
  outcome w, r;
  b.async_write_some(net::buffer(msg), record(w));
  c.async_read_some(net::buffer(in), record(r));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w.done() && r.done(); }));
  BOOST_TEST(!r.ec);
  BOOST_TEST(as_string(in.data(), r.n) == msg);
}

// Pending operations belong to the pair, not to the object: a move does not disturb them.
BOOST_AUTO_TEST_CASE(move_keeps_pending_read) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  std::array<char, 16> in{};
  outcome r;
  b.async_read_some(net::buffer(in), record(r));
  settle(ctx);
  BOOST_TEST_REQUIRE(!r.done());
  sluice::pipe c(std::move(b));
  settle(ctx);
  BOOST_TEST(!r.done());
  const std::string msg = "still there";
  outcome w;
  a.async_write_some(net::buffer(msg), record(w));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done() && w.done(); }));
  BOOST_TEST(!r.ec);
  BOOST_TEST(as_string(in.data(), r.n) == msg);
  BOOST_TEST(a.partner() == &c);
}

BOOST_AUTO_TEST_CASE(partner_null_after_close) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  a.close();
  BOOST_TEST(a.partner() == nullptr);
  BOOST_TEST(b.partner() == nullptr);
  BOOST_TEST(!a.is_open());
  BOOST_TEST(b.is_open());
  a.close(); // idempotent
  b.close();
  BOOST_TEST(!b.is_open());
  BOOST_TEST(b.partner() == nullptr);
}

BOOST_AUTO_TEST_CASE(partner_null_after_destruction) {
  net::io_context ctx;
  auto p = sluice::make_pipe(ctx);
  std::optional<sluice::pipe> a(std::move(p.first));
  sluice::pipe& b = p.second;
  BOOST_TEST(b.partner() == &*a);
  a.reset();
  BOOST_TEST(b.partner() == nullptr);
  BOOST_TEST(b.is_open());
  // The survivor is not a dangling half: its read ends at eof, its write is refused.
  std::array<char, 4> in{};
  const std::string msg = "x";
  outcome r, w;
  b.async_read_some(net::buffer(in), record(r));
  b.async_write_some(net::buffer(msg), record(w));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done() && w.done(); }));
  BOOST_TEST(r.ec == net::error::eof);
  BOOST_TEST(w.ec == net::error::broken_pipe);
}

// libevent's issue #93, done right: destroying an end with a pending read completes it with
// operation_aborted, and nothing is left to keep run() from returning.
BOOST_AUTO_TEST_CASE(destroying_end_aborts_pending_read) {
  net::io_context ctx;
  auto p = sluice::make_pipe(ctx);
  std::optional<sluice::pipe> a(std::move(p.first));
  std::optional<sluice::pipe> b(std::move(p.second));
  std::array<char, 16> b_in{}, a_in{};
  outcome b_read, a_read;
  b->async_read_some(net::buffer(b_in), record(b_read));
  a->async_read_some(net::buffer(a_in), record(a_read));
  settle(ctx);
  BOOST_TEST_REQUIRE(!b_read.done());
  BOOST_TEST(!ctx.stopped()); // the pending reads count as work
  b.reset();
  BOOST_TEST(!b_read.done()); // not from inside the destructor
  BOOST_TEST(a->partner() == nullptr);
  ctx.restart();
  ctx.run_for(bound);
  BOOST_TEST(ctx.stopped()); // run() returned because it ran out of work, not on the bound
  BOOST_TEST(b_read.calls == 1);
  BOOST_TEST(b_read.ec == net::error::operation_aborted);
  BOOST_TEST(b_read.n == 0u);
  BOOST_TEST(a_read.calls == 1);
  BOOST_TEST(a_read.ec == net::error::eof); // the survivor's pending read
}

// A pending operation keeps run() from returning; when it completes, run() returns.
BOOST_AUTO_TEST_CASE(pending_operation_is_outstanding_work) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  std::array<char, 16> in{};
  outcome r;
  b.async_read_some(net::buffer(in), record(r));
  settle(ctx); // poll() stops the context when there is no work left
  BOOST_TEST(!ctx.stopped());
  BOOST_TEST(!r.done());
  const std::string msg = "done";
  outcome w;
  a.async_write_some(net::buffer(msg), record(w));
  ctx.restart();
  ctx.run_for(bound);
  BOOST_TEST(ctx.stopped());
  BOOST_TEST(r.n == msg.size());
  BOOST_TEST(w.n == msg.size());
}

BOOST_AUTO_TEST_SUITE_END()

// --- Half-close and close ---------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(half_close)

BOOST_AUTO_TEST_CASE(shutdown_send_partner_reads_then_eof_and_can_reply) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  const std::string msg = "last words";
  outcome w;
  a.async_write_some(net::buffer(msg), record(w));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w.done(); }));
  a.shutdown(net::socket_base::shutdown_send);
  BOOST_TEST(a.is_open());
  BOOST_TEST(a.partner() == &b); // half-closed, still linked

  std::string in;
  outcome r;
  net::async_read(b, net::dynamic_buffer(in), record(r)); // to eof
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done(); }));
  BOOST_TEST(r.ec == net::error::eof);
  BOOST_TEST(in == msg);
  outcome again;
  std::array<char, 4> buf{};
  b.async_read_some(net::buffer(buf), record(again)); // eof is sticky
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return again.done(); }));
  BOOST_TEST(again.ec == net::error::eof);

  // The other direction still works.
  const std::string reply = "reply";
  std::array<char, 16> back{};
  outcome bw, ar;
  b.async_write_some(net::buffer(reply), record(bw));
  a.async_read_some(net::buffer(back), record(ar));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return bw.done() && ar.done(); }));
  BOOST_TEST(!bw.ec);
  BOOST_TEST(!ar.ec);
  BOOST_TEST(as_string(back.data(), ar.n) == reply);

  // Writing after shutting down sending fails, as on a socket.
  outcome late;
  a.async_write_some(net::buffer(msg), record(late));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return late.done(); }));
  BOOST_TEST(late.ec == net::error::broken_pipe);
}

BOOST_AUTO_TEST_CASE(shutdown_send_completes_pending_read_with_eof) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  std::array<char, 4> buf{};
  outcome r;
  b.async_read_some(net::buffer(buf), record(r));
  settle(ctx);
  BOOST_TEST_REQUIRE(!r.done());
  a.shutdown(net::socket_base::shutdown_send);
  BOOST_TEST(!r.done()); // not inline
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done(); }));
  BOOST_TEST(r.ec == net::error::eof);
  BOOST_TEST(r.n == 0u);
}

BOOST_AUTO_TEST_CASE(shutdown_send_fails_waiting_write) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx, {.capacity = 1000});
  const bytes out = pattern(1500);
  fill_pipe(ctx, a, bytes(out.begin(), out.begin() + 1000));
  outcome w;
  a.async_write_some(net::buffer(out.data() + 1000, 500), record(w));
  settle(ctx);
  BOOST_TEST_REQUIRE(!w.done());
  a.shutdown(net::socket_base::shutdown_send);
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w.done(); }));
  BOOST_TEST(w.ec == net::error::broken_pipe);
  BOOST_TEST(w.n == 0u);
  bytes in;
  outcome r;
  net::async_read(b, net::dynamic_buffer(in), record(r));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done(); }));
  BOOST_TEST(r.ec == net::error::eof);
  BOOST_TEST(difference(in, bytes(out.begin(), out.begin() + 1000)) == "");
}

BOOST_AUTO_TEST_CASE(close_survivor_reads_then_eof_and_writes_fail) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  const std::string msg = "goodbye";
  outcome w;
  a.async_write_some(net::buffer(msg), record(w));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w.done(); }));
  a.close();
  BOOST_TEST(!a.is_open());
  BOOST_TEST(b.is_open());
  BOOST_TEST(a.partner() == nullptr);
  BOOST_TEST(b.partner() == nullptr);
  BOOST_TEST(b.available() == msg.size());

  std::string in;
  outcome r;
  net::async_read(b, net::dynamic_buffer(in), record(r));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done(); }));
  BOOST_TEST(r.ec == net::error::eof);
  BOOST_TEST(in == msg);

  outcome bw;
  b.async_write_some(net::buffer(msg), record(bw));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return bw.done(); }));
  BOOST_TEST(bw.ec == net::error::broken_pipe);
  BOOST_TEST(bw.n == 0u);
}

BOOST_AUTO_TEST_CASE(closed_end_operations_fail_with_bad_descriptor) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  a.close();
  std::array<char, 8> buf{};
  const std::string msg = "x";
  outcome r, w, r0, w0;
  a.async_read_some(net::buffer(buf), record(r));
  a.async_write_some(net::buffer(msg), record(w));
  a.async_read_some(net::mutable_buffer(), record(r0));
  a.async_write_some(net::const_buffer(), record(w0));
  BOOST_TEST(!r.done()); // still never inline
  BOOST_TEST_REQUIRE(
      run_until(ctx, [&] { return r.done() && w.done() && r0.done() && w0.done(); }));
  BOOST_TEST(r.ec == net::error::bad_descriptor);
  BOOST_TEST(w.ec == net::error::bad_descriptor);
  BOOST_TEST(r0.ec == net::error::bad_descriptor);
  BOOST_TEST(w0.ec == net::error::bad_descriptor);
  BOOST_TEST(r.n == 0u);
  BOOST_TEST(w.n == 0u);
  // Everything else does nothing on a closed end.
  BOOST_TEST(a.available() == 0u);
  BOOST_TEST(a.flush(flush_mode::flush) == 0u);
  BOOST_TEST(a.flush(flush_mode::finished) == 0u);
  a.shutdown(net::socket_base::shutdown_both);
  a.cancel();
  a.close();
  BOOST_TEST(!a.is_open());
  BOOST_TEST(b.is_open());
}

// The closed end's own pending operations are aborted.
BOOST_AUTO_TEST_CASE(close_aborts_own_pending_operations) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx, {.capacity = 1000});
  const bytes out = pattern(1010);
  fill_pipe(ctx, a, bytes(out.begin(), out.begin() + 1000));
  std::array<char, 8> buf{};
  outcome ar, aw;
  a.async_read_some(net::buffer(buf), record(ar));
  a.async_write_some(net::buffer(out.data() + 1000, 10), record(aw));
  settle(ctx);
  BOOST_TEST_REQUIRE(!ar.done());
  BOOST_TEST_REQUIRE(!aw.done());
  a.close();
  BOOST_TEST(!ar.done());
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return ar.done() && aw.done(); }));
  BOOST_TEST(ar.ec == net::error::operation_aborted);
  BOOST_TEST(aw.ec == net::error::operation_aborted);
  BOOST_TEST(ar.n == 0u);
  BOOST_TEST(aw.n == 0u);
  // The survivor gets what had been sent, and not the aborted write's bytes.
  bytes in;
  outcome r;
  net::async_read(b, net::dynamic_buffer(in), record(r));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done(); }));
  BOOST_TEST(r.ec == net::error::eof);
  BOOST_TEST(difference(in, bytes(out.begin(), out.begin() + 1000)) == "");
}

// The survivor's pending operations complete: its read with eof, its write with broken_pipe.
BOOST_AUTO_TEST_CASE(close_completes_partner_pending_operations) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx, {.capacity = 1000});
  const bytes out = pattern(1010);
  fill_pipe(ctx, b, bytes(out.begin(), out.begin() + 1000));
  std::array<char, 8> buf{};
  outcome br, bw;
  b.async_read_some(net::buffer(buf), record(br));
  b.async_write_some(net::buffer(out.data() + 1000, 10), record(bw));
  settle(ctx);
  BOOST_TEST_REQUIRE(!br.done());
  BOOST_TEST_REQUIRE(!bw.done());
  a.close();
  BOOST_TEST(!br.done());
  BOOST_TEST(!bw.done());
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return br.done() && bw.done(); }));
  BOOST_TEST(br.ec == net::error::eof);
  BOOST_TEST(bw.ec == net::error::broken_pipe);
  BOOST_TEST(bw.n == 0u);
}

BOOST_AUTO_TEST_CASE(shutdown_receive_discards_and_partner_writes_fail) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  const std::string msg = "unwanted";
  outcome w;
  a.async_write_some(net::buffer(msg), record(w));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w.done(); }));
  BOOST_TEST_REQUIRE(b.available() == msg.size());
  b.shutdown(net::socket_base::shutdown_receive);
  BOOST_TEST(b.available() == 0u); // discarded
  BOOST_TEST(b.partner() == &a);

  outcome aw;
  a.async_write_some(net::buffer(msg), record(aw));
  std::array<char, 16> buf{};
  outcome br;
  b.async_read_some(net::buffer(buf), record(br));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return aw.done() && br.done(); }));
  BOOST_TEST(aw.ec == net::error::broken_pipe);
  BOOST_TEST(aw.n == 0u);
  BOOST_TEST(br.ec == net::error::eof);
  BOOST_TEST(br.n == 0u);

  // b can still send.
  const std::string reply = "still talking";
  outcome bw, ar;
  b.async_write_some(net::buffer(reply), record(bw));
  a.async_read_some(net::buffer(buf), record(ar));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return bw.done() && ar.done(); }));
  BOOST_TEST(!ar.ec);
  BOOST_TEST(as_string(buf.data(), ar.n) == reply);
}

BOOST_AUTO_TEST_CASE(shutdown_both) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  const std::string msg = "pending";
  outcome w;
  b.async_write_some(net::buffer(msg), record(w));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w.done(); }));
  a.shutdown(net::socket_base::shutdown_both);
  BOOST_TEST(a.is_open());
  BOOST_TEST(a.available() == 0u); // what b had sent is discarded
  std::array<char, 16> buf{};
  outcome ar, aw, br, bw;
  a.async_read_some(net::buffer(buf), record(ar));
  a.async_write_some(net::buffer(msg), record(aw));
  b.async_read_some(net::buffer(buf), record(br));
  b.async_write_some(net::buffer(msg), record(bw));
  BOOST_TEST_REQUIRE(
      run_until(ctx, [&] { return ar.done() && aw.done() && br.done() && bw.done(); }));
  BOOST_TEST(ar.ec == net::error::eof);
  BOOST_TEST(aw.ec == net::error::broken_pipe);
  BOOST_TEST(br.ec == net::error::eof);
  BOOST_TEST(bw.ec == net::error::broken_pipe);
}

BOOST_AUTO_TEST_CASE(shutdown_receive_completes_pending_operations) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx, {.capacity = 1000});
  // A read waiting on the end that stops receiving gets eof.
  std::array<char, 8> buf{};
  outcome br;
  b.async_read_some(net::buffer(buf), record(br));
  settle(ctx);
  BOOST_TEST_REQUIRE(!br.done());
  b.shutdown(net::socket_base::shutdown_receive);
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return br.done(); }));
  BOOST_TEST(br.ec == net::error::eof);

  // And a write waiting for room on the other end fails when that end stops receiving.
  const bytes out = pattern(1010);
  fill_pipe(ctx, b, bytes(out.begin(), out.begin() + 1000));
  outcome bw;
  b.async_write_some(net::buffer(out.data() + 1000, 10), record(bw));
  settle(ctx);
  BOOST_TEST_REQUIRE(!bw.done());
  a.shutdown(net::socket_base::shutdown_receive);
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return bw.done(); }));
  BOOST_TEST(bw.ec == net::error::broken_pipe);
  BOOST_TEST(a.available() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

// --- Capacity and flush -----------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(capacity)

// libevent's test_bufferevent_pair_flush, with backpressure.
BOOST_AUTO_TEST_CASE(capacity_1000_backpressure_and_flush) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx, {.capacity = 1000});
  const bytes out = pattern(5000);
  outcome w1;
  a.async_write_some(net::buffer(out), record(w1));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w1.done(); }));
  BOOST_TEST(!w1.ec);
  BOOST_TEST(w1.n == 1000u);
  BOOST_TEST(b.available() == 1000u);

  outcome w2;
  a.async_write_some(net::buffer(out.data() + 1000, 4000), record(w2));
  settle(ctx);
  BOOST_TEST(!w2.done()); // the buffer is full: the write waits
  settle(ctx);
  BOOST_TEST(!w2.done());
  BOOST_TEST(b.available() == 5000u);            // buffered plus the waiting write's bytes
  BOOST_TEST(a.flush(flush_mode::normal) == 0u); // no room: normal moves nothing
  settle(ctx);
  BOOST_TEST(!w2.done());

  BOOST_TEST(a.flush(flush_mode::flush) == 4000u);
  BOOST_TEST(!w2.done()); // not inline
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w2.done(); }));
  BOOST_TEST(!w2.ec);
  BOOST_TEST(w2.n == 4000u);
  BOOST_TEST(b.available() == 5000u);
  BOOST_TEST(a.flush(flush_mode::flush) == 0u); // nothing waits now

  bytes in(5000);
  outcome r;
  net::async_read(b, net::buffer(in), record(r));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done(); }));
  BOOST_TEST(!r.ec);
  BOOST_TEST(r.n == 5000u);
  BOOST_TEST(difference(in, out) == "");
  BOOST_TEST(b.available() == 0u);
}

// Reading makes room, and the waiting write takes it without a flush.
BOOST_AUTO_TEST_CASE(reading_makes_room_for_waiting_write) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx, {.capacity = 1000});
  const bytes out = pattern(1500);
  fill_pipe(ctx, a, bytes(out.begin(), out.begin() + 1000));
  outcome w;
  a.async_write_some(net::buffer(out.data() + 1000, 500), record(w));
  settle(ctx);
  BOOST_TEST_REQUIRE(!w.done());
  bytes in(300);
  outcome r;
  b.async_read_some(net::buffer(in), record(r));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done() && w.done(); }));
  BOOST_TEST(r.n == 300u);
  BOOST_TEST(!w.ec);
  BOOST_TEST(w.n >= 1u);
  BOOST_TEST(w.n <= 300u); // no more than the room made
  BOOST_TEST(b.available() == 700u + w.n);
  bytes rest(700 + w.n);
  outcome r2;
  net::async_read(b, net::buffer(rest), record(r2));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r2.done(); }));
  in.insert(in.end(), rest.begin(), rest.end());
  BOOST_TEST(difference(in, pattern(1000 + w.n)) == "");
}

// flush(flush) past capacity when the ring has wrapped: the bytes stay in order.
BOOST_AUTO_TEST_CASE(flush_grows_a_wrapped_buffer) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx, {.capacity = 1000});
  const bytes out = pattern(4600);
  fill_pipe(ctx, a, bytes(out.begin(), out.begin() + 1000));
  bytes in(600);
  outcome r;
  net::async_read(b, net::buffer(in), record(r));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done(); }));
  BOOST_TEST_REQUIRE(r.n == 600u);
  fill_pipe(ctx, a, bytes(out.begin() + 1000, out.begin() + 1600)); // wraps around the ring
  outcome w;
  a.async_write_some(net::buffer(out.data() + 1600, 3000), record(w));
  settle(ctx);
  BOOST_TEST_REQUIRE(!w.done());
  BOOST_TEST(a.flush(flush_mode::flush) == 3000u);
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w.done(); }));
  BOOST_TEST(w.n == 3000u);
  bytes rest(4000);
  outcome r2;
  net::async_read(b, net::buffer(rest), record(r2));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r2.done(); }));
  in.insert(in.end(), rest.begin(), rest.end());
  BOOST_TEST(difference(in, out) == "");
}

BOOST_AUTO_TEST_CASE(flush_finished_on_empty_pipe_gives_eof) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  std::array<char, 8> buf{};
  outcome r;
  b.async_read_some(net::buffer(buf), record(r));
  settle(ctx);
  BOOST_TEST_REQUIRE(!r.done());
  BOOST_TEST(a.flush(flush_mode::finished) == 0u);
  BOOST_TEST(!r.done());
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done(); }));
  BOOST_TEST(r.ec == net::error::eof);
  BOOST_TEST(r.n == 0u);
}

BOOST_AUTO_TEST_CASE(flush_finished_moves_waiting_write_then_eof) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx, {.capacity = 1000});
  const bytes out = pattern(3000);
  fill_pipe(ctx, a, bytes(out.begin(), out.begin() + 1000));
  outcome w;
  a.async_write_some(net::buffer(out.data() + 1000, 2000), record(w));
  settle(ctx);
  BOOST_TEST_REQUIRE(!w.done());
  BOOST_TEST(a.flush(flush_mode::finished) == 2000u);
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w.done(); }));
  BOOST_TEST(!w.ec);
  BOOST_TEST(w.n == 2000u);
  bytes in;
  outcome r;
  net::async_read(b, net::dynamic_buffer(in), record(r));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done(); }));
  BOOST_TEST(r.ec == net::error::eof);
  BOOST_TEST(difference(in, out) == "");

  // finished ends only a's sending: b can still talk to a.
  const std::string reply = "reply";
  std::array<char, 16> buf{};
  outcome bw, ar;
  b.async_write_some(net::buffer(reply), record(bw));
  a.async_read_some(net::buffer(buf), record(ar));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return bw.done() && ar.done(); }));
  BOOST_TEST(!ar.ec);
  BOOST_TEST(as_string(buf.data(), ar.n) == reply);
}

BOOST_AUTO_TEST_CASE(capacity_zero_write_waits_for_reader) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx, {.capacity = 0});
  const bytes out = pattern(100);
  outcome w;
  a.async_write_some(net::buffer(out), record(w));
  settle(ctx);
  BOOST_TEST(!w.done()); // no buffer: nothing takes the bytes yet
  settle(ctx);
  BOOST_TEST(!w.done());
  BOOST_TEST(b.available() == 100u); // the waiting writer's bytes

  bytes in(64);
  outcome r;
  b.async_read_some(net::buffer(in), record(r));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done() && w.done(); }));
  BOOST_TEST(!r.ec);
  BOOST_TEST(!w.ec);
  BOOST_TEST(r.n == 64u);
  BOOST_TEST(w.n == 64u); // only what the reader took
  BOOST_TEST(difference(in, pattern(64)) == "");
  BOOST_TEST(b.available() == 0u); // nothing was buffered

  // Reader first: the writer's bytes go straight into its buffer.
  bytes in2(100);
  outcome r2;
  b.async_read_some(net::buffer(in2), record(r2));
  settle(ctx);
  BOOST_TEST_REQUIRE(!r2.done());
  outcome w2;
  a.async_write_some(net::buffer(out.data() + 64, 36), record(w2));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r2.done() && w2.done(); }));
  BOOST_TEST(r2.n == 36u);
  BOOST_TEST(w2.n == 36u);
  in2.resize(r2.n);
  BOOST_TEST(difference(in2, pattern(36, 1, 64)) == "");
  BOOST_TEST(b.available() == 0u);
}

BOOST_AUTO_TEST_CASE(capacity_zero_flush_moves_the_waiting_write) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx, {.capacity = 0});
  const bytes out = pattern(100);
  outcome w;
  a.async_write_some(net::buffer(out), record(w));
  settle(ctx);
  BOOST_TEST_REQUIRE(!w.done());
  BOOST_TEST(a.flush(flush_mode::normal) == 0u); // no capacity to move into
  BOOST_TEST(a.flush(flush_mode::flush) == 100u);
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w.done(); }));
  BOOST_TEST(w.n == 100u);
  bytes in(100);
  outcome r;
  net::async_read(b, net::buffer(in), record(r));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done(); }));
  BOOST_TEST(difference(in, out) == "");
}

BOOST_AUTO_TEST_SUITE_END()

// --- Zero-length operations -------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(zero_length)

BOOST_AUTO_TEST_CASE(zero_length_read_beside_pending_read) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  std::array<char, 16> buf{};
  outcome pending, zero;
  b.async_read_some(net::buffer(buf), record(pending));
  settle(ctx);
  BOOST_TEST_REQUIRE(!pending.done());
  b.async_read_some(net::mutable_buffer(), record(zero));
  BOOST_TEST(!zero.done()); // posted
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return zero.done(); }));
  BOOST_TEST(!zero.ec);
  BOOST_TEST(zero.n == 0u);
  BOOST_TEST(!pending.done());

  const std::string msg = "after zero";
  outcome w;
  a.async_write_some(net::buffer(msg), record(w));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return pending.done(); }));
  BOOST_TEST(!pending.ec);
  BOOST_TEST(as_string(buf.data(), pending.n) == msg);
  BOOST_TEST(zero.calls == 1);
}

BOOST_AUTO_TEST_CASE(zero_length_read_on_empty_pipe) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  outcome zero;
  b.async_read_some(net::mutable_buffer(), record(zero));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return zero.done(); }));
  BOOST_TEST(!zero.ec); // neither waits nor reports eof
  BOOST_TEST(zero.n == 0u);
}

BOOST_AUTO_TEST_CASE(zero_length_write_beside_pending_write) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx, {.capacity = 1000});
  const bytes out = pattern(1200);
  fill_pipe(ctx, a, bytes(out.begin(), out.begin() + 1000));
  outcome pending, zero;
  a.async_write_some(net::buffer(out.data() + 1000, 200), record(pending));
  settle(ctx);
  BOOST_TEST_REQUIRE(!pending.done());
  a.async_write_some(net::const_buffer(), record(zero));
  BOOST_TEST(!zero.done());
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return zero.done(); }));
  BOOST_TEST(!zero.ec);
  BOOST_TEST(zero.n == 0u);
  BOOST_TEST(!pending.done());
  BOOST_TEST(b.available() == 1200u); // it used no capacity

  bytes in(1200);
  outcome r;
  net::async_read(b, net::buffer(in), record(r));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done() && pending.done(); }));
  BOOST_TEST(!pending.ec);
  BOOST_TEST(pending.n == 200u);
  BOOST_TEST(difference(in, out) == "");
}

// A zero-length write does not satisfy a waiting reader, nor does it signal eof.
BOOST_AUTO_TEST_CASE(zero_length_write_does_not_wake_reader) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx, {.capacity = 0});
  std::array<char, 8> buf{};
  outcome r, zero;
  b.async_read_some(net::buffer(buf), record(r));
  a.async_write_some(net::const_buffer(), record(zero));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return zero.done(); }));
  settle(ctx);
  BOOST_TEST(!zero.ec);
  BOOST_TEST(!r.done());
  const std::string msg = "z";
  outcome w;
  a.async_write_some(net::buffer(msg), record(w));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done(); }));
  BOOST_TEST(as_string(buf.data(), r.n) == msg);
}

BOOST_AUTO_TEST_SUITE_END()

// --- Cancellation -----------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(cancellation)

BOOST_AUTO_TEST_CASE(cancel_pending_read_each_type) {
  for (auto type : cancellation_types) {
    BOOST_TEST_CONTEXT("cancellation type " << name(type)) {
      net::io_context ctx;
      auto [a, b] = sluice::make_pipe(ctx);
      net::cancellation_signal signal;
      std::array<char, 64> buf{};
      outcome r;
      b.async_read_some(net::buffer(buf), net::bind_cancellation_slot(signal.slot(), record(r)));
      settle(ctx);
      BOOST_TEST_REQUIRE(!r.done());
      signal.emit(type);
      BOOST_TEST(!r.done()); // not from inside emit()
      BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done(); }));
      BOOST_TEST(r.ec == net::error::operation_aborted);
      BOOST_TEST(r.n == 0u);

      // Nothing lost, nothing duplicated: a later write is read whole, once.
      const std::string msg = "after cancellation";
      std::array<char, 64> buf2{};
      outcome w, r2;
      a.async_write_some(net::buffer(msg), record(w));
      b.async_read_some(net::buffer(buf2), record(r2));
      BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w.done() && r2.done(); }));
      BOOST_TEST(!r2.ec);
      BOOST_TEST(as_string(buf2.data(), r2.n) == msg);
      BOOST_TEST(b.available() == 0u);
      BOOST_TEST(as_string(buf.data(), 4) == std::string(4, '\0')); // the aborted read got none

      // A late emit does nothing: not to the completed operations, not to a new pending one.
      signal.emit(type);
      outcome r3;
      b.async_read_some(net::buffer(buf2), record(r3));
      signal.emit(type);
      settle(ctx);
      BOOST_TEST(r.calls == 1);
      BOOST_TEST(r2.calls == 1);
      BOOST_TEST(!r3.done());
      const std::string more = "more";
      outcome w2;
      a.async_write_some(net::buffer(more), record(w2));
      BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r3.done(); }));
      BOOST_TEST(!r3.ec);
      BOOST_TEST(as_string(buf2.data(), r3.n) == more);
    }
  }
}

BOOST_AUTO_TEST_CASE(cancel_pending_write_each_type) {
  for (auto type : cancellation_types) {
    BOOST_TEST_CONTEXT("cancellation type " << name(type)) {
      net::io_context ctx;
      auto [a, b] = sluice::make_pipe(ctx, {.capacity = 1000});
      const bytes out = pattern(1500);
      fill_pipe(ctx, a, bytes(out.begin(), out.begin() + 1000));
      net::cancellation_signal signal;
      outcome w;
      a.async_write_some(net::buffer(out.data() + 1000, 500),
                         net::bind_cancellation_slot(signal.slot(), record(w)));
      settle(ctx);
      BOOST_TEST_REQUIRE(!w.done());
      signal.emit(type);
      BOOST_TEST(!w.done());
      BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w.done(); }));
      BOOST_TEST(w.ec == net::error::operation_aborted);
      BOOST_TEST(w.n == 0u);
      BOOST_TEST(b.available() == 1000u); // none of the cancelled write's bytes

      bytes in(1000);
      outcome r;
      net::async_read(b, net::buffer(in), record(r));
      BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done(); }));
      BOOST_TEST(difference(in, bytes(out.begin(), out.begin() + 1000)) == "");

      // The stream goes on where it was: the next write is the next thing read.
      const bytes next = pattern(300, 9);
      bytes in2(300);
      outcome w2, r2, extra;
      a.async_write_some(net::buffer(next), record(w2));
      net::async_read(b, net::buffer(in2), record(r2));
      BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w2.done() && r2.done(); }));
      BOOST_TEST(difference(in2, next) == "");
      std::array<char, 8> buf{};
      b.async_read_some(net::buffer(buf), record(extra));
      settle(ctx);
      BOOST_TEST(!extra.done()); // nothing more was in the pipe
      signal.emit(type);         // late: harmless
      settle(ctx);
      BOOST_TEST(w.calls == 1);
      BOOST_TEST(!extra.done());
      b.cancel();
      BOOST_TEST_REQUIRE(run_until(ctx, [&] { return extra.done(); }));
      BOOST_TEST(extra.ec == net::error::operation_aborted);
    }
  }
}

// The signal arrives after the operation completed but before its handler ran: the handler
// gets the data, not operation_aborted.
BOOST_AUTO_TEST_CASE(emit_after_completion_before_handler_runs) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  net::cancellation_signal signal;
  std::array<char, 16> buf{};
  outcome r;
  b.async_read_some(net::buffer(buf), net::bind_cancellation_slot(signal.slot(), record(r)));
  settle(ctx);
  BOOST_TEST_REQUIRE(!r.done());
  const std::string msg = "raced";
  outcome w;
  a.async_write_some(net::buffer(msg), record(w)); // completes the read; its handler is queued
  signal.emit(net::cancellation_type::terminal);
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done() && w.done(); }));
  BOOST_TEST(!r.ec);
  BOOST_TEST(as_string(buf.data(), r.n) == msg);
  BOOST_TEST(r.calls == 1);
}

BOOST_AUTO_TEST_CASE(cancel_end_aborts_its_read_and_write) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx, {.capacity = 1000});
  const bytes out = pattern(1200);
  fill_pipe(ctx, a, bytes(out.begin(), out.begin() + 1000));
  std::array<char, 8> buf{};
  outcome ar, aw;
  a.async_read_some(net::buffer(buf), record(ar));
  a.async_write_some(net::buffer(out.data() + 1000, 200), record(aw));
  settle(ctx);
  BOOST_TEST_REQUIRE(!ar.done());
  BOOST_TEST_REQUIRE(!aw.done());

  b.cancel(); // the other end's cancel() leaves a's operations alone
  a.cancel();
  BOOST_TEST(!ar.done());
  BOOST_TEST(!aw.done());
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return ar.done() && aw.done(); }));
  BOOST_TEST(ar.ec == net::error::operation_aborted);
  BOOST_TEST(aw.ec == net::error::operation_aborted);
  BOOST_TEST(ar.n == 0u);
  BOOST_TEST(aw.n == 0u);
  BOOST_TEST(b.available() == 1000u);
  a.cancel(); // nothing pending: a no-op

  // Both directions carry on exactly.
  bytes in(1000);
  const std::string msg = "back";
  outcome r, bw, ar2;
  net::async_read(b, net::buffer(in), record(r));
  b.async_write_some(net::buffer(msg), record(bw));
  a.async_read_some(net::buffer(buf), record(ar2));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done() && bw.done() && ar2.done(); }));
  BOOST_TEST(difference(in, bytes(out.begin(), out.begin() + 1000)) == "");
  BOOST_TEST(as_string(buf.data(), ar2.n) == msg);
}

BOOST_AUTO_TEST_CASE(other_end_cancel_leaves_pending_read) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  std::array<char, 8> buf{};
  outcome r;
  b.async_read_some(net::buffer(buf), record(r));
  settle(ctx);
  a.cancel();
  settle(ctx);
  BOOST_TEST(!r.done());
  b.cancel();
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done(); }));
  BOOST_TEST(r.ec == net::error::operation_aborted);
}

// An operation that completes at once never sees the signal; the slot may be reused later.
BOOST_AUTO_TEST_CASE(slot_reused_by_next_operation) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  net::cancellation_signal signal;
  const std::string msg = "first";
  outcome w;
  a.async_write_some(net::buffer(msg), net::bind_cancellation_slot(signal.slot(), record(w)));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w.done(); }));
  std::array<char, 16> buf{};
  outcome r1, r2;
  b.async_read_some(net::buffer(buf), net::bind_cancellation_slot(signal.slot(), record(r1)));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r1.done(); }));
  BOOST_TEST(as_string(buf.data(), r1.n) == msg);
  b.async_read_some(net::buffer(buf), net::bind_cancellation_slot(signal.slot(), record(r2)));
  settle(ctx);
  BOOST_TEST_REQUIRE(!r2.done());
  signal.emit(net::cancellation_type::total);
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r2.done(); }));
  BOOST_TEST(r2.ec == net::error::operation_aborted);
  BOOST_TEST(r1.calls == 1);
}

BOOST_AUTO_TEST_SUITE_END()

// --- Completion: never inline, allocator, executors -------------------------------------

BOOST_AUTO_TEST_SUITE(completion)

BOOST_AUTO_TEST_CASE(handlers_never_called_inline) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  const std::string msg = "hello";
  std::array<char, 16> buf{};

  // Immediate results: the write has room, then the read has data.
  bool wrote = false, read = false;
  a.async_write_some(net::buffer(msg), [&](error_code, std::size_t) { wrote = true; });
  BOOST_TEST(!wrote);
  b.async_read_some(net::buffer(buf), [&](error_code, std::size_t) { read = true; });
  BOOST_TEST(!read);
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return wrote && read; }));

  // Parked: the read waits; the write that satisfies it does not run its handler either.
  bool parked_read = false, writer = false;
  b.async_read_some(net::buffer(buf), [&](error_code, std::size_t) { parked_read = true; });
  BOOST_TEST(!parked_read);
  settle(ctx);
  BOOST_TEST_REQUIRE(!parked_read);
  a.async_write_some(net::buffer(msg), [&](error_code, std::size_t) { writer = true; });
  BOOST_TEST(!parked_read);
  BOOST_TEST(!writer);
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return parked_read && writer; }));

  // Completed by close(): not from inside close() either.
  bool aborted = false;
  b.async_read_some(net::buffer(buf), [&](error_code, std::size_t) { aborted = true; });
  settle(ctx);
  b.close();
  BOOST_TEST(!aborted);
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return aborted; }));
}

// A handler that starts the next operation from inside the previous completion.
BOOST_AUTO_TEST_CASE(handlers_chain_without_recursion) {
  net::io_context ctx;
  auto p = sluice::make_pipe(ctx, {.capacity = 1});
  sluice::pipe& a = p.first;
  sluice::pipe& b = p.second;
  const bytes out = pattern(2000);
  int depth = 0, max_depth = 0;
  std::size_t sent = 0;
  std::function<void(error_code, std::size_t)> on_write = [&](error_code ec, std::size_t n) {
    ++depth;
    max_depth = std::max(max_depth, depth);
    sent += n;
    if (!ec && sent < out.size()) // a copy: see lvalue_handler_is_copied_not_moved
      a.async_write_some(net::buffer(out.data() + sent, out.size() - sent),
                         std::function(on_write));
    --depth;
  };
  a.async_write_some(net::buffer(out), std::function(on_write));
  bytes in(out.size());
  outcome r;
  net::async_read(b, net::buffer(in), record(r));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done() && sent == out.size(); }));
  BOOST_TEST(max_depth == 1); // no handler ran inside another
  BOOST_TEST(difference(in, out) == "");
}

// Like Asio's own initiating functions, a handler passed as an lvalue is copied: the
// caller's object is left as it was (Asio decay-copies it, see detail::non_const_lvalue).
BOOST_AUTO_TEST_CASE(lvalue_handler_is_copied_not_moved) {
  struct handler {
    std::shared_ptr<outcome> result;
    void operator()(error_code ec, std::size_t n) const { record (*result)(ec, n); }
  };
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  const std::string msg = "lvalue";
  handler write_handler{std::make_shared<outcome>()};
  a.async_write_some(net::buffer(msg), write_handler); // completes at once (posted)
  BOOST_TEST(write_handler.result != nullptr);
  std::array<char, 16> buf{};
  handler read_handler{std::make_shared<outcome>()};
  b.async_read_some(net::buffer(buf), read_handler); // data is there: completes at once
  BOOST_TEST(read_handler.result != nullptr);
  handler parked_handler{std::make_shared<outcome>()};
  b.async_read_some(net::buffer(buf), parked_handler); // parks
  BOOST_TEST(parked_handler.result != nullptr);
  b.cancel();
  ctx.run_for(bound);
  BOOST_TEST(ctx.stopped());
  if (write_handler.result)
    BOOST_TEST(write_handler.result->n == msg.size());
  if (parked_handler.result)
    BOOST_TEST(parked_handler.result->ec == net::error::operation_aborted);
}

BOOST_AUTO_TEST_CASE(handler_allocator_is_used) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  allocation_counts parked;
  std::array<char, 16> buf{};
  outcome r;
  b.async_read_some(net::buffer(buf),
                    net::bind_allocator(counting_allocator<void>(&parked), record(r)));
  BOOST_TEST(parked.allocations > 0u); // the parked operation
  const std::string msg = "allocated";
  allocation_counts immediate;
  outcome w;
  a.async_write_some(net::buffer(msg),
                     net::bind_allocator(counting_allocator<void>(&immediate), record(w)));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done() && w.done(); }));
  BOOST_TEST(as_string(buf.data(), r.n) == msg);
  BOOST_TEST(parked.deallocations == parked.allocations); // all given back
  BOOST_TEST(immediate.deallocations == immediate.allocations);
  BOOST_TEST_MESSAGE("allocations: parked read " << parked.allocations << ", immediate write "
                                                 << immediate.allocations);
}

BOOST_AUTO_TEST_CASE(ends_on_two_io_contexts) {
  net::io_context c1, c2;
  auto [a, b] = sluice::make_pipe(c1.get_executor(), c2.get_executor());
  static_assert(std::is_same_v<decltype(a), sluice::basic_pipe<net::io_context::executor_type>>);
  BOOST_TEST((a.get_executor() == c1.get_executor()));
  BOOST_TEST((b.get_executor() == c2.get_executor()));
  BOOST_TEST(a.partner() == &b);

  std::array<char, 16> buf{};
  bool read_on_c2 = false, read_on_c1 = true, write_on_c1 = false, write_on_c2 = true;
  outcome r, w;
  b.async_read_some(net::buffer(buf), [&](error_code ec, std::size_t n) {
    read_on_c2 = c2.get_executor().running_in_this_thread();
    read_on_c1 = c1.get_executor().running_in_this_thread();
    record(r)(ec, n);
  });
  settle(c2);
  BOOST_TEST_REQUIRE(!r.done());
  const std::string msg = "across";
  a.async_write_some(net::buffer(msg), [&](error_code ec, std::size_t n) {
    write_on_c1 = c1.get_executor().running_in_this_thread();
    write_on_c2 = c2.get_executor().running_in_this_thread();
    record(w)(ec, n);
  });
  settle(c1);
  BOOST_TEST(w.done());
  BOOST_TEST(!r.done()); // b's handler waits for b's context
  settle(c1);
  BOOST_TEST(!r.done());
  settle(c2);
  BOOST_TEST(r.done());
  BOOST_TEST(read_on_c2);
  BOOST_TEST(!read_on_c1);
  BOOST_TEST(write_on_c1);
  BOOST_TEST(!write_on_c2);
  BOOST_TEST(as_string(buf.data(), r.n) == msg);
}

// Each end's context on its own thread; any_io_executor ends.
BOOST_AUTO_TEST_CASE(ends_on_two_threads) {
  net::io_context c1, c2;
  auto p = sluice::make_pipe(net::any_io_executor(c1.get_executor()),
                             net::any_io_executor(c2.get_executor()));
  static_assert(std::is_same_v<decltype(p), std::pair<sluice::pipe, sluice::pipe>>);
  const bytes out = pattern(300000);
  bytes in(out.size());
  std::thread::id reader_thread, writer_thread, t1_id, t2_id;
  outcome r, w;
  net::async_read(p.second, net::buffer(in), [&](error_code ec, std::size_t n) {
    reader_thread = std::this_thread::get_id();
    record(r)(ec, n);
  });
  net::async_write(p.first, net::buffer(out), [&](error_code ec, std::size_t n) {
    writer_thread = std::this_thread::get_id();
    record(w)(ec, n);
  });
  std::thread t1([&] {
    t1_id = std::this_thread::get_id();
    c1.run_for(bound);
  });
  std::thread t2([&] {
    t2_id = std::this_thread::get_id();
    c2.run_for(bound);
  });
  t1.join();
  t2.join();
  BOOST_TEST_REQUIRE(r.done());
  BOOST_TEST_REQUIRE(w.done());
  BOOST_TEST(c1.stopped()); // both ran out of work, not into the bound
  BOOST_TEST(c2.stopped());
  BOOST_TEST((writer_thread == t1_id));
  BOOST_TEST((reader_thread == t2_id));
  BOOST_TEST(!r.ec);
  BOOST_TEST(difference(in, out) == "");
}

// Ends whose executor is `ex`, which runs in `strand`: the handlers run in the strand.
template <class Executor>
void check_ends_on_strand(net::io_context& ctx, const Executor& ex,
                          const net::strand<net::io_context::executor_type>& strand) {
  auto p = sluice::make_pipe(ex);
  std::array<char, 16> buf{};
  bool read_in_strand = false, write_in_strand = false;
  outcome r, w;
  p.second.async_read_some(net::buffer(buf), [&](error_code ec, std::size_t n) {
    read_in_strand = strand.running_in_this_thread();
    record(r)(ec, n);
  });
  settle(ctx);
  BOOST_TEST_REQUIRE(!r.done());
  const std::string msg = "strand";
  p.first.async_write_some(net::buffer(msg), [&](error_code ec, std::size_t n) {
    write_in_strand = strand.running_in_this_thread();
    record(w)(ec, n);
  });
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done() && w.done(); }));
  BOOST_TEST(read_in_strand);
  BOOST_TEST(write_in_strand);
  BOOST_TEST(as_string(buf.data(), r.n) == msg);
}

BOOST_AUTO_TEST_CASE(ends_on_a_strand) {
  net::io_context ctx;
  auto strand = net::make_strand(ctx);
  BOOST_TEST_CONTEXT("strand<io_context::executor_type>") {
    check_ends_on_strand(ctx, strand, strand);
  }
  BOOST_TEST_CONTEXT("any_io_executor holding a strand") {
    check_ends_on_strand(ctx, net::any_io_executor(strand), strand);
  }
}

namespace {
// The pipe's ends run on c1; the handlers are bound to `make_executor(c2)`. They must run
// there, for a parked and for an immediate result alike.
template <class MakeExecutor>
void handlers_follow_bound_executor(MakeExecutor make_executor) {
  net::io_context c1, c2;
  auto p = sluice::make_pipe(c1);
  const auto bound_to = make_executor(c2);
  std::array<char, 16> buf{};
  bool parked_on_c2 = false, immediate_on_c2 = false;
  outcome r, w;
  p.second.async_read_some(net::buffer(buf),
                           net::bind_executor(bound_to, [&](error_code ec, std::size_t n) {
                             parked_on_c2 = c2.get_executor().running_in_this_thread();
                             record(r)(ec, n);
                           }));
  settle(c1);
  BOOST_TEST_REQUIRE(!r.done());
  const std::string msg = "bound";
  p.first.async_write_some(net::buffer(msg),
                           net::bind_executor(bound_to, [&](error_code ec, std::size_t n) {
                             immediate_on_c2 = c2.get_executor().running_in_this_thread();
                             record(w)(ec, n);
                           }));
  settle(c1); // c1 may pass the handlers on, but must not run them
  BOOST_TEST(!r.done());
  BOOST_TEST(!w.done());
  BOOST_TEST_REQUIRE(run_until(c2, [&] {
    settle(c1);
    return r.done() && w.done();
  }));
  BOOST_TEST(parked_on_c2);
  BOOST_TEST(immediate_on_c2);
  BOOST_TEST(as_string(buf.data(), r.n) == msg);
}
} // namespace

// The handler's associated executor wins over the end's.
BOOST_AUTO_TEST_CASE(handler_associated_executor_is_used) {
  BOOST_TEST_CONTEXT("io_context executor") {
    handlers_follow_bound_executor([](net::io_context& c) { return c.get_executor(); });
  }
  BOOST_TEST_CONTEXT("any_io_executor") {
    handlers_follow_bound_executor(
        [](net::io_context& c) { return net::any_io_executor(c.get_executor()); });
  }
  BOOST_TEST_CONTEXT("strand") {
    handlers_follow_bound_executor([](net::io_context& c) { return net::make_strand(c); });
  }
  BOOST_TEST_CONTEXT("any_io_executor holding a strand") {
    handlers_follow_bound_executor(
        [](net::io_context& c) { return net::any_io_executor(net::make_strand(c)); });
  }
}

BOOST_AUTO_TEST_CASE(rebind_executor) {
  using io_pipe = sluice::pipe::rebind_executor<net::io_context::executor_type>::other;
  static_assert(std::is_same_v<io_pipe, sluice::basic_pipe<net::io_context::executor_type>>);
  static_assert(std::is_same_v<io_pipe::executor_type, net::io_context::executor_type>);
  net::io_context ctx;
  std::pair<io_pipe, io_pipe> p = sluice::make_pipe(ctx.get_executor());
  BOOST_TEST((p.first.get_executor() == ctx.get_executor()));
  BOOST_TEST(p.first.partner() == &p.second);
  const std::string msg = "rebound";
  std::array<char, 16> buf{};
  outcome w, r;
  p.first.async_write_some(net::buffer(msg), record(w));
  p.second.async_read_some(net::buffer(buf), record(r));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w.done() && r.done(); }));
  BOOST_TEST(as_string(buf.data(), r.n) == msg);
}

BOOST_AUTO_TEST_CASE(as_default_on_use_awaitable) {
  using awaitable_pipe = net::use_awaitable_t<>::as_default_on_t<sluice::pipe>;
  net::io_context ctx;
  auto p = sluice::make_pipe(awaitable_pipe::executor_type(ctx.get_executor()));
  static_assert(std::is_same_v<decltype(p.first), awaitable_pipe>);
  std::string got;
  std::exception_ptr error;
  net::co_spawn(
      ctx,
      [&]() -> net::awaitable<void> {
        const std::string msg = "default token";
        std::size_t n = co_await p.first.async_write_some(net::buffer(msg));
        std::array<char, 32> buf{};
        std::size_t m = co_await p.second.async_read_some(net::buffer(buf));
        BOOST_TEST(n == msg.size());
        got.assign(buf.data(), m);
      },
      [&](std::exception_ptr e) { error = e; });
  ctx.run_for(bound);
  BOOST_TEST(ctx.stopped());
  BOOST_TEST(!error);
  BOOST_TEST(got == "default token");
}

BOOST_AUTO_TEST_CASE(second_pending_read_or_write_is_already_started) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx, {.capacity = 1000});
  std::array<char, 16> buf{}, buf2{};
  outcome first, second;
  b.async_read_some(net::buffer(buf), record(first));
  settle(ctx);
  BOOST_TEST_REQUIRE(!first.done());
  b.async_read_some(net::buffer(buf2), record(second));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return second.done(); }));
  BOOST_TEST(second.ec == net::error::already_started);
  BOOST_TEST(second.n == 0u);
  BOOST_TEST(!first.done()); // the first one is undisturbed
  const std::string msg = "first";
  outcome w;
  a.async_write_some(net::buffer(msg), record(w));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return first.done(); }));
  BOOST_TEST(as_string(buf.data(), first.n) == msg);
  BOOST_TEST(second.calls == 1);

  // Writes: one waits on a full buffer, the second is refused.
  const bytes out = pattern(1300);
  fill_pipe(ctx, a, bytes(out.begin(), out.begin() + 1000));
  outcome w1, w2;
  a.async_write_some(net::buffer(out.data() + 1000, 200), record(w1));
  settle(ctx);
  BOOST_TEST_REQUIRE(!w1.done());
  a.async_write_some(net::buffer(out.data() + 1200, 100), record(w2));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w2.done(); }));
  BOOST_TEST(w2.ec == net::error::already_started);
  BOOST_TEST(!w1.done());
  bytes in(1200);
  outcome r;
  net::async_read(b, net::buffer(in), record(r));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done() && w1.done(); }));
  BOOST_TEST(w1.n == 200u);
  BOOST_TEST(difference(in, bytes(out.begin(), out.begin() + 1200)) == "");
}

BOOST_AUTO_TEST_SUITE_END()

// --- Completion tokens ------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(tokens)

BOOST_AUTO_TEST_CASE(use_awaitable_token) {
  net::io_context ctx;
  auto p = sluice::make_pipe(ctx, {.capacity = 4096});
  const bytes out = pattern(50000);
  bytes in(out.size());
  std::size_t wrote = 0, read = 0;
  std::exception_ptr writer_error, reader_error;
  net::co_spawn(
      ctx,
      [&]() -> net::awaitable<void> {
        wrote = co_await net::async_write(p.first, net::buffer(out), net::use_awaitable);
      },
      [&](std::exception_ptr e) { writer_error = e; });
  net::co_spawn(
      ctx,
      [&]() -> net::awaitable<void> {
        read = co_await net::async_read(p.second, net::buffer(in), net::use_awaitable);
        // Errors arrive as exceptions.
        p.first.close();
        std::array<char, 4> buf{};
        try {
          co_await p.second.async_read_some(net::buffer(buf), net::use_awaitable);
          BOOST_ERROR("a read after the partner closed succeeded");
        } catch (const boost::system::system_error& e) {
          BOOST_TEST(e.code() == net::error::eof);
        }
      },
      [&](std::exception_ptr e) { reader_error = e; });
  ctx.run_for(bound);
  BOOST_TEST(ctx.stopped());
  BOOST_TEST(!writer_error);
  BOOST_TEST(!reader_error);
  BOOST_TEST(wrote == out.size());
  BOOST_TEST(read == out.size());
  BOOST_TEST(difference(in, out) == "");
}

namespace {
using namespace boost::asio::experimental::awaitable_operators;

// A read raced against a timer with ||. `index` is which one won.
net::awaitable<void> read_or_timeout(sluice::pipe& p, net::steady_timer& timer,
                                     std::array<char, 64>& buf, std::size_t& index,
                                     std::size_t& n) {
  auto result = co_await (p.async_read_some(net::buffer(buf), net::use_awaitable) ||
                          timer.async_wait(net::use_awaitable));
  index = result.index();
  if (result.index() == 0)
    n = std::get<0>(result);
}
} // namespace

BOOST_AUTO_TEST_CASE(awaitable_or_timer_wins_and_no_data_is_lost) {
  net::io_context ctx;
  auto p = sluice::make_pipe(ctx);
  net::steady_timer timer(ctx, 1ms); // no data is coming: the timer wins
  std::array<char, 64> buf{};
  std::size_t index = 99, n = 0;
  std::exception_ptr error;
  net::co_spawn(ctx, read_or_timeout(p.second, timer, buf, index, n),
                [&](std::exception_ptr e) { error = e; });
  ctx.run_for(bound);
  BOOST_TEST_REQUIRE(ctx.stopped()); // the read was cancelled, or run() would not return
  BOOST_TEST(!error);
  BOOST_TEST(index == 1u);

  // The cancelled read took nothing: the next write is read whole by the next read.
  const std::string msg = "after the timeout";
  std::string got;
  net::co_spawn(
      ctx,
      [&]() -> net::awaitable<void> {
        co_await p.first.async_write_some(net::buffer(msg), net::use_awaitable);
        std::size_t m = co_await p.second.async_read_some(net::buffer(buf), net::use_awaitable);
        got.assign(buf.data(), m);
      },
      [&](std::exception_ptr e) { error = e; });
  ctx.restart();
  ctx.run_for(bound);
  BOOST_TEST(ctx.stopped());
  BOOST_TEST(!error);
  BOOST_TEST(got == msg);
  BOOST_TEST(p.second.available() == 0u);
}

BOOST_AUTO_TEST_CASE(awaitable_or_data_wins) {
  net::io_context ctx;
  auto p = sluice::make_pipe(ctx);
  // The timer would take far longer than the test's bound; the data must win and cancel it.
  net::steady_timer timer(ctx, 1h);
  std::array<char, 64> buf{};
  std::size_t index = 99, n = 0;
  std::exception_ptr error, writer_error;
  const std::string msg = "data first";
  net::co_spawn(ctx, read_or_timeout(p.second, timer, buf, index, n),
                [&](std::exception_ptr e) { error = e; });
  net::co_spawn(
      ctx,
      [&]() -> net::awaitable<void> {
        co_await net::post(ctx, net::use_awaitable); // let the read park first
        co_await p.first.async_write_some(net::buffer(msg), net::use_awaitable);
      },
      [&](std::exception_ptr e) { writer_error = e; });
  ctx.run_for(bound);
  BOOST_TEST(ctx.stopped());
  BOOST_TEST(!error);
  BOOST_TEST(!writer_error);
  BOOST_TEST(index == 0u);
  BOOST_TEST(as_string(buf.data(), n) == msg);

  // Data already there when the race starts.
  const std::string msg2 = "already there";
  outcome w;
  p.first.async_write_some(net::buffer(msg2), record(w));
  net::steady_timer timer2(ctx, 1h);
  index = 99;
  net::co_spawn(ctx, read_or_timeout(p.second, timer2, buf, index, n),
                [&](std::exception_ptr e) { error = e; });
  ctx.restart();
  ctx.run_for(bound);
  BOOST_TEST(ctx.stopped());
  BOOST_TEST(!error);
  BOOST_TEST(index == 0u);
  BOOST_TEST(as_string(buf.data(), n) == msg2);
}

BOOST_AUTO_TEST_CASE(deferred_token) {
  net::io_context ctx;
  auto p = sluice::make_pipe(ctx);
  sluice::pipe& a = p.first;
  sluice::pipe& b = p.second;
  const std::string msg = "deferred";
  auto write = a.async_write_some(net::buffer(msg), net::deferred);
  settle(ctx);
  BOOST_TEST(b.available() == 0u); // not started until invoked
  outcome w;
  std::move(write)(record(w));
  BOOST_TEST(b.available() == msg.size());
  std::array<char, 16> buf{};
  auto read = b.async_read_some(net::buffer(buf), net::deferred);
  outcome r;
  std::move(read)(record(r));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w.done() && r.done(); }));
  BOOST_TEST(w.n == msg.size());
  BOOST_TEST(as_string(buf.data(), r.n) == msg);

  // Chained with deferred's continuation, and awaited.
  std::string got;
  std::exception_ptr error;
  net::co_spawn(
      ctx,
      [&]() -> net::awaitable<void> {
        auto echo = a.async_write_some(net::buffer(msg), net::deferred) |
                    net::deferred([&](error_code ec, std::size_t) {
                      return net::deferred.when(!ec)
                          .then(b.async_read_some(net::buffer(buf), net::deferred))
                          .otherwise(net::deferred.values(ec, std::size_t{0}));
                    });
        std::size_t m = co_await std::move(echo)(net::use_awaitable);
        got.assign(buf.data(), m);
      },
      [&](std::exception_ptr e) { error = e; });
  ctx.restart();
  ctx.run_for(bound);
  BOOST_TEST(!error);
  BOOST_TEST(got == msg);
}

BOOST_AUTO_TEST_CASE(use_future_token) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  background runner(ctx);
  std::array<char, 16> buf{};
  const std::string msg = "future";
  std::future<std::size_t> read = b.async_read_some(net::buffer(buf), net::use_future);
  std::future<std::size_t> wrote = a.async_write_some(net::buffer(msg), net::use_future);
  BOOST_TEST_REQUIRE((wrote.wait_for(bound) == std::future_status::ready));
  BOOST_TEST_REQUIRE((read.wait_for(bound) == std::future_status::ready));
  BOOST_TEST(wrote.get() == msg.size());
  std::size_t n = read.get();
  BOOST_TEST(as_string(buf.data(), n) == msg);

  a.close();
  std::future<std::size_t> bad = a.async_read_some(net::buffer(buf), net::use_future);
  std::future<std::size_t> eof = b.async_read_some(net::buffer(buf), net::use_future);
  BOOST_TEST_REQUIRE((bad.wait_for(bound) == std::future_status::ready));
  BOOST_TEST_REQUIRE((eof.wait_for(bound) == std::future_status::ready));
  // Join before get(): the context's thread may still be releasing its reference to the
  // stored exception, and libstdc++'s exception_ptr counts references in code that
  // ThreadSanitizer does not see (a false data race on the exception object otherwise).
  runner.stop();
  BOOST_CHECK_EXCEPTION(
      bad.get(), boost::system::system_error,
      [](const boost::system::system_error& e) { return e.code() == net::error::bad_descriptor; });
  BOOST_CHECK_EXCEPTION(
      eof.get(), boost::system::system_error,
      [](const boost::system::system_error& e) { return e.code() == net::error::eof; });
}

BOOST_AUTO_TEST_CASE(as_tuple_token) {
  net::io_context ctx;
  auto p = sluice::make_pipe(ctx);
  const std::string msg = "tuple";
  std::string got;
  error_code ok_ec, eof_ec, closed_ec;
  std::exception_ptr error;
  net::co_spawn(
      ctx,
      [&]() -> net::awaitable<void> {
        auto [wec, wn] =
            co_await p.first.async_write_some(net::buffer(msg), net::as_tuple(net::use_awaitable));
        BOOST_TEST(wn == msg.size());
        std::array<char, 16> buf{};
        auto [rec, rn] = co_await p.second.async_read_some(
            net::buffer(buf), net::experimental::as_tuple(net::use_awaitable));
        ok_ec = rec;
        got.assign(buf.data(), rn);
        p.first.close();
        auto [eec, en] =
            co_await p.second.async_read_some(net::buffer(buf), net::as_tuple(net::use_awaitable));
        eof_ec = eec;
        auto [cec, cn] = co_await p.first.async_write_some(
            net::buffer(msg), net::experimental::as_tuple(net::use_awaitable));
        closed_ec = cec;
        BOOST_TEST(en == 0u);
        BOOST_TEST(cn == 0u);
        BOOST_TEST(!wec);
      },
      [&](std::exception_ptr e) { error = e; });
  ctx.run_for(bound);
  BOOST_TEST(ctx.stopped());
  BOOST_TEST(!error);
  BOOST_TEST(!ok_ec);
  BOOST_TEST(got == msg);
  BOOST_TEST(eof_ec == net::error::eof);
  BOOST_TEST(closed_ec == net::error::bad_descriptor);

  // With a plain callback too.
  auto q = sluice::make_pipe(ctx);
  std::optional<std::tuple<error_code, std::size_t>> result;
  q.first.async_write_some(
      net::buffer(msg), net::as_tuple([&](std::tuple<error_code, std::size_t> t) { result = t; }));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return result.has_value(); }));
  BOOST_TEST(!std::get<0>(*result));
  BOOST_TEST(std::get<1>(*result) == msg.size());
}

BOOST_AUTO_TEST_SUITE_END()
