// sluice::pipe, data: every byte arrives once and in order, both ways, whatever the sizes
// of the operations, the buffer sequences and the capacity; reads complete with what is
// available.
#include <boost/test/unit_test.hpp>

#include <sluice/pipe.hpp>

#include <boost/asio.hpp>
#include <boost/asio/experimental/as_tuple.hpp>

#include <sluice_test/pipe.hpp>

#include <array>
#include <cstdint>
#include <exception>
#include <random>
#include <string>
#include <vector>

namespace net = boost::asio;
using boost::system::error_code;

using namespace sluice_test;

BOOST_AUTO_TEST_SUITE(data)

// libevent's test_bufferevent_pair: 8333 bytes each way, with capacities around the size.
BOOST_AUTO_TEST_CASE(bytes_8333_arrive_whole_both_ways) {
  constexpr std::size_t size = 8333;
  for (std::size_t capacity : {std::size_t{64 * 1024}, std::size_t{0}, std::size_t{1},
                               std::size_t{1000}, size, size - 1}) {
    BOOST_TEST_CONTEXT("capacity " << capacity) {
      net::io_context ctx;
      auto [a, b] = sluice::make_pipe(ctx, {.capacity = capacity});
      const bytes a_out = pattern(size, 1), b_out = pattern(size, 2);
      bytes a_in(size), b_in(size);
      outcome aw, bw, ar, br;
      net::async_write(a, net::buffer(a_out), record(aw));
      net::async_write(b, net::buffer(b_out), record(bw));
      net::async_read(a, net::buffer(a_in), record(ar));
      net::async_read(b, net::buffer(b_in), record(br));
      BOOST_TEST_REQUIRE(
          run_until(ctx, [&] { return aw.done() && bw.done() && ar.done() && br.done(); }));
      BOOST_TEST(!aw.ec);
      BOOST_TEST(!bw.ec);
      BOOST_TEST(!ar.ec);
      BOOST_TEST(!br.ec);
      BOOST_TEST(aw.n == size);
      BOOST_TEST(bw.n == size);
      BOOST_TEST(ar.n == size);
      BOOST_TEST(br.n == size);
      BOOST_TEST(difference(b_in, a_out) == "");
      BOOST_TEST(difference(a_in, b_out) == "");
      BOOST_TEST(a.available() == 0u);
      BOOST_TEST(b.available() == 0u);
      BOOST_TEST(aw.calls == 1);
      BOOST_TEST(br.calls == 1);
    }
  }
}

BOOST_AUTO_TEST_CASE(default_capacity_is_64_KiB) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  const bytes out = pattern(100000);
  outcome w;
  a.async_write_some(net::buffer(out), record(w));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w.done(); }));
  BOOST_TEST(!w.ec);
  BOOST_TEST(w.n == 64u * 1024);
  BOOST_TEST(b.available() == 64u * 1024);
}

// A read takes what is there, like a socket: not more than asked, not waiting for more.
BOOST_AUTO_TEST_CASE(read_completes_with_what_is_available) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  const std::string msg = "0123456789";
  outcome w;
  a.async_write_some(net::buffer(msg), record(w));
  std::array<char, 4> small{};
  outcome r1;
  b.async_read_some(net::buffer(small), record(r1));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w.done() && r1.done(); }));
  BOOST_TEST(w.n == msg.size());
  BOOST_TEST(!r1.ec);
  BOOST_TEST(as_string(small.data(), r1.n) == "0123");
  BOOST_TEST(b.available() == 6u);
  std::array<char, 100> big{};
  outcome r2;
  b.async_read_some(net::buffer(big), record(r2));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r2.done(); }));
  BOOST_TEST(!r2.ec);
  BOOST_TEST(as_string(big.data(), r2.n) == "456789");
  BOOST_TEST(b.available() == 0u);
}

// A write into a waiting reader goes straight into the reader's buffer.
BOOST_AUTO_TEST_CASE(write_to_waiting_reader) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  std::array<char, 10> in{};
  outcome r;
  b.async_read_some(net::buffer(in), record(r));
  settle(ctx);
  BOOST_TEST_REQUIRE(!r.done());
  const bytes out = pattern(100);
  outcome w;
  a.async_write_some(net::buffer(out), record(w));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r.done() && w.done(); }));
  BOOST_TEST(!r.ec);
  BOOST_TEST(!w.ec);
  BOOST_TEST(r.n == in.size());
  BOOST_TEST(w.n >= r.n);
  BOOST_TEST(w.n <= out.size());
  BOOST_TEST(difference(bytes(in.begin(), in.end()), pattern(10)) == "");
  BOOST_TEST(b.available() == w.n - r.n); // the rest, if any was taken, is buffered
}

