// filtered_stream: ports of libevent's filter tests, zlib, and the failure modes libevent has.
#include <boost/test/unit_test.hpp>

#include <sluice/filtered_stream.hpp>
#include <sluice/filters/zlib.hpp>
#include <sluice/pipe.hpp>

#include <boost/asio.hpp>

#include <sluice_test/pattern.hpp>
#include <sluice_test/support.hpp>

#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace net = boost::asio;
using sluice::filter_result;
using sluice::flush_mode;
using bytes_in = std::span<const std::byte>;
using bytes_out = std::span<std::byte>;

using namespace sluice_test;

namespace {

// libevent's test: every byte written goes out as "x" + byte...
struct prefix_x {
  filter_result operator()(bytes_in& in, bytes_out& out, flush_mode) const {
    bool moved = false;
    while (!in.empty() && out.size() >= 2) {
      out[0] = std::byte{'x'};
      out[1] = in[0];
      in = in.subspan(1);
      out = out.subspan(2);
      moved = true;
    }
    return moved ? filter_result::ok : filter_result::need_more;
  }
};

// ...and is read back by dropping the "x" (an odd byte left waits for its partner).
struct strip_x {
  filter_result operator()(bytes_in& in, bytes_out& out, flush_mode) const {
    bool moved = false;
    while (in.size() >= 2 && !out.empty()) {
      if (in[0] != std::byte{'x'})
        return filter_result::error;
      out[0] = in[1];
      in = in.subspan(2);
      out = out.subspan(1);
      moved = true;
    }
    return moved ? filter_result::ok : filter_result::need_more;
  }
};

// A filter must be able to advance its spans: one that takes them by value (or by const
// reference) would compile and then fail with "filter made no progress". It is refused at
// compile time.
struct spans_by_value {
  filter_result operator()(bytes_in in, bytes_out& out, flush_mode) const;
};
struct out_by_const_reference {
  filter_result operator()(bytes_in& in, const bytes_out& out, flush_mode) const;
};
static_assert(!sluice::filter<spans_by_value>);
static_assert(!sluice::filter<out_by_const_reference>);
static_assert(sluice::filter<prefix_x>);
static_assert(sluice::filter<sluice::pass_through_filter>);
static_assert(sluice::filter<sluice::zlib::deflate_filter>);
static_assert(sluice::filter<sluice::zlib::inflate_filter>);

// Adds a 20-byte header once, then copies (libevent issue #362: data stuck under a mark).
struct header_once {
  bool sent = false;
  filter_result operator()(bytes_in& in, bytes_out& out, flush_mode mode) {
    std::size_t before = out.size();
    if (!sent && out.size() >= 20) {
      std::memset(out.data(), 'H', 20);
      out = out.subspan(20);
      sent = true;
    }
    sluice::pass_through_filter{}(in, out, mode);
    return out.size() != before ? filter_result::ok : filter_result::need_more;
  }
};

struct lazy { // says ok and does nothing: libevent would spin forever
  filter_result operator()(bytes_in&, bytes_out&, flush_mode) const { return filter_result::ok; }
};

template <class Stream>
void read_all(Stream& s, std::string& into, boost::system::error_code& final_ec, bool& done) {
  auto buf = std::make_shared<std::array<char, 1000>>();
  s.async_read_some(net::buffer(*buf), [&s, &into, &final_ec, &done, buf](auto ec, std::size_t n) {
    into.append(buf->data(), n);
    if (ec) {
      final_ec = ec;
      done = true;
      return;
    }
    read_all(s, into, final_ec, done);
  });
}

} // namespace

BOOST_AUTO_TEST_CASE(x_prefix_filters_carry_8333_bytes) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  sluice::filtered_stream<sluice::pipe, sluice::pass_through_filter, prefix_x> writer(std::move(a));
  sluice::filtered_stream<sluice::pipe, strip_x, sluice::pass_through_filter> reader(std::move(b));
  auto data = pattern(8333);
  bool written = false, done = false;
  net::async_write(writer, net::buffer(data), [&](auto ec, std::size_t n) {
    BOOST_TEST(!ec);
    BOOST_TEST(n == 8333u);
    writer.next_layer().shutdown(net::socket_base::shutdown_send);
    written = true;
  });
  std::string got;
  boost::system::error_code end;
  read_all(reader, got, end, done);
  BOOST_REQUIRE(run_until(ctx, [&] { return written && done; }));
  BOOST_TEST(end == net::error::eof);
  BOOST_TEST(got == std::string(data.begin(), data.end()));
}

