// sluice::redis::client against a redis-server of the test's own, and against fake servers
// (a reply sent byte by byte, garbage, a server that never answers), and address parsing.
#include <boost/test/unit_test.hpp>

#include <sluice/redis/client.hpp>

#include <boost/asio.hpp>

#include <sluice_test/redis_server.hpp>
#include <sluice_test/support.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace net = boost::asio;
using boost::system::error_code;
using sluice::redis::reply;
using namespace std::chrono_literals;
using sluice_test::run_until;

namespace {

struct require_redis {
  require_redis() { sluice_test::redis_server::require(); }
};

struct result {
  error_code ec;
  std::vector<reply> replies;
};

/// Runs one request to its end (bounded) and returns what it completed with.
result exec(net::io_context& ctx, sluice::redis::client& c,
            std::vector<sluice::redis::command> cmds) {
  std::optional<result> out;
  c.async_exec(std::move(cmds), [&](error_code ec, std::vector<reply> r) {
    out = result{ec, std::move(r)};
  });
  BOOST_REQUIRE(run_until(ctx, [&] { return out.has_value(); }));
  return *out;
}

/// A unix-socket server in a temporary directory that answers each connection by `serve`.
struct fake_server {
  fake_server(net::io_context& ctx)
      : path((std::filesystem::temp_directory_path() /
              ("sluice-fake-" + std::to_string(::getpid()) + "-" + std::to_string(++count)))
                 .string()),
        acceptor(ctx, (std::filesystem::remove(path), net::local::stream_protocol::endpoint(path))),
        peer(ctx) {}
  ~fake_server() { std::filesystem::remove(path); }

  /// Accepts one connection; sets `peer`.
  void accept() {
    acceptor.async_accept(peer, [this](error_code ec) { accepted = !ec; });
  }

  static inline int count = 0;
  std::string path;
  net::local::stream_protocol::acceptor acceptor;
  net::local::stream_protocol::socket peer;
  bool accepted = false;
};

} // namespace

BOOST_TEST_GLOBAL_FIXTURE(require_redis);

BOOST_AUTO_TEST_SUITE(client)

BOOST_AUTO_TEST_CASE(commands_get_their_replies_in_order_in_one_round_trip) {
  sluice_test::redis_server server;
  net::io_context ctx;
  sluice::redis::client c(ctx.get_executor(), server.address());
  BOOST_TEST(!c.is_connected());
  auto r = exec(ctx, c,
                {{"PING"},
                 {"SET", "k", std::string("a\0b", 3)},
                 {"GET", "k"},
                 {"INCR", "n"},
                 {"GET", "missing"},
                 {"RPUSH", "l", "x", "y"},
                 {"LRANGE", "l", "0", "-1"}});
  BOOST_TEST(!r.ec);
  BOOST_TEST_REQUIRE(r.replies.size() == 7u);
  BOOST_TEST((r.replies[0].type == reply::kind::status));
  BOOST_TEST(r.replies[0].str == "PONG");
  BOOST_TEST(r.replies[2].str == std::string("a\0b", 3));
  BOOST_TEST((r.replies[3].type == reply::kind::integer));
  BOOST_TEST(r.replies[3].integer == 1);
  BOOST_TEST((r.replies[4].type == reply::kind::nil));
  BOOST_TEST_REQUIRE(r.replies[6].elements.size() == 2u);
  BOOST_TEST(r.replies[6].elements[1].str == "y");
  BOOST_TEST(c.is_connected());
}

