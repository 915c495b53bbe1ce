// sluice::pipe, half-close and close: shutdown_send, shutdown_receive, close() and what
// the surviving end sees.
#include <boost/test/unit_test.hpp>

#include <sluice/pipe.hpp>

#include <boost/asio.hpp>

#include <sluice_test/pipe.hpp>

#include <array>
#include <string>

namespace net = boost::asio;
using sluice::flush_mode;

using namespace sluice_test;

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
