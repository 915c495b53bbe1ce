// Operations parked in sluice's cores when their execution context goes: like Asio's own
// operations, they are destroyed without being invoked, so that a coroutine waiting in a
// pipe, a group or for its own tokens has its frame destroyed (its RAII runs) and nothing
// leaks (the asan preset runs LeakSanitizer over these). And the ways a wait ends when the
// objects it waits on go first.
#include <boost/test/unit_test.hpp>

#include <sluice/filtered_stream.hpp>
#include <sluice/pipe.hpp>
#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <boost/asio.hpp>

#include <sluice_test/support.hpp>

#include <memory>
#include <optional>
#include <thread>
#include <utility>

namespace net = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;
using limited_pipe = sluice::rate_limited_stream<sluice::pipe>;
using sluice_test::run_until;

namespace {

/// Counts the coroutine frames destroyed: one lives in each frame.
struct frame_guard {
  int& destroyed;
  ~frame_guard() { ++destroyed; }
};

/// A coroutine that owns `stream` and waits for one byte from it, forever.
template <class Stream>
net::awaitable<void> read_forever(Stream stream, int& destroyed, bool& completed) {
  frame_guard guard{destroyed};
  char byte;
  co_await stream.async_read_some(net::buffer(&byte, 1), net::use_awaitable);
  completed = true;
}

/// ...and one that writes, where the write cannot complete.
template <class Stream>
net::awaitable<void> write_forever(Stream stream, int& destroyed, bool& completed) {
  frame_guard guard{destroyed};
  char byte = 'x';
  co_await stream.async_write_some(net::buffer(&byte, 1), net::use_awaitable);
  co_await stream.async_write_some(net::buffer(&byte, 1), net::use_awaitable);
  completed = true;
}

sluice::token_bucket_config slow_writes() {
  sluice::token_bucket_config cfg;
  cfg.write_rate = cfg.write_burst = 1;
  cfg.tick = 24h;
  return cfg;
}

} // namespace

BOOST_AUTO_TEST_SUITE(context_shutdown_destroys_parked_operations)

BOOST_AUTO_TEST_CASE(a_pipe_read_whose_frame_owns_both_ends) {
  int destroyed = 0;
  bool completed = false;
  {
    net::io_context ctx;
    auto [a, b] = sluice::make_pipe(ctx);
    // The frame owns the end it reads and the other one: a cycle only shutdown can break.
    net::co_spawn(
        ctx,
        [](sluice::pipe a, sluice::pipe b, int& destroyed,
           bool& completed) -> net::awaitable<void> {
          frame_guard guard{destroyed};
          char byte;
          co_await a.async_read_some(net::buffer(&byte, 1), net::use_awaitable);
          (void)b;
          completed = true;
        }(std::move(a), std::move(b), destroyed, completed),
        net::detached);
    ctx.poll();
    BOOST_TEST(destroyed == 0);
  }
  BOOST_TEST(destroyed == 1);
  BOOST_TEST(!completed);
}

BOOST_AUTO_TEST_CASE(a_pipe_write_that_waits_for_room) {
  int destroyed = 0;
  bool completed = false;
  {
    net::io_context ctx;
    auto [a, b] = sluice::make_pipe(ctx, {.capacity = 1});
    net::co_spawn(ctx, write_forever(std::move(a), destroyed, completed), net::detached);
    ctx.poll();
    BOOST_TEST(b.available() == 2); // one byte buffered, one in the waiting write
    BOOST_TEST(destroyed == 0);
    // `b` outlives the context here: the write must be gone, not completed, when it goes.
    ctx.~io_context();
    new (&ctx) net::io_context;
    BOOST_TEST(destroyed == 1);
  }
  BOOST_TEST(!completed);
}

BOOST_AUTO_TEST_CASE(only_the_operations_of_the_context_that_goes) {
  int destroyed = 0;
  bool completed = false;
  net::io_context kept;
  std::optional<sluice::pipe> survivor;
  {
    net::io_context gone;
    auto [a, b] = sluice::make_pipe(net::any_io_executor(gone.get_executor()),
                                    net::any_io_executor(kept.get_executor()));
    net::co_spawn(gone, read_forever(std::move(a), destroyed, completed), net::detached);
    gone.poll();
    survivor.emplace(std::move(b));
    // A read parked on the surviving end, on the context that stays.
    char byte;
    bool survivor_done = false;
    error_code survivor_ec;
    survivor->async_read_some(net::buffer(&byte, 1), [&](error_code ec, std::size_t) {
      survivor_ec = ec;
      survivor_done = true;
    });
    BOOST_TEST(destroyed == 0);
    gone.~io_context();
    new (&gone) net::io_context;
    BOOST_TEST(destroyed == 1);
    // The destroyed frame closed its end: the survivor's read ends with eof, on its context.
    BOOST_TEST_REQUIRE(run_until(kept, [&] { return survivor_done; }));
    BOOST_TEST(survivor_ec == net::error::eof);
  }
  BOOST_TEST(!completed);
}

