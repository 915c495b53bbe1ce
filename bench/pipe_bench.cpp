// sluice::pipe against its peers, in one run, on one thread:
//
//   bulk throughput  one write in flight: each write completion issues the next write (the
//                    rest of the chunk, or the next chunk); the reader keeps one read pending
//                    with a buffer of the chunk's size. 4 KiB and 64 KiB chunks.
//   round trips      A writes 1 byte, B reads it and writes it back, A reads it; repeat.
//
// Peers: beast::test::stream, an Asio local socketpair, libevent's bufferevent_pair (a write
// callback drives the next write, a read callback drains into a user buffer), and memcpy of
// the same chunks (the physical limit). Every Asio peer gets its own io_context with the
// default concurrency hint and the same handlers. Each figure is the best of --reps timed
// runs after an untimed warm-up; the peers take turns run by run. Each run checks what it
// moved (byte counts; the bytes at both ends of every read, and all bytes of every 256th
// read, against the pattern written), so a broken setup fails loudly (exit code 1).
#include "bench_util.hpp"

#include <sluice/pipe.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/_experimental/test/stream.hpp>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace net = boost::asio;
namespace beast = boost::beast;
using boost::system::error_code;
using namespace sluice::bench;

namespace {

constexpr double gib = 1024.0 * 1024.0 * 1024.0;

struct config {
  std::uint64_t bytes = 1ull << 30;   // per bulk case and timed run
  std::uint64_t roundtrips = 200'000; // per round-trip case and timed run
  int reps = 5;
  std::size_t offset = 0; // of each reader's buffer from a page boundary
  bool verbose = false;
  std::set<std::string> peers; // empty: all
  std::set<std::string> cases; // empty: all (keys: 4k, 64k, rt)
};

// A chunk of pseudo-random bytes: the writer sends it over and over, so stream position p
// holds src[p % chunk], and a read can be checked at both of its ends in O(1).
page_buffer make_pattern(std::size_t n) {
  page_buffer v(n);
  std::mt19937 gen(12345);
  for (auto& b : v.span())
    b = static_cast<std::byte>(gen() & 0xff);
  return v;
}

// Checks a read at stream position `pos` against the pattern: at both of its ends always,
// and every byte of it on every 256th read (`index`), so that the check costs next to nothing.
bool read_matches(std::span<const std::byte> src, std::span<const std::byte> got, std::uint64_t pos,
                  std::uint64_t index) {
  std::size_t c = src.size();
  if (got.front() != src[pos % c] || got.back() != src[(pos + got.size() - 1) % c])
    return false;
  if (index % 256 != 0)
    return true;
  for (std::size_t done = 0; done < got.size();) { // at most one wrap: reads are <= c bytes
    std::size_t from = (pos + done) % c, n = std::min(got.size() - done, c - from);
    if (std::memcmp(got.data() + done, src.data() + from, n) != 0)
      return false;
    done += n;
  }
  return true;
}

// ---- Asio streams (sluice::pipe, beast::test::stream, socketpair) ------------------------

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

/// One peer set up for one case: `run(n)` moves n units (bytes, round trips), checks them,
/// and returns n. Owns its io_context or event_base, streams and buffers.
using workload = std::function<std::uint64_t(std::uint64_t)>;

/// `make(ctx)` returns a connected pair of streams on `ctx`.
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

// ---- libevent bufferevent_pair ----------------------------------------------------------

/// An event_base and a bufferevent_pair on it.
class libevent_pair {
public:
  libevent_pair() {
    base_ = event_base_new();
    check(base_ != nullptr, "event_base_new failed");
    if (bufferevent_pair_new(base_, 0, ends_.data()) != 0) {
      event_base_free(base_);
      throw check_failed("bufferevent_pair_new failed");
    }
  }
  libevent_pair(const libevent_pair&) = delete;
  libevent_pair& operator=(const libevent_pair&) = delete;
  ~libevent_pair() {
    bufferevent_free(ends_[0]);
    bufferevent_free(ends_[1]);
    event_base_free(base_);
  }

