// sluice::pipe, the type and its ends: what the type is, partner() links through moves,
// close and destruction, and pending operations as outstanding work.
#include <boost/test/unit_test.hpp>

#include <sluice/pipe.hpp>

#include <boost/asio.hpp>

#include <sluice_test/pipe.hpp>

#include <array>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace net = boost::asio;

using namespace sluice_test;

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
