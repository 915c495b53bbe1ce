// sluice::pipe, how completions are delivered: never inline, with the handler's allocator
// and executor, on strands, threads and two io_contexts.
#include <boost/test/unit_test.hpp>

#include <sluice/pipe.hpp>

#include <boost/asio.hpp>

#include <sluice_test/counting_allocator.hpp>
#include <sluice_test/pipe.hpp>

#include <array>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

namespace net = boost::asio;
using boost::system::error_code;

using namespace sluice_test;

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

// A composed operation (async_compose, a coroutine) names std::allocator<void> when its own
// handler names none: parked, it takes Asio's per-thread cache as a handler that names none
// does, not a malloc per wait.
using parked_handler_t =
    decltype(net::bind_allocator(std::allocator<void>(), record(std::declval<outcome&>())));
static_assert(
    std::is_same_v<sluice::detail::op_allocator_t<parked_handler_t>, sluice::detail::op_recycler>);

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