  event_base* base() const { return base_; }
  bufferevent* end(int i) const { return ends_[static_cast<std::size_t>(i)]; }

private:
  event_base* base_ = nullptr;
  std::array<bufferevent*, 2> ends_{};
};

/// Bulk transfer: the write callback (output drained to the low watermark 0, i.e. the chunk
/// went over) writes the next chunk; the read callback copies what arrived into a
/// chunk-sized user buffer, as the Asio readers do.
class libevent_bulk {
public:
  libevent_bulk(std::span<const std::byte> src, std::span<std::byte> dst) : src_(src), dst_(dst) {
    bufferevent_setcb(pair_.end(0), nullptr, &on_write, nullptr, this);
    bufferevent_setcb(pair_.end(1), &on_read, nullptr, nullptr, this);
    bufferevent_enable(pair_.end(0), EV_WRITE);
    bufferevent_enable(pair_.end(1), EV_READ);
  }

  std::uint64_t run(std::uint64_t total) {
    total_ = total;
    written_ = read_ = 0;
    failure_.clear();
    write_next();
    event_base_dispatch(pair_.base()); // returns when no callback is left to run
    check(failure_.empty(), failure_);
    check(written_ == total_ && read_ == total_,
          format("wrote %llu / read %llu of %llu bytes", static_cast<unsigned long long>(written_),
                 static_cast<unsigned long long>(read_), static_cast<unsigned long long>(total_)));
    return read_;
  }

private:
  static void on_write(bufferevent*, void* self) {
    static_cast<libevent_bulk*>(self)->write_next();
  }

  static void on_read(bufferevent* bev, void* self) {
    static_cast<libevent_bulk*>(self)->drain(bufferevent_get_input(bev));
  }

  void write_next() {
    if (written_ == total_)
      return;
    std::size_t n = std::min<std::uint64_t>(src_.size(), total_ - written_);
    if (bufferevent_write(pair_.end(0), src_.data(), n) != 0)
      return fail("bufferevent_write failed");
    written_ += n;
  }

  void drain(evbuffer* in) {
    for (;;) {
      int got = evbuffer_remove(in, dst_.data(), dst_.size());
      if (got <= 0)
        return;
      auto n = static_cast<std::size_t>(got);
      if (!read_matches(src_, dst_.first(n), read_, reads_++))
        return fail(format("read of %zu bytes at %llu: wrong bytes", n,
                           static_cast<unsigned long long>(read_)));
      read_ += n;
    }
  }

  void fail(std::string what) {
    if (failure_.empty())
      failure_ = std::move(what);
    event_base_loopbreak(pair_.base());
  }

  libevent_pair pair_;
  std::span<const std::byte> src_;
  std::span<std::byte> dst_;
  std::uint64_t total_ = 0, written_ = 0, read_ = 0;
  std::uint64_t reads_ = 0; // completed reads, for read_matches' sampling
  std::string failure_;
};

/// 1-byte round trips: A's read callback checks the echo and sends the next byte; B's read
/// callback echoes what it reads.
class libevent_round_trips {
public:
  libevent_round_trips() {
    bufferevent_setcb(pair_.end(0), &on_read_a, nullptr, nullptr, this);
    bufferevent_setcb(pair_.end(1), &on_read_b, nullptr, nullptr, this);
    for (int i = 0; i < 2; ++i)
      bufferevent_enable(pair_.end(i), EV_READ | EV_WRITE);
  }

  std::uint64_t run(std::uint64_t count) {
    target_ = count;
    done_ = echoed_ = 0;
    failure_.clear();
    send();
    event_base_dispatch(pair_.base());
    check(failure_.empty(), failure_);
    check(done_ == target_ && echoed_ == target_,
          format("%llu round trips, %llu echoes, of %llu", static_cast<unsigned long long>(done_),
                 static_cast<unsigned long long>(echoed_),
                 static_cast<unsigned long long>(target_)));
    return done_;
  }

private:
  void send() {
    out_ = static_cast<unsigned char>(done_ * 7 + 1);
    if (bufferevent_write(pair_.end(0), &out_, 1) != 0)
      fail("A write failed");
  }

  static void on_read_a(bufferevent* bev, void* arg) {
    auto* self = static_cast<libevent_round_trips*>(arg);
    unsigned char in = 0;
    while (evbuffer_remove(bufferevent_get_input(bev), &in, 1) == 1) {
      if (in != self->out_)
        return self->fail("A read: wrong echo");
      if (++self->done_ < self->target_)
        self->send();
    }
  }

