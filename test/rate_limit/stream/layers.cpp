// rate_limited_stream as a layer: stacking and layer types, a next layer held by reference,
// grants given back; operations admitted at once go straight to the next layer, keeping the
// handler's executor and allocator, and are charged only what moved.
#include <boost/test/unit_test.hpp>

#include <sluice/pipe.hpp>
#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <boost/asio.hpp>

#include <sluice_test/completion.hpp>
#include <sluice_test/counting_allocator.hpp>
#include <sluice_test/pattern.hpp>
#include <sluice_test/rate_limit.hpp>
#include <sluice_test/support.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

namespace net = boost::asio;
using boost::system::error_code;
using net::ip::tcp;
using namespace std::chrono_literals;

using namespace sluice_test;

BOOST_AUTO_TEST_SUITE(layers)

// --- Composition ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(layers_stack_and_report_their_types) {
  net::io_context ctx;
  using inner = sluice::rate_limited_stream<sluice::pipe>;
  using outer = sluice::rate_limited_stream<inner>;
  static_assert(std::is_same_v<outer::next_layer_type, inner>);
  static_assert(std::is_same_v<outer::lowest_layer_type, sluice::pipe>);
  static_assert(std::is_same_v<sluice::rate_limited_stream<tcp::socket>::lowest_layer_type,
                               tcp::socket::lowest_layer_type>);
  auto ends = sluice::make_pipe(ctx);
  outer s(std::move(ends.first));
  sluice::pipe peer(std::move(ends.second));
  BOOST_TEST(&s.lowest_layer() == &s.next_layer().next_layer());
  s.set_rate_limit(write_limit(100, 100, 24h));
  s.next_layer().set_rate_limit(write_limit(50, 50, 24h));
  const std::string out = pattern<std::string>(500, 21);
  result w;
  net::async_write(s, net::buffer(out), store(w));
  ctx.poll();
  BOOST_TEST(!w.done);
  BOOST_TEST(peer.available() == 50u); // the inner, lower limit
  s.next_layer().clear_rate_limit();
  ctx.poll();
  BOOST_TEST(!w.done);
  BOOST_TEST(peer.available() == 100u); // the inner write resumed, capped by the outer
  s.clear_rate_limit();
  BOOST_REQUIRE(run_until(
      ctx, [&] { return w.done; }, 5s));
  BOOST_TEST(w.n == out.size());
  std::string in(out.size(), '\0');
  result r;
  net::async_read(peer, net::buffer(in), store(r));
  BOOST_REQUIRE(run_until(
      ctx, [&] { return r.done; }, 5s));
  BOOST_TEST((in == out));
}

BOOST_AUTO_TEST_CASE(next_layer_held_by_reference) {
  net::io_context ctx;
  auto ends = sluice::make_pipe(ctx);
  sluice::rate_limited_stream<sluice::pipe&> s(ends.first);
  static_assert(std::is_same_v<decltype(s)::next_layer_type, sluice::pipe>);
  BOOST_TEST(&s.next_layer() == &ends.first);
  s.set_rate_limit(write_limit(100, 100, 24h));
  const std::string out = pattern<std::string>(300, 23);
  result w;
  net::async_write(s, net::buffer(out), store(w));
  ctx.poll();
  BOOST_TEST(!w.done);
  BOOST_TEST(ends.second.available() == 100u);
  s.clear_rate_limit();
  BOOST_REQUIRE(run_until(
      ctx, [&] { return w.done; }, 5s));
  BOOST_TEST(!w.ec);
  BOOST_TEST(ends.second.available() == 300u);
}

