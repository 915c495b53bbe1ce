// sluice::pipe with every kind of completion token: use_awaitable (alone and in awaitable
// operators), deferred, use_future, as_tuple.
#include <boost/test/unit_test.hpp>

#include <sluice/pipe.hpp>

#include <boost/asio.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include <sluice_test/pipe.hpp>

#include <array>
#include <exception>
#include <future>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

namespace net = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;

using namespace sluice_test;

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