  static void on_read_b(bufferevent* bev, void* arg) {
    auto* self = static_cast<libevent_round_trips*>(arg);
    unsigned char in = 0;
    while (evbuffer_remove(bufferevent_get_input(bev), &in, 1) == 1) {
      ++self->echoed_;
      if (bufferevent_write(bev, &in, 1) != 0)
        return self->fail("B write failed");
    }
  }

  void fail(std::string what) {
    if (failure_.empty())
      failure_ = std::move(what);
    event_base_loopbreak(pair_.base());
  }

  libevent_pair pair_;
  unsigned char out_ = 0;
  std::uint64_t target_ = 0, done_ = 0, echoed_ = 0;
  std::string failure_;
};

workload libevent_bulk_workload(std::size_t chunk, const config& cfg) {
  struct state {
    state(std::size_t chunk, std::size_t offset)
        : src(make_pattern(chunk)), dst(offset + chunk),
          transfer(src.span(), dst.span().subspan(offset)) {}
    page_buffer src, dst;
    libevent_bulk transfer;
  };
  auto s = std::make_shared<state>(chunk, cfg.offset);
  return [s](std::uint64_t n) { return s->transfer.run(n); };
}

workload libevent_round_trip_workload() {
  auto s = std::make_shared<libevent_round_trips>();
  return [s](std::uint64_t n) { return s->run(n); };
}

// ---- memcpy: the limit ----------------------------------------------------------------

workload memcpy_workload(std::size_t chunk, const config& cfg) {
  struct state {
    state(std::size_t chunk, std::size_t offset)
        : src(make_pattern(chunk)), buffer(offset + chunk), dst(buffer.data() + offset) {}
    page_buffer src, buffer;
    std::byte* dst;
  };
  auto s = std::make_shared<state>(chunk, cfg.offset);
  return [s, chunk](std::uint64_t total) {
    std::fill_n(s->dst, chunk, std::byte{0});
    for (std::uint64_t done = 0; done < total;) {
      std::size_t n = std::min<std::uint64_t>(chunk, total - done);
      std::memcpy(s->dst, s->src.data(), n);
      keep(s->dst);
      done += n;
    }
    std::size_t last = total % chunk ? total % chunk : chunk;
    check(std::memcmp(s->dst, s->src.data(), last) == 0, "memcpy: wrong bytes");
    return total;
  };
}

// ---- the run ----------------------------------------------------------------------------

enum bench_case { bulk_4k, bulk_64k, round_trip, case_count };
constexpr std::array<std::size_t, 2> chunk_of = {4 * 1024, 64 * 1024};

struct peer {
  const char* key;                       // for --peers
  const char* label;                     // in the table
  std::array<double, case_count> best{}; // 0: not measured (or failed)
};

/// The workload of a peer for a case; an empty one when the peer has no such case.
using workload_maker = workload (*)(bench_case, const config&);

template <class MakePair>
workload asio_case(MakePair make, bench_case c, const config& cfg) {
  return c == round_trip ? asio_round_trips(make) : asio_bulk(make, chunk_of[c], cfg);
}

const std::map<std::string, workload_maker> workloads = {
    {"sluice", [](bench_case c, const config& cfg) { return asio_case(make_sluice, c, cfg); }},
    {"beast", [](bench_case c, const config& cfg) { return asio_case(make_beast, c, cfg); }},
    {"socketpair",
     [](bench_case c, const config& cfg) { return asio_case(make_socketpair, c, cfg); }},
    {"libevent",
     [](bench_case c, const config& cfg) {
       return c == round_trip ? libevent_round_trip_workload()
                              : libevent_bulk_workload(chunk_of[c], cfg);
     }},
    {"memcpy",
     [](bench_case c, const config& cfg) {
       return c == round_trip ? workload() : memcpy_workload(chunk_of[c], cfg);
     }},
};

constexpr std::array<const char*, case_count> case_keys = {"4k", "64k", "rt"};

/// Units per untimed warm-up run: an eighth of a timed run, but not too few.
std::uint64_t warm_up_units(bench_case c, const config& cfg) {
  std::uint64_t n = c == round_trip ? cfg.roundtrips : cfg.bytes;
  std::uint64_t at_least = c == round_trip ? 1000 : 4 * chunk_of[c];
  return std::max<std::uint64_t>(n / 8, std::min(n, at_least));
}

// Figures shown in a row: GiB/s for bulk, millions per second for round trips.
double shown(bench_case c, double per_second) {
  return c == round_trip ? per_second / 1e6 : per_second / gib;
}

void print_usage(const char* argv0) {
  std::printf(
      "usage: %s [--bytes N] [--roundtrips N] [--reps N] [--peers LIST] [--cases LIST]\n"
      "          [--offset N] [--quick] [--verbose]\n"
      "  --bytes N       bytes moved per bulk run (suffixes K, M, G; default 1G)\n"
      "  --roundtrips N  1-byte round trips per run (default 200000)\n"
      "  --reps N        timed runs per figure, best shown (default 5)\n"
      "  --peers LIST    comma-separated subset of beast,socketpair,libevent,memcpy\n"
      "                  (sluice always runs)\n"
      "  --cases LIST    comma-separated subset of 4k,64k,rt (default: all)\n"
      "  --offset N      start each reader's buffer N bytes past a page boundary (the\n"
      "                  writer's starts on one; default 0; 16 shows the 4K-aliasing penalty)\n"
      "  --quick         tiny run, a smoke check: --bytes 4M --roundtrips 2000 --reps 1\n"
      "  --verbose       print every timed run\n",
      argv0);
}

// Returns false (after printing why) on a bad command line.
bool parse_args(int argc, char** argv, config& cfg) {
  std::optional<std::uint64_t> bytes, trips, reps, offset;
  bool quick = false;
  command_line args(argc, argv);
  while (args.next()) {
    std::string_view arg = args.option();
    if (arg == "--bytes") {
      bytes = args.size(1, UINT64_MAX);
    } else if (arg == "--roundtrips") {
      trips = args.size(1, UINT64_MAX);
    } else if (arg == "--reps") {
      reps = args.size(1, 1000);
    } else if (arg == "--offset") {
      const char* v = args.value();
      offset = v ? parse_size(v) : std::nullopt;
      if (v && (!offset || *offset >= page_buffer::page))
        args.fail("bad value for --offset (0 to %zu)\n", page_buffer::page - 1);
    } else if (arg == "--peers") {
      args.list("peer", cfg.peers, [](auto& k) { return workloads.contains(k); });
    } else if (arg == "--cases") {
      args.list("case", cfg.cases, [](auto& k) { return std::ranges::count(case_keys, k) > 0; });
    } else if (arg == "--quick") {
      quick = true;
    } else if (arg == "--verbose") {
      cfg.verbose = true;
    } else {
      args.help_or_unknown(print_usage);
    }
  }
  if (quick) {
    cfg.bytes = 4 << 20;
    cfg.roundtrips = 2000;
    cfg.reps = 1;
  }
  if (bytes)
    cfg.bytes = *bytes;
  if (trips)
    cfg.roundtrips = *trips;
  if (reps)
    cfg.reps = static_cast<int>(*reps);
  if (offset)
    cfg.offset = static_cast<std::size_t>(*offset);
  return args.ok();
}

} // namespace

