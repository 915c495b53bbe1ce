// rate_limited_stream<beast::tcp_stream>'s expiry: one expiry covers the waits for tokens and
// the I/O, ends the operation as the tcp_stream's own timeout does (stream closed,
// beast::error::timeout), and leaves no timer behind. Tokens come from a manual clock that
// stands still, so a wait can only end by its expiry: the checks are exact, and bounded in
// real time only against a hang.
#include <boost/test/unit_test.hpp>

#include <sluice/beast.hpp>
#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <sluice_test/completion.hpp>
#include <sluice_test/pattern.hpp>
#include <sluice_test/support.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using net::ip::tcp;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

using namespace sluice_test;

namespace {

using shaped_tcp = sluice::rate_limited_stream<beast::tcp_stream>;

/// A shaped tcp_stream writing to a plain socket, its own writes 1000 bytes per 100 ms of
/// `clock`, from a bucket of one tick's worth.
struct fixture {
  net::io_context ctx;
  sluice::manual_rate_clock clock;
  std::unique_ptr<shaped_tcp> writer;
  tcp::socket peer{ctx};
  std::string received;
  outcome peer_end; // how the peer's reading ended

  fixture() {
    auto [c, s] = tcp_pair(ctx);
    writer = std::make_unique<shaped_tcp>(std::move(c));
    peer = std::move(s);
    writer->set_clock(clock);
    writer->set_rate_limit({.write_rate = 1000, .write_burst = 1000, .tick = 100ms});
    read_all();
  }

