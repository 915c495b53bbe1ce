// sluice::pipe, per-operation cancellation (terminal, partial, total) and cancel(): an
// operation that moved nothing is aborted, and no byte is lost or duplicated.
#include <boost/test/unit_test.hpp>

#include <sluice/pipe.hpp>

#include <boost/asio.hpp>

#include <sluice_test/completion.hpp>
#include <sluice_test/pipe.hpp>

#include <array>
#include <string>

namespace net = boost::asio;

using namespace sluice_test;

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