BOOST_AUTO_TEST_CASE(header_once_with_4096_bounds_delivers_4116_bytes) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  sluice::filtered_stream<sluice::pipe, sluice::pass_through_filter, header_once> writer(
      std::move(a));
  writer.set_buffer_size(4096);
  auto data = pattern(4096);
  bool written = false, done = false;
  net::async_write(writer, net::buffer(data), [&](auto ec, std::size_t n) {
    BOOST_TEST(!ec);
    BOOST_TEST(n == 4096u);
    writer.next_layer().shutdown(net::socket_base::shutdown_send);
    written = true;
  });
  std::string got;
  boost::system::error_code end;
  read_all(b, got, end, done);
  BOOST_REQUIRE(run_until(ctx, [&] { return written && done; }));
  BOOST_TEST(end == net::error::eof);
  BOOST_TEST(got.size() == 4116u);
  BOOST_TEST(got.substr(0, 20) == std::string(20, 'H'));
  BOOST_TEST(got.substr(20) == std::string(data.begin(), data.end()));
}

namespace {
template <class Lower>
void zlib_1800_then_6533(net::io_context& ctx, Lower lower_a, Lower lower_b) {
  sluice::filtered_stream<Lower, sluice::pass_through_filter, sluice::zlib::deflate_filter> writer(
      std::move(lower_a));
  sluice::filtered_stream<Lower, sluice::zlib::inflate_filter, sluice::pass_through_filter> reader(
      std::move(lower_b));
  auto data = pattern(8333, 7);
  bool finished = false, done = false;
  net::async_write(writer, net::buffer(data.data(), 1800), [&](auto ec, std::size_t n) {
    BOOST_TEST(!ec);
    BOOST_TEST(n == 1800u);
    net::async_write(writer, net::buffer(data.data() + 1800, 6533), [&](auto ec, std::size_t n) {
      BOOST_TEST(!ec);
      BOOST_TEST(n == 6533u);
      writer.async_flush(flush_mode::finished, [&](auto ec) {
        BOOST_TEST(!ec);
        writer.next_layer().shutdown(net::socket_base::shutdown_send);
        finished = true;
      });
    });
  });
  std::string got;
  boost::system::error_code end;
  read_all(reader, got, end, done);
  BOOST_REQUIRE(run_until(ctx, [&] { return finished && done; }));
  BOOST_TEST(end == net::error::eof);
  BOOST_TEST(got.size() == 8333u);
  BOOST_TEST(got == std::string(data.begin(), data.end()));
}
} // namespace

BOOST_AUTO_TEST_CASE(zlib_over_a_pipe) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  zlib_1800_then_6533(ctx, std::move(a), std::move(b));
}

BOOST_AUTO_TEST_CASE(zlib_over_loopback_tcp) {
  net::io_context ctx;
  net::ip::tcp::acceptor acceptor(ctx, {net::ip::address_v4::loopback(), 0});
  net::ip::tcp::socket client(ctx), server(ctx);
  client.connect(acceptor.local_endpoint());
  acceptor.accept(server);
  zlib_1800_then_6533(ctx, std::move(client), std::move(server));
}

BOOST_AUTO_TEST_CASE(sync_flush_makes_everything_so_far_readable) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  sluice::filtered_stream<sluice::pipe, sluice::pass_through_filter, sluice::zlib::deflate_filter>
      writer(std::move(a));
  sluice::filtered_stream<sluice::pipe, sluice::zlib::inflate_filter, sluice::pass_through_filter>
      reader(std::move(b));
  std::string hello = "hello, compressed world";
  bool flushed = false;
  net::async_write(writer, net::buffer(hello), [&](auto ec, std::size_t) {
    BOOST_TEST(!ec);
    writer.async_flush(flush_mode::flush, [&](auto ec) {
      BOOST_TEST(!ec);
      flushed = true;
    });
  });
  std::string got(hello.size(), '\0');
  bool read = false;
  net::async_read(reader, net::buffer(got), [&](auto ec, std::size_t n) {
    BOOST_TEST(!ec);
    BOOST_TEST(n == hello.size());
    read = true;
  });
  BOOST_REQUIRE(run_until(ctx, [&] { return flushed && read; }));
  BOOST_TEST(got == hello);
}

BOOST_AUTO_TEST_CASE(corrupt_deflate_input_is_an_error_code) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  sluice::filtered_stream<sluice::pipe, sluice::zlib::inflate_filter, sluice::pass_through_filter>
      reader(std::move(b));
  std::string junk = "this is not a zlib stream at all";
  net::async_write(a, net::buffer(junk), [](auto, auto) {});
  bool done = false;
  std::string got;
  boost::system::error_code end;
  read_all(reader, got, end, done);
  BOOST_REQUIRE(run_until(ctx, [&] { return done; }));
  BOOST_TEST(end == make_error_code(sluice::error::filter_failed));
  BOOST_TEST(end.category().name() == std::string("sluice"));
}