BOOST_AUTO_TEST_CASE(an_error_reply_is_a_reply_and_the_connection_stays_usable) {
  sluice_test::redis_server server;
  net::io_context ctx;
  sluice::redis::client c(ctx.get_executor(), server.address());
  auto r = exec(ctx, c, {{"SET", "k", "text"}, {"INCR", "k"}, {"NOSUCHCOMMAND"}, {"GET", "k"}});
  BOOST_TEST(!r.ec);
  BOOST_TEST_REQUIRE(r.replies.size() == 4u);
  BOOST_TEST(r.replies[1].is_error());
  BOOST_TEST(r.replies[2].is_error());
  BOOST_TEST(r.replies[3].str == "text");
  BOOST_TEST(exec(ctx, c, {{"PING"}}).replies.at(0).str == "PONG");
}

BOOST_AUTO_TEST_CASE(requests_queue_and_complete_in_order) {
  sluice_test::redis_server server;
  net::io_context ctx;
  sluice::redis::client c(ctx.get_executor(), server.address());
  std::vector<std::int64_t> seen;
  for (int i = 0; i < 5; ++i)
    c.async_exec({{"INCR", "n"}}, [&](error_code ec, std::vector<reply> r) {
      BOOST_TEST(!ec);
      seen.push_back(r.at(0).integer);
    });
  BOOST_REQUIRE(run_until(ctx, [&] { return seen.size() == 5; }));
  BOOST_TEST(seen == (std::vector<std::int64_t>{1, 2, 3, 4, 5}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_timeout_closes_the_connection_and_no_late_reply_is_taken) {
  sluice_test::redis_server server;
  net::io_context ctx;
  sluice::redis::client c(ctx.get_executor(), server.address(), 200ms);
  BOOST_TEST(!exec(ctx, c, {{"SET", "k", "v"}}).ec);
  const auto start = std::chrono::steady_clock::now();
  // The server sleeps, then answers "OK" to a connection the client has closed.
  auto slow = exec(ctx, c, {{"DEBUG", "SLEEP", "0.5"}});
  BOOST_TEST(slow.ec == net::error::timed_out);
  BOOST_TEST(sluice_test::seconds(std::chrono::steady_clock::now() - start) < 0.45);
  BOOST_TEST(!c.is_connected());
  // A fresh connection, served once the sleep is over (within the timeout or, on a slow
  // machine, the retry after it): the reply is GET's, never the late "OK".
  std::optional<result> got;
  for (int attempt = 0; attempt < 5 && !(got && !got->ec); ++attempt)
    got = exec(ctx, c, {{"GET", "k"}});
  BOOST_TEST_REQUIRE(!got->ec);
  BOOST_TEST(got->replies.at(0).str == "v");
}

BOOST_AUTO_TEST_CASE(a_frozen_server_times_out_and_the_client_recovers_when_it_thaws) {
  sluice_test::redis_server server;
  net::io_context ctx;
  sluice::redis::client c(ctx.get_executor(), server.address(), 150ms);
  BOOST_TEST(!exec(ctx, c, {{"PING"}}).ec);
  server.freeze();
  BOOST_TEST(exec(ctx, c, {{"PING"}}).ec == net::error::timed_out);
  BOOST_TEST(exec(ctx, c, {{"PING"}}).ec == net::error::timed_out);
  server.thaw();
  bool ok = false;
  for (int attempt = 0; attempt < 10 && !ok; ++attempt)
    ok = !exec(ctx, c, {{"PING"}}).ec;
  BOOST_TEST(ok);
}

BOOST_AUTO_TEST_CASE(the_next_request_reconnects_after_the_server_restarts) {
  sluice_test::redis_server server;
  net::io_context ctx;
  sluice::redis::client c(ctx.get_executor(), server.address());
  BOOST_TEST(!exec(ctx, c, {{"SET", "k", "v"}}).ec);
  server.kill();
  auto down = exec(ctx, c, {{"PING"}});
  BOOST_TEST(down.ec); // the old connection's end, or no server to connect to
  BOOST_TEST(!c.is_connected());
  BOOST_TEST(exec(ctx, c, {{"PING"}}).ec); // still none
  server.start();
  auto r = exec(ctx, c, {{"GET", "k"}});
  BOOST_TEST(!r.ec);
  BOOST_TEST((r.replies.at(0).type == reply::kind::nil)); // a new, empty server
}

BOOST_AUTO_TEST_CASE(a_reply_that_arrives_byte_by_byte_is_assembled) {
  net::io_context ctx;
  fake_server fake(ctx);
  fake.accept();
  sluice::redis::client c(ctx.get_executor(), "unix:" + fake.path);
  std::optional<result> out;
  c.async_exec({{"PING"}, {"GET", "x"}}, [&](error_code ec, std::vector<reply> r) {
    out = result{ec, std::move(r)};
  });
  BOOST_REQUIRE(run_until(ctx, [&] { return fake.accepted; }));
  const std::string wire = "+PONG\r\n*3\r\n$5\r\nhe\r\nl\r\n:-42\r\n$-1\r\n";
  for (char ch : wire) {
    BOOST_TEST(!out.has_value());
    net::write(fake.peer, net::buffer(&ch, 1));
    ctx.restart();
    ctx.poll(); // the client reads what has come, and waits for more
  }
  BOOST_REQUIRE(run_until(ctx, [&] { return out.has_value(); }));
  BOOST_TEST(!out->ec);
  BOOST_TEST_REQUIRE(out->replies.size() == 2u);
  BOOST_TEST(out->replies[0].str == "PONG");
  BOOST_TEST_REQUIRE(out->replies[1].elements.size() == 3u);
  BOOST_TEST(out->replies[1].elements[0].str == "he\r\nl");
  BOOST_TEST(out->replies[1].elements[1].integer == -42);
  BOOST_TEST((out->replies[1].elements[2].type == reply::kind::nil));
}

BOOST_AUTO_TEST_CASE(garbage_and_unasked_replies_are_protocol_errors_that_close) {
  for (std::string wire : {std::string("?what\r\n"), std::string("+OK\r\n+EXTRA\r\n")}) {
    net::io_context ctx;
    fake_server fake(ctx);
    fake.accept();
    sluice::redis::client c(ctx.get_executor(), "unix:" + fake.path);
    std::optional<result> out;
    c.async_exec({{"PING"}}, [&](error_code ec, std::vector<reply> r) {
      out = result{ec, std::move(r)};
    });
    BOOST_REQUIRE(run_until(ctx, [&] { return fake.accepted; }));
    net::write(fake.peer, net::buffer(wire));
    BOOST_REQUIRE(run_until(ctx, [&] { return out.has_value(); }));
    BOOST_TEST((out->ec == sluice::redis::errc::protocol_error), wire);
    BOOST_TEST(!c.is_connected());
  }
}

BOOST_AUTO_TEST_CASE(tcp_addresses_connect) {
  net::io_context ctx;
  net::ip::tcp::acceptor acceptor(ctx, {net::ip::address_v4::loopback(), 0});
  net::ip::tcp::socket peer(ctx);
  acceptor.async_accept(peer, [&](error_code ec) {
    BOOST_TEST(!ec);
    net::write(peer, net::buffer(std::string(":7\r\n")));
  });
  sluice::redis::client c(ctx.get_executor(),
                          "redis://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()));
  auto r = exec(ctx, c, {{"INCR", "n"}});
  BOOST_TEST(!r.ec);
  BOOST_TEST(r.replies.at(0).integer == 7);
}

BOOST_AUTO_TEST_CASE(nobody_listening_is_an_error_not_a_hang) {
  net::io_context ctx;
  sluice::redis::client c(ctx.get_executor(), "unix:/nonexistent/sluice/redis.sock");
  auto r = exec(ctx, c, {{"PING"}});
  BOOST_TEST(r.ec);
  BOOST_TEST(r.replies.empty());
}

BOOST_AUTO_TEST_CASE(close_aborts_pending_requests) {
  net::io_context ctx;
  fake_server fake(ctx); // never answers
  fake.accept();
  sluice::redis::client c(ctx.get_executor(), "unix:" + fake.path, 10s);
  std::optional<error_code> got;
  c.async_exec({{"PING"}}, [&](error_code ec, std::vector<reply>) { got = ec; });
  BOOST_REQUIRE(run_until(ctx, [&] { return fake.accepted; }));
  c.close();
  BOOST_REQUIRE(run_until(
      ctx, [&] { return got.has_value(); }, 2s));
  BOOST_TEST(*got == net::error::operation_aborted);
}

BOOST_AUTO_TEST_CASE(a_request_queued_when_its_context_goes_is_destroyed_not_leaked) {
  // The handler holds its client, as the fleet group's loop holds its own: client, queued
  // request and handler keep each other unless the context's shutdown destroys the request.
  std::weak_ptr<sluice::redis::client> watch;
  {
    net::io_context ctx;
    fake_server fake(ctx); // never answers
    fake.accept();
    auto c = std::make_shared<sluice::redis::client>(ctx.get_executor(), "unix:" + fake.path, 10s);
    watch = c;
    c->async_exec({{"PING"}}, [c](error_code, std::vector<reply>) {});
    BOOST_REQUIRE(run_until(ctx, [&] { return fake.accepted; }));
    c.reset();
    BOOST_TEST(!watch.expired()); // the handler has it
  }
  BOOST_TEST(watch.expired());
}

BOOST_AUTO_TEST_CASE(requests_may_come_from_other_threads) {
  sluice_test::redis_server server;
  net::io_context ctx;
  auto guard = net::make_work_guard(ctx);
  std::thread runner([&] { ctx.run(); });
  {
    sluice::redis::client c(ctx.get_executor(), server.address());
    std::vector<std::future<std::vector<reply>>> replies;
    for (int i = 0; i < 20; ++i)
      replies.push_back(c.async_exec({{"INCR", "n"}}, net::use_future));
    std::vector<std::int64_t> seen;
    for (auto& f : replies) {
      BOOST_REQUIRE((f.wait_for(10s) == std::future_status::ready));
      seen.push_back(f.get().at(0).integer);
    }
    BOOST_TEST(seen.front() == 1);
    BOOST_TEST(seen.back() == 20);
    BOOST_TEST(std::is_sorted(seen.begin(), seen.end()));
  }
  guard.reset();
  runner.join();
}

BOOST_AUTO_TEST_CASE(addresses_parse_or_say_what_is_wrong) {
  using sluice::redis::address;
  auto u = address::parse("unix:/run/redis.sock");
  BOOST_TEST((u.type == address::kind::unix_socket));
  BOOST_TEST(u.path == "/run/redis.sock");
  auto t = address::parse("redis://cache.example:6380");
  BOOST_TEST((t.type == address::kind::tcp));
  BOOST_TEST(t.host == "cache.example");
  BOOST_TEST(t.port == "6380");
  BOOST_TEST(address::parse("redis://[::1]:7000").host == "::1");
  BOOST_TEST(address::parse("redis://localhost").port == "6379");
  BOOST_TEST(address::parse("redis://[::1]").port == "6379");
  BOOST_TEST(address::parse("redis://[::1]:7000").to_string() == "redis://[::1]:7000");
  for (const char* bad :
       {"", "unix:", "http://x:1", "redis://", "redis://h:0", "redis://h:x", "redis://h:70000",
        "redis://::1:6379", "redis://u:p@h:1", "redis://h:1/2", "redis://[::1"}) {
    try {
      address::parse(bad);
      BOOST_ERROR("accepted: " << bad);
    } catch (const std::invalid_argument& e) {
      BOOST_TEST(std::string(e.what()).find('"' + std::string(bad) + '"') != std::string::npos);
    }
  }
  net::io_context ctx;
  BOOST_CHECK_THROW(sluice::redis::client(ctx.get_executor(), "tcp://h:1"), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()
