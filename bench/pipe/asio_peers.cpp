// The pipe benchmark's Asio peers: sluice::pipe as users create it, beast::test::stream and
// an Asio local socketpair; and what the benchmark does with any pair of them: a bulk
// transfer, one write and one read in flight, and 1-byte round trips, with the same handlers
// for every stream type.
//
// All of it has internal linkage, in this one file: the library's templates instantiated with
// these handlers are then inlined as they would be in a user's program, where the handlers'
// types are local to one file too.
#include "pipe/pattern.hpp"
#include "pipe/peers.hpp"
#include "support/measure.hpp"
#include "support/page_buffer.hpp"
#include "support/report.hpp"

#include <sluice/pipe.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/_experimental/test/stream.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>

namespace sluice::bench::pipe_bench {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
using boost::system::error_code;

/// Bulk transfer from `writer` to `reader`, one write and one read in flight.
template <class Stream>
class bulk_transfer {
public:
  bulk_transfer(net::io_context& ctx, Stream& writer, Stream& reader,
                std::span<const std::byte> src, std::span<std::byte> dst)
      : ctx_(ctx), writer_(writer), reader_(reader), src_(src), dst_(dst) {}

  std::uint64_t run(std::uint64_t total) {
    total_ = total;
    written_ = read_ = 0;
    offset_ = 0;
    failure_.clear();
    ctx_.restart();
    start_read();
    start_write();
    ctx_.run();
    check(failure_.empty(), failure_);
    check(written_ == total_ && read_ == total_,
          format("moved %llu / read %llu of %llu bytes", static_cast<unsigned long long>(written_),
                 static_cast<unsigned long long>(read_), static_cast<unsigned long long>(total_)));
    return read_;
  }

private:
  void start_write() {
    std::size_t n = std::min<std::uint64_t>(src_.size() - offset_, total_ - written_);
    writer_.async_write_some(net::buffer(src_.data() + offset_, n),
                             [this](const error_code& ec, std::size_t k) { on_write(ec, k); });
  }

  void on_write(const error_code& ec, std::size_t n) {
    if (ec || n == 0)
      return fail("write: " + (ec ? ec.message() : std::string("0 bytes")));
    written_ += n;
    offset_ = (offset_ + n) % src_.size();
    if (written_ < total_)
      start_write();
  }

  void start_read() {
    reader_.async_read_some(net::buffer(dst_.data(), dst_.size()),
                            [this](const error_code& ec, std::size_t k) { on_read(ec, k); });
  }

  void on_read(const error_code& ec, std::size_t n) {
    if (ec || n == 0)
      return fail("read: " + (ec ? ec.message() : std::string("0 bytes")));
    if (n > dst_.size() || !read_matches(src_, dst_.first(n), read_, reads_++))
      return fail(format("read of %zu bytes at %llu: wrong bytes", n,
                         static_cast<unsigned long long>(read_)));
    read_ += n;
    if (read_ < total_)
      start_read();
  }

  void fail(std::string what) {
    if (failure_.empty())
      failure_ = std::move(what);
    ctx_.stop(); // the other side may wait forever
  }

  net::io_context& ctx_;
  Stream& writer_;
  Stream& reader_;
  std::span<const std::byte> src_;
  std::span<std::byte> dst_;
  std::uint64_t total_ = 0, written_ = 0, read_ = 0;
  std::uint64_t reads_ = 0; // completed reads, for read_matches' sampling
  std::size_t offset_ = 0;  // into the chunk being written
  std::string failure_;
};

/// 1-byte round trips: A writes, B echoes, A reads; A starts the next one once both its
/// write and its read have completed.
template <class Stream>
class round_trips {
public:
  round_trips(net::io_context& ctx, Stream& a, Stream& b) : ctx_(ctx), a_(a), b_(b) {}

  std::uint64_t run(std::uint64_t count) {
    target_ = count;
    done_ = echoed_ = 0;
    failure_.clear();
    ctx_.restart();
    start_read_b();
    next_round();
    ctx_.run();
    check(failure_.empty(), failure_);
    check(done_ == target_ && echoed_ == target_,
          format("%llu round trips, %llu echoes, of %llu", static_cast<unsigned long long>(done_),
                 static_cast<unsigned long long>(echoed_),
                 static_cast<unsigned long long>(target_)));
    return done_;
  }

private:
  void next_round() {
    a_out_ = static_cast<unsigned char>(done_ * 7 + 1);
    a_waiting_ = 2;
    a_.async_read_some(net::buffer(&a_in_, 1),
                       [this](const error_code& ec, std::size_t n) { on_a_read(ec, n); });
    a_.async_write_some(net::buffer(&a_out_, 1),
                        [this](const error_code& ec, std::size_t n) { on_a_written(ec, n); });
  }