BOOST_AUTO_TEST_CASE(truncated_deflate_stream_is_an_error_not_eof) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  sluice::filtered_stream<sluice::pipe, sluice::pass_through_filter, sluice::zlib::deflate_filter>
      writer(std::move(a));
  sluice::filtered_stream<sluice::pipe, sluice::zlib::inflate_filter, sluice::pass_through_filter>
      reader(std::move(b));
  auto data = pattern(5000);
  net::async_write(writer, net::buffer(data), [&](auto ec, std::size_t) {
    BOOST_TEST(!ec);
    writer.async_flush(flush_mode::flush, [&](auto ec) { // no trailer
      BOOST_TEST(!ec);
      writer.next_layer().shutdown(net::socket_base::shutdown_send);
    });
  });
  bool done = false;
  std::string got;
  boost::system::error_code end;
  read_all(reader, got, end, done);
  BOOST_REQUIRE(run_until(ctx, [&] { return done; }));
  BOOST_TEST(got == std::string(data.begin(), data.end())); // all that arrived is delivered
  BOOST_TEST(end == make_error_code(sluice::error::filter_failed));
}

BOOST_AUTO_TEST_CASE(a_filter_without_progress_is_an_error_not_a_busy_loop) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  sluice::filtered_stream<sluice::pipe, lazy, lazy> s(std::move(a));
  boost::system::error_code write_ec, read_ec, flush_ec;
  int completed = 0;
  std::string x = "x";
  s.async_write_some(net::buffer(x), [&](auto ec, std::size_t n) {
    write_ec = ec;
    BOOST_TEST(n == 0u);
    ++completed;
  });
  s.async_flush(flush_mode::flush, [&](auto ec) {
    flush_ec = ec;
    ++completed;
  });
  net::async_write(b, net::buffer(x), [](auto, auto) {});
  char c;
  s.async_read_some(net::buffer(&c, 1), [&](auto ec, std::size_t n) {
    read_ec = ec;
    BOOST_TEST(n == 0u);
    ++completed;
  });
  BOOST_REQUIRE(run_until(ctx, [&] { return completed == 3; }));
  BOOST_TEST(write_ec == make_error_code(sluice::error::filter_stalled));
  BOOST_TEST(flush_ec == make_error_code(sluice::error::filter_stalled));
  BOOST_TEST(read_ec == make_error_code(sluice::error::filter_stalled));
}

BOOST_AUTO_TEST_CASE(zero_length_operations_complete_at_once) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  sluice::filtered_stream<sluice::pipe, sluice::zlib::inflate_filter, sluice::zlib::deflate_filter>
      s(std::move(a));
  int completed = 0;
  s.async_read_some(net::mutable_buffer(), [&](auto ec, std::size_t n) {
    BOOST_TEST(!ec);
    BOOST_TEST(n == 0u);
    ++completed;
  });
  s.async_write_some(net::const_buffer(), [&](auto ec, std::size_t n) {
    BOOST_TEST(!ec);
    BOOST_TEST(n == 0u);
    ++completed;
  });
  BOOST_TEST(completed == 0); // never inline
  BOOST_REQUIRE(run_until(ctx, [&] { return completed == 2; }));
}

// A write cancelled while the next layer pushes back has still been taken by the filter:
// it reports those bytes, so a caller who goes on from there sends each byte once.
BOOST_AUTO_TEST_CASE(cancelled_write_reports_what_the_filter_took) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx, {.capacity = 1000});
  sluice::filtered_stream<sluice::pipe, sluice::pass_through_filter, sluice::pass_through_filter> s(
      std::move(a));
  const auto data = pattern(10000);
  net::cancellation_signal cancel;
  boost::system::error_code write_ec;
  std::size_t written = 0;
  bool write_done = false;
  s.async_write_some(net::buffer(data),
                     net::bind_cancellation_slot(cancel.slot(), [&](auto ec, std::size_t n) {
                       write_ec = ec;
                       written = n;
                       write_done = true;
                     }));
  // The first 1000 bytes fill the pipe; the filter has taken all 10000.
  BOOST_REQUIRE(run_until(ctx, [&] { return b.available() >= 1000; }));
  BOOST_TEST(!write_done);
  cancel.emit(net::cancellation_type::terminal);
  BOOST_REQUIRE(run_until(ctx, [&] { return write_done; }));
  BOOST_TEST(write_ec == net::error::operation_aborted);
  BOOST_TEST(written == data.size());

  // Going on from where the report says: the rest (nothing here), a flush, the end.
  bool flushed = false;
  net::async_write(s, net::buffer(data.data() + written, data.size() - written),
                   [&](auto ec, std::size_t) {
                     BOOST_TEST(!ec);
                     s.async_flush(flush_mode::flush, [&](auto ec) {
                       BOOST_TEST(!ec);
                       s.next_layer().shutdown(net::socket_base::shutdown_send);
                       flushed = true;
                     });
                   });
  std::string got;
  boost::system::error_code read_ec;
  bool read_done = false;
  read_all(b, got, read_ec, read_done);
  BOOST_REQUIRE(run_until(ctx, [&] { return flushed && read_done; }));
  BOOST_TEST(read_ec == net::error::eof);
  BOOST_TEST(got.size() == data.size());
  BOOST_TEST((got == std::string(data.begin(), data.end())));
}