int main(int argc, char** argv) {
  config cfg;
  if (!parse_args(argc, argv, cfg))
    return 2;

  std::vector<peer> peers = {
      {"sluice", "sluice::pipe", {}},
      {"beast", "beast::test::stream", {}},
      {"socketpair", "asio local socketpair", {}},
      {"libevent", "libevent bufferevent_pair", {}},
      {"memcpy", "memcpy (the limit)", {}},
  };
  std::erase_if(peers, [&](const peer& p) {
    return std::string(p.key) != "sluice" && !cfg.peers.empty() && !cfg.peers.contains(p.key);
  });

  std::printf(
      "sluice::pipe vs peers, one thread. Each peer has its own io_context (default concurrency\n"
      "hint) or event_base; one write and one read in flight; the reader's buffer is one chunk.\n"
      "Bulk: %s per run, page-aligned buffers (reader's + %zu B). Round trips: %llu per run.\n"
      "Each figure is the best of %d timed run%s, after an untimed warm-up; the peers take\n"
      "turns run by run. Ratio columns are sluice / peer (> 1: sluice is faster).\n\n",
      format_size(cfg.bytes).c_str(), cfg.offset, static_cast<unsigned long long>(cfg.roundtrips),
      cfg.reps, cfg.reps == 1 ? "" : "s");
  std::fflush(stdout);

  int failures = 0;
  const char* case_names[] = {"4 KiB writes", "64 KiB writes", "1-byte round trips"};
  for (int ci = 0; ci < case_count; ++ci) {
    auto c = static_cast<bench_case>(ci);
    if (!cfg.cases.empty() && !cfg.cases.contains(case_keys[c]))
      continue;
    std::fprintf(stderr, "pipe_bench: measuring %s...\n", case_names[c]);
    std::vector<contender> contenders;
    std::vector<peer*> measured;
    for (auto& p : peers) {
      try {
        workload w = workloads.at(p.key)(c, cfg);
        if (!w)
          continue;
        std::uint64_t warm = warm_up_units(c, cfg);
        std::uint64_t timed = c == round_trip ? cfg.roundtrips : cfg.bytes;
        contenders.push_back(
            {p.label, [w, warm] { return w(warm); }, [w, timed] { return w(timed); }});
        measured.push_back(&p);
      } catch (const std::exception& e) {
        std::printf("FAILED %s, %s: set-up: %s\n", p.label, case_names[c], e.what());
        ++failures;
      }
    }
    measure_round_robin(contenders, cfg.reps);
    for (std::size_t i = 0; i < contenders.size(); ++i) {
      const contender& x = contenders[i];
      if (!x.failure.empty()) {
        std::printf("FAILED %s, %s: %s\n", x.name.c_str(), case_names[c], x.failure.c_str());
        ++failures;
        continue;
      }
      measured[i]->best[c] = x.result.best();
      if (cfg.verbose) {
        std::string runs;
        for (double r : x.result.runs)
          runs += format(" %.3f", shown(c, r));
        std::printf("%-18s %-26s runs%s; median %.3f %s\n", case_names[c], x.name.c_str(),
                    runs.c_str(), shown(c, x.result.median()), c == round_trip ? "M/s" : "GiB/s");
      }
    }
  }
  if (cfg.verbose || failures)
    std::printf("\n");

  constexpr int label_width = 26, value_width = 8, ratio_width = 13;
  constexpr std::size_t group_width = value_width + ratio_width;
  table t(
      {label_width, value_width, ratio_width, value_width, ratio_width, value_width, ratio_width});
  std::string groups = std::string(label_width, ' ') + center(case_names[bulk_4k], group_width) +
                       center(case_names[bulk_64k], group_width) +
                       center(case_names[round_trip], group_width);
  std::puts(groups.erase(groups.find_last_not_of(' ') + 1).c_str());
  t.row({"peer", "GiB/s", "sluice/peer", "GiB/s", "sluice/peer", "M/s", "sluice/peer"});
  for (const auto& p : peers) {
    std::vector<std::string> cells = {p.label};
    for (int c = 0; c < case_count; ++c) {
      double v = p.best[c];
      cells.push_back(v > 0 ? format(c == round_trip ? "%.3f" : "%.2f", shown(bench_case(c), v))
                            : "-");
      cells.push_back(ratio(peers[0].best[c], v));
    }
    t.row(cells);
  }

  auto sluice_over = [&](const char* key, bench_case c) {
    for (const auto& p : peers)
      if (std::string(p.key) == key && p.best[c] > 0 && peers[0].best[c] > 0)
        return peers[0].best[c] / p.best[c];
    return 0.0;
  };
  std::printf("\ntargets (informational; the exit code does not depend on them):\n");
  print_target("64 KiB writes: sluice >= 2x beast::test::stream", sluice_over("beast", bulk_64k),
               2.0);
  print_target("64 KiB writes: sluice >= 0.5x memcpy", sluice_over("memcpy", bulk_64k), 0.5);
  print_target("4 KiB writes:  sluice >= 2x beast::test::stream", sluice_over("beast", bulk_4k),
               2.0);
  print_target("round trips:   sluice >= 1x libevent bufferevent_pair",
               sluice_over("libevent", round_trip), 1.0);

  if (failures) {
    std::printf("\n%d measurement%s FAILED (see above): exit code 1\n", failures,
                failures == 1 ? "" : "s");
    return 1;
  }
  return 0;
}