  void read_all() {
    auto chunk = std::make_shared<std::string>(64 * 1024, '\0');
    peer.async_read_some(net::buffer(*chunk), [this, chunk](beast::error_code ec, std::size_t n) {
      received.append(chunk->data(), n);
      if (ec)
        return record(peer_end)(ec);
      read_all();
    });
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(expiry)

BOOST_AUTO_TEST_CASE(a_wait_for_tokens_past_the_expiry_times_out_and_closes_the_stream) {
  fixture f;
  const auto out = pattern<std::string>(300 * 1024, 1);
  const auto set = clock_type::now();
  f.writer->expires_after(200ms);
  outcome w;
  net::async_write(*f.writer, net::buffer(out), record(w));
  BOOST_TEST_REQUIRE(run_until(f.ctx, [&] { return w.done() && f.peer_end.done(); }));
  // The tcp_stream's own error, after the one tick's worth that was there, never early.
  BOOST_TEST((w.ec == beast::error::timeout), w.ec.message());
  BOOST_TEST((w.ec == beast::condition::timeout));
  BOOST_TEST(w.n == 1000u);
  BOOST_TEST(seconds(clock_type::now() - set) >= 0.2);
  // Closed as the tcp_stream's timeout closes it: the peer sees the end after those bytes.
  BOOST_TEST(!f.writer->next_layer().socket().is_open());
  BOOST_TEST(f.peer_end.ec == net::error::eof, f.peer_end.ec.message());
  BOOST_TEST((f.received == out.substr(0, 1000)));
}

BOOST_AUTO_TEST_CASE(an_http_response_shaped_past_its_expiry_times_out) {
  fixture f;
  http::response<http::string_body> res{http::status::ok, 11};
  res.body() = pattern<std::string>(10000, 2);
  res.prepare_payload();
  f.writer->expires_after(300ms);
  outcome w;
  http::async_write(*f.writer, res, record(w));
  // Three ticks' worth come in time; the rest would need seven more.
  for (int tick = 1; tick <= 3; ++tick) {
    BOOST_TEST_REQUIRE(run_until(f.ctx, [&] { return f.received.size() >= 1000u * tick; }));
    f.clock.advance(100ms);
  }
  BOOST_TEST_REQUIRE(run_until(f.ctx, [&] { return w.done() && f.peer_end.done(); }));
  BOOST_TEST((w.ec == beast::error::timeout), w.ec.message());
  BOOST_TEST(f.received.size() == 4000u);
}

BOOST_AUTO_TEST_CASE(a_wait_in_a_group_times_out_too) {
  fixture f;
  f.writer->clear_rate_limit();
  sluice::rate_limit_group group(f.ctx, {.write_rate = 1000, .write_burst = 1000, .tick = 100ms},
                                 f.clock);
  f.writer->join(group);
  const auto out = pattern<std::string>(5000, 3);
  f.writer->expires_after(100ms);
  outcome w;
  net::async_write(*f.writer, net::buffer(out), record(w));
  BOOST_TEST_REQUIRE(run_until(f.ctx, [&] { return w.done(); }));
  BOOST_TEST((w.ec == beast::error::timeout), w.ec.message());
  BOOST_TEST(w.n == 1000u);
  // The group is not left owing: its bucket holds what was taken, nothing more.
  BOOST_TEST(group.totals().written == 1000u);
}

BOOST_AUTO_TEST_CASE(an_operation_done_in_time_leaves_no_timer_behind) {
  fixture f;
  const auto out = pattern<std::string>(3000, 4);
  f.writer->expires_after(30s);
  outcome w;
  net::async_write(*f.writer, net::buffer(out), record(w));
  BOOST_TEST_REQUIRE(run_until(f.ctx, [&] { return f.received.size() >= 1000u; }));
  f.clock.advance(100ms);
  BOOST_TEST_REQUIRE(run_until(f.ctx, [&] { return f.received.size() >= 2000u; }));
  f.clock.advance(100ms);
  BOOST_TEST_REQUIRE(run_until(f.ctx, [&] { return w.done(); }));
  BOOST_TEST(!w.ec, w.ec.message());
  BOOST_TEST(w.n == out.size());
  // Nothing waits any more but the peer's read: once it is cancelled, run() returns at once
  // (a timer left armed for the 30 s expiry would hold it).
  f.peer.cancel();
  const auto start = clock_type::now();
  f.ctx.restart();
  f.ctx.run();
  BOOST_TEST(seconds(clock_type::now() - start) < 10.0);
  BOOST_TEST(f.writer->next_layer().socket().is_open());
}

BOOST_AUTO_TEST_CASE(expires_never_lets_a_wait_go_on) {
  fixture f;
  f.writer->expires_after(50ms);
  f.writer->expires_never();
  const auto out = pattern<std::string>(2000, 5);
  outcome w;
  net::async_write(*f.writer, net::buffer(out), record(w));
  BOOST_TEST_REQUIRE(run_until(f.ctx, [&] { return f.received.size() >= 1000u; }));
  f.ctx.restart();
  f.ctx.run_for(150ms); // well past the expiry that was cleared
  BOOST_TEST(!w.done());
  f.clock.advance(100ms);
  BOOST_TEST_REQUIRE(run_until(f.ctx, [&] { return w.done(); }));
  BOOST_TEST(!w.ec, w.ec.message());
}

BOOST_AUTO_TEST_CASE(an_expiry_set_after_an_operation_started_is_the_next_ones) {
  // As for tcp_stream: an operation keeps the expiry it started with.
  fixture f;
  const auto out = pattern<std::string>(2000, 6);
  outcome w;
  net::async_write(*f.writer, net::buffer(out), record(w));
  BOOST_TEST_REQUIRE(run_until(f.ctx, [&] { return f.received.size() >= 1000u; }));
  f.writer->expires_after(10ms);
  f.ctx.restart();
  f.ctx.run_for(100ms);
  BOOST_TEST(!w.done());
  f.writer->expires_never();
  f.clock.advance(100ms);
  BOOST_TEST_REQUIRE(run_until(f.ctx, [&] { return w.done(); }));
  BOOST_TEST(!w.ec, w.ec.message());
}

BOOST_AUTO_TEST_CASE(cancelling_a_wait_with_an_expiry_aborts_it_and_keeps_the_stream) {
  fixture f;
  f.writer->expires_after(30s);
  const auto out = pattern<std::string>(5000, 7);
  net::cancellation_signal cancel;
  outcome w;
  net::async_write(*f.writer, net::buffer(out),
                   net::bind_cancellation_slot(cancel.slot(), record(w)));
  BOOST_TEST_REQUIRE(run_until(f.ctx, [&] { return f.received.size() >= 1000u; }));
  cancel.emit(net::cancellation_type::terminal);
  BOOST_TEST_REQUIRE(run_until(f.ctx, [&] { return w.done(); }));
  BOOST_TEST(w.ec == net::error::operation_aborted, w.ec.message());
  BOOST_TEST(f.writer->next_layer().socket().is_open());
}

BOOST_AUTO_TEST_CASE(a_stream_destroyed_while_its_wait_has_an_expiry) {
  fixture f;
  f.writer->expires_after(30s);
  const auto out = pattern<std::string>(5000, 8);
  outcome w;
  net::async_write(*f.writer, net::buffer(out), record(w));
  BOOST_TEST_REQUIRE(run_until(f.ctx, [&] { return f.received.size() >= 1000u; }));
  f.writer.reset();
  BOOST_TEST_REQUIRE(run_until(f.ctx, [&] { return w.done() && f.peer_end.done(); }));
  BOOST_TEST(w.ec == net::error::operation_aborted, w.ec.message());
  f.peer.close();
  const auto start = clock_type::now();
  f.ctx.restart();
  f.ctx.run(); // nothing is left: no timer of the stream's
  BOOST_TEST(seconds(clock_type::now() - start) < 10.0);
}

BOOST_AUTO_TEST_CASE(a_timer_raced_against_a_shaped_write_cancels_its_wait) {
  // The composition for streams without an expiry (doc/beast.md): the awaitable operators
  // cancel the losing operation, and a wait for tokens honours that.
  net::io_context ctx;
  sluice::manual_rate_clock clock;
  auto [c, peer] = tcp_pair(ctx);
  sluice::rate_limited_stream<tcp::socket> s(std::move(c));
  s.set_clock(clock);
  s.set_rate_limit({.write_rate = 1000, .write_burst = 1000, .tick = 100ms});
  http::response<http::string_body> res{http::status::ok, 11};
  res.body() = pattern<std::string>(10000, 9);
  res.prepare_payload();
  std::size_t winner = 0;
  bool finished = false;
  net::co_spawn(
      ctx,
      [&]() -> net::awaitable<void> {
        using namespace net::experimental::awaitable_operators;
        net::steady_timer timer(s.get_executor(), 100ms);
        auto done = co_await (http::async_write(s, res, net::use_awaitable) ||
                              timer.async_wait(net::use_awaitable));
        winner = done.index();
        finished = true;
      },
      net::detached);
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return finished; }));
  BOOST_TEST(winner == 1u);
  BOOST_TEST(peer.available() == 1000u); // the one tick's worth, and not a byte more
}

BOOST_AUTO_TEST_CASE(expiry_on_a_moved_from_stream_throws) {
  fixture f;
  shaped_tcp other(std::move(*f.writer));
  BOOST_CHECK_THROW(f.writer->expires_after(1s), boost::system::system_error);
  BOOST_CHECK_NO_THROW(other.expires_after(1s));
}

BOOST_AUTO_TEST_SUITE_END()