BOOST_AUTO_TEST_CASE(set_buffer_size_rejects_zero) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  sluice::filtered_stream<sluice::pipe, sluice::pass_through_filter, sluice::pass_through_filter> s(
      std::move(a));
  BOOST_CHECK_THROW(s.set_buffer_size(0), std::invalid_argument);
  BOOST_CHECK_THROW(sluice::zlib::deflate_filter(10), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(large_random_transfer_through_deflate_and_inflate_is_exact) {
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  const std::size_t total = 8u << 20; // sanitizers run zlib many times slower
#else
  const std::size_t total = 64u << 20;
#endif
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  sluice::filtered_stream<sluice::pipe, sluice::pass_through_filter, sluice::zlib::deflate_filter>
      writer(std::move(a), {}, sluice::zlib::deflate_filter(1));
  sluice::filtered_stream<sluice::pipe, sluice::zlib::inflate_filter, sluice::pass_through_filter>
      reader(std::move(b));
  // Compressible but not trivial: runs of random letters.
  std::mt19937_64 rng(2026);
  std::vector<char> data(total);
  for (std::size_t i = 0; i < total;) {
    std::size_t run = rng() % 64 + 1;
    char c = static_cast<char>('a' + rng() % 26);
    for (; run > 0 && i < total; --run)
      data[i++] = (rng() % 8 == 0) ? static_cast<char>(rng()) : c;
  }
  std::size_t sent = 0, received = 0;
  bool finished = false, mismatch = false, ended = false;
  std::function<void()> write_next = [&] {
    if (sent == total) {
      writer.async_flush(flush_mode::finished, [&](auto ec) {
        BOOST_TEST(!ec);
        writer.next_layer().shutdown(net::socket_base::shutdown_send);
        finished = true;
      });
      return;
    }
    std::size_t n = std::min<std::size_t>(total - sent, rng() % 100000 + 1);
    net::async_write(writer, net::buffer(data.data() + sent, n), [&, n](auto ec, std::size_t m) {
      BOOST_REQUIRE(!ec);
      BOOST_REQUIRE(m == n);
      sent += n;
      write_next();
    });
  };
  std::vector<char> buf(200000);
  std::function<void()> read_next = [&] {
    std::size_t want = rng() % buf.size() + 1;
    reader.async_read_some(net::buffer(buf.data(), want), [&](auto ec, std::size_t n) {
      if (n > 0 && (received + n > total || std::memcmp(buf.data(), data.data() + received, n)))
        mismatch = true;
      received += n;
      if (ec) {
        BOOST_TEST(ec == net::error::eof);
        ended = true;
        return;
      }
      read_next();
    });
  };
  write_next();
  read_next();
  BOOST_REQUIRE(run_until(
      ctx, [&] { return finished && ended; }, std::chrono::seconds(120)));
  BOOST_TEST(!mismatch);
  BOOST_TEST(received == total);
}

BOOST_AUTO_TEST_CASE(small_buffers_and_incompressible_data_still_move_everything) {
  // deflate holds more than a 512-byte buffer: a write first has to give that out without
  // consuming, which is progress, not a stall.
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  sluice::filtered_stream<sluice::pipe, sluice::pass_through_filter, sluice::zlib::deflate_filter>
      writer(std::move(a), {}, sluice::zlib::deflate_filter(9));
  sluice::filtered_stream<sluice::pipe, sluice::zlib::inflate_filter, sluice::pass_through_filter>
      reader(std::move(b));
  writer.set_buffer_size(512);
  reader.set_buffer_size(512);
  std::vector<char> data(1 << 20);
  std::mt19937 rng(5);
  for (auto& c : data)
    c = static_cast<char>(rng());
  bool finished = false, done = false;
  net::async_write(writer, net::buffer(data), [&](auto ec, std::size_t n) {
    BOOST_TEST(!ec);
    BOOST_TEST(n == data.size());
    writer.async_flush(flush_mode::finished, [&](auto ec) {
      BOOST_TEST(!ec);
      writer.next_layer().shutdown(net::socket_base::shutdown_send);
      finished = true;
    });
  });
  std::string got;
  boost::system::error_code end;
  read_all(reader, got, end, done);
  BOOST_REQUIRE(run_until(ctx, [&] { return finished && done; }));
  BOOST_TEST(end == net::error::eof);
  BOOST_TEST(got.size() == data.size());
  BOOST_TEST((got == std::string(data.begin(), data.end())));
}
