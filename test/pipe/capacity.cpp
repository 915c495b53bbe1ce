// sluice::pipe, capacity and flush: backpressure, flush modes, and the direct hand-off of a
// pipe of capacity 0.
#include <boost/test/unit_test.hpp>

#include <sluice/pipe.hpp>

#include <boost/asio.hpp>

#include <sluice_test/pipe.hpp>

#include <array>
#include <string>

namespace net = boost::asio;
using sluice::flush_mode;

using namespace sluice_test;

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
