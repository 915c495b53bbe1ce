// sluice::pipe, zero-length operations: they complete at once, use no capacity, and may sit
// beside a pending operation.
#include <boost/test/unit_test.hpp>

#include <sluice/pipe.hpp>

#include <boost/asio.hpp>

#include <sluice_test/pipe.hpp>

#include <array>
#include <string>

namespace net = boost::asio;

using namespace sluice_test;

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