BOOST_AUTO_TEST_CASE(a_wait_for_the_own_bucket) {
  int destroyed = 0;
  bool completed = false;
  {
    net::io_context ctx;
    auto [a, b] = sluice::make_pipe(ctx);
    limited_pipe stream(std::move(a));
    stream.set_rate_limit(slow_writes());
    net::co_spawn(ctx, write_forever(std::move(stream), destroyed, completed), net::detached);
    ctx.poll();
    BOOST_TEST(b.available() == 1); // the first byte went, the second waits for a day
    BOOST_TEST(destroyed == 0);
  }
  BOOST_TEST(destroyed == 1);
  BOOST_TEST(!completed);
}

BOOST_AUTO_TEST_CASE(a_wait_in_a_groups_queue) {
  int destroyed = 0;
  bool completed = false;
  net::io_context group_ctx; // a group's executor outlives the group
  sluice::rate_limit_group group(group_ctx, slow_writes());
  {
    net::io_context ctx;
    auto [a, b] = sluice::make_pipe(ctx);
    limited_pipe stream(std::move(a));
    stream.join(group);
    net::co_spawn(ctx, write_forever(std::move(stream), destroyed, completed), net::detached);
    ctx.poll();
    BOOST_TEST(b.available() == 1);
    BOOST_TEST(group.size() == 1u);
    BOOST_TEST(destroyed == 0);
    ctx.~io_context();
    new (&ctx) net::io_context;
    BOOST_TEST(destroyed == 1);
    BOOST_TEST(group.size() == 0u); // the frame's stream left as it was destroyed
  }
  BOOST_TEST(!completed);
}

BOOST_AUTO_TEST_CASE(a_read_of_a_filtered_stream) {
  int destroyed = 0;
  bool completed = false;
  {
    net::io_context ctx;
    auto [a, b] = sluice::make_pipe(ctx);
    net::co_spawn(ctx,
                  read_forever(sluice::filtered_stream<sluice::pipe, sluice::pass_through_filter,
                                                       sluice::pass_through_filter>(std::move(a)),
                               destroyed, completed),
                  net::detached);
    ctx.poll();
    BOOST_TEST(destroyed == 0);
  }
  BOOST_TEST(destroyed == 1);
  BOOST_TEST(!completed);
}

BOOST_AUTO_TEST_CASE(plain_handlers_too) {
  // Not only coroutines: a parked handler and what it owns are destroyed, never called.
  auto owned = std::make_shared<int>(7);
  std::weak_ptr<int> watch = owned;
  bool called = false;
  {
    net::io_context ctx;
    auto [a, b] = sluice::make_pipe(ctx);
    char byte;
    a.async_read_some(net::buffer(&byte, 1), [&called, owned = std::move(owned)](
                                                 error_code, std::size_t) { called = true; });
    ctx.poll();
    BOOST_TEST(!watch.expired());
    ctx.~io_context();
    new (&ctx) net::io_context;
    BOOST_TEST(watch.expired());
  }
  BOOST_TEST(!called);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(waits_whose_objects_go_first)

BOOST_AUTO_TEST_CASE(a_stream_destroyed_while_its_write_waits_for_tokens) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  std::optional<limited_pipe> stream(std::in_place, std::move(a));
  stream->set_rate_limit(slow_writes());
  char bytes[2] = {'x', 'y'};
  std::size_t first = 0;
  stream->async_write_some(net::buffer(bytes), [&](error_code, std::size_t n) { first = n; });
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return first == 1; }));
  std::optional<error_code> result;
  stream->async_write_some(net::buffer(bytes), [&](error_code ec, std::size_t n) {
    result = ec;
    BOOST_TEST(n == 0u);
  });
  ctx.poll();
  BOOST_TEST(!result);
  stream.reset();
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return result.has_value(); }));
  BOOST_TEST(*result == net::error::operation_aborted);
}

BOOST_AUTO_TEST_CASE(a_stream_destroyed_while_its_write_waits_in_a_group) {
  net::io_context ctx;
  sluice::rate_limit_group group(ctx, slow_writes());
  auto [a, b] = sluice::make_pipe(ctx);
  std::optional<limited_pipe> stream(std::in_place, std::move(a));
  stream->join(group);
  group.decrement_write_limit(1); // empty: the write queues
  std::optional<error_code> result;
  char byte = 'x';
  stream->async_write_some(net::buffer(&byte, 1), [&](error_code ec, std::size_t) { result = ec; });
  ctx.poll();
  BOOST_TEST(!result);
  stream.reset();
  BOOST_TEST(group.size() == 0u);
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return result.has_value(); }));
  BOOST_TEST(*result == net::error::operation_aborted);
  BOOST_TEST(b.available() == 0u);
}

BOOST_AUTO_TEST_CASE(a_group_destroyed_while_members_wait_lets_them_go_on) {
  net::io_context ctx;
  std::optional<sluice::rate_limit_group> group(std::in_place, ctx, slow_writes());
  auto [a, b] = sluice::make_pipe(ctx);
  limited_pipe stream(std::move(a));
  stream.join(*group);
  group->decrement_write_limit(1);
  std::optional<error_code> result;
  char byte = 'x';
  stream.async_write_some(net::buffer(&byte, 1), [&](error_code ec, std::size_t) { result = ec; });
  ctx.poll();
  BOOST_TEST(!result);
  group.reset();
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return result.has_value(); }));
  BOOST_TEST(!*result); // it asked again, without the group, and wrote
  BOOST_TEST(b.available() == 1u);
  BOOST_TEST(stream.group() == nullptr);
}

BOOST_AUTO_TEST_SUITE_END()