  void on_a_written(const error_code& ec, std::size_t n) {
    if (ec || n != 1)
      return fail("A write: " + (ec ? ec.message() : format("%zu bytes", n)));
    a_done();
  }

  void on_a_read(const error_code& ec, std::size_t n) {
    if (ec || n != 1 || a_in_ != a_out_)
      return fail("A read: " + (ec ? ec.message() : format("%zu bytes, wrong echo", n)));
    ++done_;
    a_done();
  }

  void a_done() {
    if (--a_waiting_ == 0 && done_ < target_)
      next_round();
  }

  void start_read_b() {
    b_.async_read_some(net::buffer(&b_in_, 1),
                       [this](const error_code& ec, std::size_t n) { on_b_read(ec, n); });
  }

  void on_b_read(const error_code& ec, std::size_t n) {
    if (ec || n != 1)
      return fail("B read: " + (ec ? ec.message() : format("%zu bytes", n)));
    b_out_ = b_in_;
    ++echoed_;
    b_.async_write_some(net::buffer(&b_out_, 1), [this](const error_code& ec, std::size_t n) {
      if (ec || n != 1)
        fail("B write: " + (ec ? ec.message() : format("%zu bytes", n)));
    });
    if (echoed_ < target_)
      start_read_b();
  }

  void fail(std::string what) {
    if (failure_.empty())
      failure_ = std::move(what);
    ctx_.stop();
  }

  net::io_context& ctx_;
  Stream& a_;
  Stream& b_;
  unsigned char a_out_ = 0, a_in_ = 0, b_in_ = 0, b_out_ = 0;
  int a_waiting_ = 0;
  std::uint64_t target_ = 0, done_ = 0, echoed_ = 0;
  std::string failure_;
};

/// Bulk transfers of `chunk`-sized writes between the streams that `make(ctx)` returns, a
/// connected pair on `ctx`.
template <class MakePair>
workload asio_bulk(MakePair make, std::size_t chunk, const config& cfg) {
  using pair_type = decltype(make(std::declval<net::io_context&>()));
  struct state {
    state(MakePair make, std::size_t chunk, std::size_t offset)
        : ends(make(ctx)), src(make_pattern(chunk)), dst(offset + chunk),
          transfer(ctx, ends.first, ends.second, src.span(), dst.span().subspan(offset)) {}
    net::io_context ctx;
    pair_type ends;
    page_buffer src, dst;
    bulk_transfer<typename pair_type::first_type> transfer;
  };
  auto s = std::make_shared<state>(make, chunk, cfg.offset);
  return [s](std::uint64_t n) { return s->transfer.run(n); };
}

/// 1-byte round trips between the streams that `make(ctx)` returns.
template <class MakePair>
workload asio_round_trips(MakePair make) {
  using pair_type = decltype(make(std::declval<net::io_context&>()));
  struct state {
    explicit state(MakePair make) : ends(make(ctx)), trips(ctx, ends.first, ends.second) {}
    net::io_context ctx;
    pair_type ends;
    round_trips<typename pair_type::first_type> trips;
  };
  auto s = std::make_shared<state>(make);
  return [s](std::uint64_t n) { return s->trips.run(n); };
}

template <class MakePair>
workload asio_case(MakePair make, bench_case c, const config& cfg) {
  return c == round_trip ? asio_round_trips(make) : asio_bulk(make, chunk_of[c], cfg);
}

std::pair<sluice::pipe, sluice::pipe> make_sluice(net::io_context& ctx) {
  return sluice::make_pipe(ctx); // any_io_executor, default options: as users write it
}

std::pair<beast::test::stream, beast::test::stream> make_beast(net::io_context& ctx) {
  beast::test::stream a(ctx), b(ctx);
  a.connect(b);
  return {std::move(a), std::move(b)};
}

using local_socket = net::local::stream_protocol::socket;
std::pair<local_socket, local_socket> make_socketpair(net::io_context& ctx) {
  local_socket a(ctx), b(ctx);
  net::local::connect_pair(a, b);
  return {std::move(a), std::move(b)};
}

} // namespace

workload sluice_workload(bench_case c, const config& cfg) {
  return asio_case(make_sluice, c, cfg);
}

workload beast_workload(bench_case c, const config& cfg) {
  return asio_case(make_beast, c, cfg);
}

workload socketpair_workload(bench_case c, const config& cfg) {
  return asio_case(make_socketpair, c, cfg);
}

} // namespace sluice::bench::pipe_bench