// Scatter/gather: buffer sequences of many pieces, more than a single operation takes.
BOOST_AUTO_TEST_CASE(buffer_sequences_of_many_pieces) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx, {.capacity = 100});
  const bytes out = pattern(40 * 7);
  std::vector<net::const_buffer> pieces;
  for (std::size_t i = 0; i < 40; ++i) {
    pieces.push_back(net::buffer(out.data() + i * 7, 7));
    if (i % 5 == 0)
      pieces.push_back(net::const_buffer()); // empty pieces are skipped
  }
  bytes in(out.size());
  std::vector<net::mutable_buffer> in_pieces;
  for (std::size_t i = 0; i < in.size(); i += 13)
    in_pieces.push_back(net::buffer(in.data() + i, std::min<std::size_t>(13, in.size() - i)));
  outcome w, r;
  net::async_write(a, pieces, record(w));
  net::async_read(b, in_pieces, record(r));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w.done() && r.done(); }));
  BOOST_TEST(!w.ec);
  BOOST_TEST(!r.ec);
  BOOST_TEST(w.n == out.size());
  BOOST_TEST(r.n == out.size());
  BOOST_TEST(difference(in, out) == "");
}

// A pipe is an AsyncReadStream: the composed operations written for sockets work on it.
BOOST_AUTO_TEST_CASE(read_until) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx, {.capacity = 5});
  const std::string msg = "line one\nline two\n";
  std::string in;
  outcome w, r1, r2;
  net::async_write(a, net::buffer(msg), record(w));
  net::async_read_until(b, net::dynamic_buffer(in), '\n', record(r1));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r1.done(); }));
  BOOST_TEST(!r1.ec);
  BOOST_TEST(in.substr(0, r1.n) == "line one\n");
  in.erase(0, r1.n);
  // The writer waits on the 5-byte buffer until the second line is read too.
  net::async_read_until(b, net::dynamic_buffer(in), '\n', record(r2));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return r2.done() && w.done(); }));
  BOOST_TEST(!r2.ec);
  BOOST_TEST(in == "line two\n");
  BOOST_TEST(w.n == msg.size());
}

// Single-threaded soak: random sizes both ways through small and odd capacities, so that the
// ring buffer wraps, grows and empties many times. Byte-exact.
BOOST_AUTO_TEST_CASE(random_sizes_through_small_capacities) {
  constexpr std::size_t total = 200000;
  for (std::size_t capacity :
       {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{1000}, std::size_t{4096}}) {
    BOOST_TEST_CONTEXT("capacity " << capacity) {
      net::io_context ctx;
      auto p = sluice::make_pipe(ctx, {.capacity = capacity});
      const bytes out = pattern(total, 3);
      bytes in;
      std::mt19937 rng(static_cast<unsigned>(capacity + 1));
      std::uniform_int_distribution<std::size_t> size(1, 3000);
      std::exception_ptr writer_error, reader_error;
      error_code end;
      net::co_spawn(
          ctx,
          [&]() -> net::awaitable<void> {
            std::size_t sent = 0;
            while (sent < total) {
              std::size_t n = std::min(size(rng), total - sent);
              sent += co_await p.first.async_write_some(net::buffer(out.data() + sent, n),
                                                        net::use_awaitable);
            }
            p.first.shutdown(net::socket_base::shutdown_send);
          },
          [&](std::exception_ptr e) { writer_error = e; });
      net::co_spawn(
          ctx,
          [&]() -> net::awaitable<void> {
            std::vector<std::uint8_t> buf(3000);
            for (;;) {
              auto [ec, n] = co_await p.second.async_read_some(net::buffer(buf.data(), size(rng)),
                                                               net::as_tuple(net::use_awaitable));
              if (ec) {
                end = ec;
                break;
              }
              in.insert(in.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
            }
          },
          [&](std::exception_ptr e) { reader_error = e; });
      ctx.run_for(bound);
      BOOST_TEST(ctx.stopped()); // both coroutines finished
      BOOST_TEST(!writer_error);
      BOOST_TEST(!reader_error);
      BOOST_TEST(end == net::error::eof);
      BOOST_TEST(difference(in, out) == "");
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