BOOST_AUTO_TEST_CASE(destroyed_stream_gives_back_a_grant_it_did_not_use) {
  net::io_context ctx;
  sluice::rate_limit_group group(ctx.get_executor(), write_limit(1000, 1000, 24h));
  group.decrement_write_limit(1000);
  auto p = std::make_unique<pipe_fixture>(ctx);
  p->stream.join(group);
  const std::string out = pattern<std::string>(700, 24);
  result w;
  p->stream.async_write_some(net::buffer(out), store(w));
  ctx.poll();
  BOOST_TEST(!w.done);
  group.decrement_write_limit(-400); // granted to the waiting write, whose wake-up is queued
  BOOST_TEST(group.write_limit() == 0);
  p.reset();
  BOOST_REQUIRE(run_until(
      ctx, [&] { return w.done; }, 3s));
  BOOST_TEST((w.ec == net::error::operation_aborted));
  BOOST_TEST(w.n == 0u);
  BOOST_TEST(group.write_limit() == 400);
  BOOST_TEST(group.totals().written == 0u);
}

// --- Operations admitted at once go straight to the next layer -------------------------

BOOST_AUTO_TEST_CASE(an_admitted_read_cancelled_in_the_next_layer_is_charged_nothing) {
  for (auto type : cancellation_types) {
    BOOST_TEST_CONTEXT("type " << static_cast<int>(type)) {
      net::io_context ctx;
      sluice::rate_limit_group group(ctx.get_executor(), read_limit(1000, 1000, 24h));
      pipe_fixture p(ctx);
      p.stream.set_rate_limit(read_limit(500, 500, 24h));
      p.stream.join(group);
      net::cancellation_signal signal;
      result r;
      char buf[300];
      p.stream.async_read_some(net::buffer(buf),
                               net::bind_cancellation_slot(signal.slot(), store(r)));
      ctx.poll();
      BOOST_TEST(!r.done);                   // admitted, and waiting in the pipe for bytes
      BOOST_TEST(group.read_limit() == 700); // the grant, held while the read is pending
      signal.emit(type);                     // reaches the pipe's own cancellation
      BOOST_REQUIRE(run_until(
          ctx, [&] { return r.done; }, 5s));
      BOOST_TEST((r.ec == net::error::operation_aborted));
      BOOST_TEST(r.n == 0u);
      BOOST_TEST(group.read_limit() == 1000); // given back whole
      BOOST_TEST(p.stream.read_limit() == 500);
      BOOST_TEST(group.totals().read == 0u);
    }
  }
}

BOOST_AUTO_TEST_CASE(an_admitted_operation_keeps_the_handlers_executor_and_allocator) {
  net::io_context ctx;
  // A tick of a day: 12 bytes refill a second, so the level shows the 100 charged.
  sluice::rate_limit_group group(ctx.get_executor(), write_limit(1 << 20, 1 << 20, 24h));
  pipe_fixture p(ctx);
  p.stream.set_rate_limit(write_limit(1 << 20, 1 << 20, 24h));
  p.stream.join(group);
  auto strand = net::make_strand(ctx);
  allocation_counts allocations;
  const std::string out = pattern<std::string>(100, 25);
  bool on_strand = false, done = false;
  auto handler = [&](error_code ec, std::size_t n) {
    BOOST_TEST(!ec);
    BOOST_TEST(n == out.size());
    on_strand = strand.running_in_this_thread();
    done = true;
  };
  p.stream.async_write_some(
      net::buffer(out),
      net::bind_executor(strand,
                         net::bind_allocator(counting_allocator<void>(&allocations), handler)));
  BOOST_REQUIRE(run_until(ctx, [&] { return done; }));
  BOOST_TEST(on_strand);
  BOOST_TEST(allocations.allocations > 0u);
  BOOST_TEST(p.read_exactly(ctx, out.size()) == out);
  BOOST_TEST(group.totals().written == out.size());
  // Charged the 100 bytes moved (less the few bytes a second that refill).
  BOOST_TEST(p.stream.write_limit() < (1 << 20) - 50);
  BOOST_TEST(p.stream.write_limit() >= (1 << 20) - 100);
  BOOST_TEST(group.write_limit() < (1 << 20) - 50);
}

BOOST_AUTO_TEST_SUITE_END()
