// Stress test of sluice::pipe across threads: each end on its own io_context, run by its own
// thread; both directions at once; random write and read sizes; every byte checked against
// a generator of the stream position. Each end half-closes after its last byte, so each
// reader also checks that eof comes exactly at the end.
//
// Environment:
//   SLUICE_STRESS_BYTES    bytes each way (default: 64 MiB, 8 MiB under ThreadSanitizer)
//   SLUICE_STRESS_SEED     the random seed (default: from std::random_device; printed)
//   SLUICE_STRESS_TIMEOUT  seconds before a run fails as hung (default 120)
#include <boost/test/unit_test.hpp>

#include <sluice/pipe.hpp>

#include <boost/asio.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#if defined(__SANITIZE_THREAD__)
#define SLUICE_STRESS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SLUICE_STRESS_TSAN 1
#endif
#endif

namespace net = boost::asio;
using boost::system::error_code;

namespace {

// ThreadSanitizer instruments every byte the generator writes and the checker reads, and
// every lock and hand-off between the threads; on two shared cores that makes 64 MiB each
// way take minutes. 8 MiB each way still moves thousands of operations across the threads
// (the races TSan looks for happen per operation, not per byte) and stays well under a
// minute.
#ifdef SLUICE_STRESS_TSAN
constexpr std::uint64_t default_bytes = std::uint64_t{8} << 20;
#else
constexpr std::uint64_t default_bytes = std::uint64_t{64} << 20;
#endif
constexpr std::size_t default_max_chunk = 100000;

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::strtoull(value, nullptr, 0) : fallback;
}

std::uint64_t stream_bytes() {
  return env_or("SLUICE_STRESS_BYTES", default_bytes);
}

std::chrono::seconds timeout() {
  return std::chrono::seconds(env_or("SLUICE_STRESS_TIMEOUT", 120));
}

std::uint64_t seed() {
  static const std::uint64_t s = env_or("SLUICE_STRESS_SEED", std::random_device{}());
  return s;
}

std::uint64_t mix(std::uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// The bytes of stream `salt`: byte p is byte (p % 8) of mix(p / 8 + salt * K).
class stream_bytes_generator {
public:
  explicit stream_bytes_generator(std::uint64_t salt) : salt_(salt * 0x9E3779B97F4A7C15ULL) {}

  void fill(std::uint8_t* out, std::uint64_t pos, std::size_t n) const {
    for (std::size_t i = 0; i < n; ++i)
      out[i] = at(pos + i);
  }

  // The first index in [0, n) where `in` differs from the stream at `pos`, or n.
  std::size_t mismatch(const std::uint8_t* in, std::uint64_t pos, std::size_t n) const {
    for (std::size_t i = 0; i < n; ++i)
      if (in[i] != at(pos + i))
        return i;
    return n;
  }

private:
  std::uint8_t at(std::uint64_t p) const {
    if ((p >> 3) != word_index_) {
      word_index_ = p >> 3;
      word_ = mix(word_index_ + salt_);
    }
    return static_cast<std::uint8_t>(word_ >> ((p & 7) * 8));
  }

  std::uint64_t salt_;
  mutable std::uint64_t word_index_ = ~std::uint64_t{0};
  mutable std::uint64_t word_ = 0;
};

// One end of the pipe: writes its outgoing stream and reads and checks the incoming one,
// entirely on its own io_context's thread. Results are read by the main thread after join.
class endpoint {
public:
  endpoint(sluice::basic_pipe<net::io_context::executor_type>& pipe, std::uint64_t total,
           std::size_t max_chunk, std::uint64_t out_salt, std::uint64_t in_salt,
           std::uint64_t rng_seed)
      : pipe_(pipe), total_(total), max_chunk_(max_chunk), out_(out_salt), in_(in_salt),
        write_rng_(rng_seed), read_rng_(rng_seed ^ 0x5555555555555555ULL), write_buffer_(max_chunk),
        read_buffer_(max_chunk) {}

  void start() {
    next_chunk();
    read_next();
  }

  bool write_done = false;
  bool read_done = false;
  std::string failure; // empty while all is well
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t writes = 0;
  std::uint64_t reads = 0;

private:
  std::size_t random_size(std::mt19937_64& rng) {
    return std::uniform_int_distribution<std::size_t>(1, max_chunk_)(rng);
  }

  // A new write of a random size; then write_some its remains until it is all taken.
  void next_chunk() {
    if (sent == total_) {
      pipe_.shutdown(net::socket_base::shutdown_send);
      write_done = true;
      return;
    }
    chunk_ =
        static_cast<std::size_t>(std::min<std::uint64_t>(random_size(write_rng_), total_ - sent));
    chunk_done_ = 0;
    out_.fill(write_buffer_.data(), sent, chunk_);
    write_rest();
  }

  void write_rest() {
    pipe_.async_write_some(net::buffer(write_buffer_.data() + chunk_done_, chunk_ - chunk_done_),
                           [this](error_code ec, std::size_t n) {
                             ++writes;
                             if (ec)
                               return fail("write failed: " + ec.message());
                             if (n == 0 || n > chunk_ - chunk_done_)
                               return fail("write took " + std::to_string(n) + " of " +
                                           std::to_string(chunk_ - chunk_done_));
                             sent += n;
                             chunk_done_ += n;
                             if (chunk_done_ < chunk_)
                               write_rest();
                             else
                               next_chunk();
                           });
  }

  void read_next() {
    std::size_t want = random_size(read_rng_);
    pipe_.async_read_some(
        net::buffer(read_buffer_.data(), want), [this, want](error_code ec, std::size_t n) {
          ++reads;
          if (ec == net::error::eof) {
            if (received != total_)
              return fail("eof after " + std::to_string(received) + " bytes");
            read_done = true;
            return;
          }
          if (ec)
            return fail("read failed: " + ec.message());
          if (n == 0 || n > want)
            return fail("read returned " + std::to_string(n) + " for " + std::to_string(want));
          if (received + n > total_)
            return fail("read past the end: " + std::to_string(received + n));
          std::size_t bad = in_.mismatch(read_buffer_.data(), received, n);
          if (bad != n)
            return fail("wrong byte at stream position " + std::to_string(received + bad));
          received += n;
          read_next();
        });
  }

  void fail(std::string what) {
    if (failure.empty())
      failure = std::move(what);
    pipe_.close(); // unblocks the other side rather than leaving it to the timeout
  }

  sluice::basic_pipe<net::io_context::executor_type>& pipe_;
  std::uint64_t total_;
  std::size_t max_chunk_;
  stream_bytes_generator out_;
  stream_bytes_generator in_;
  std::mt19937_64 write_rng_;
  std::mt19937_64 read_rng_;
  std::vector<std::uint8_t> write_buffer_;
  std::vector<std::uint8_t> read_buffer_;
  std::size_t chunk_ = 0;
  std::size_t chunk_done_ = 0;
};

// Sizes of writes and reads are uniform in [1, max_chunk]; `total` bytes go each way.
void run_stress(std::size_t capacity, std::size_t max_chunk = default_max_chunk,
                std::uint64_t total = stream_bytes()) {
  const std::uint64_t s = seed() + capacity + max_chunk;
  BOOST_TEST_MESSAGE("capacity " << capacity << ", sizes 1.." << max_chunk << ": " << total
                                 << " bytes each way, SLUICE_STRESS_SEED=" << seed());
  BOOST_TEST_CONTEXT("capacity " << capacity << ", sizes 1.." << max_chunk
                                 << ", SLUICE_STRESS_SEED=" << seed()) {
    net::io_context ctx_a, ctx_b;
    auto pipes = sluice::make_pipe(ctx_a.get_executor(), ctx_b.get_executor(),
                                   sluice::pipe_options{.capacity = capacity});
    endpoint a(pipes.first, total, max_chunk, 1, 2, mix(s));
    endpoint b(pipes.second, total, max_chunk, 2, 1, mix(s + 1));
    // Each end's operations are started on its own thread, like everything else on it.
    net::post(ctx_a, [&] { a.start(); });
    net::post(ctx_b, [&] { b.start(); });

    const auto started = std::chrono::steady_clock::now();
    std::thread ta([&] { ctx_a.run_for(timeout()); });
    std::thread tb([&] { ctx_b.run_for(timeout()); });
    ta.join();
    tb.join();
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;

    BOOST_TEST_MESSAGE("capacity "
                       << capacity << ", sizes 1.." << max_chunk << ": " << took.count() << " s, "
                       << (2.0 * static_cast<double>(total) / (1 << 20)) / took.count()
                       << " MiB/s total; writes " << a.writes << " + " << b.writes << ", reads "
                       << a.reads << " + " << b.reads);
    BOOST_TEST(a.failure == "");
    BOOST_TEST(b.failure == "");
    BOOST_TEST(ctx_a.stopped(), "a's context ran out of work (did not time out)");
    BOOST_TEST(ctx_b.stopped(), "b's context ran out of work (did not time out)");
    BOOST_TEST(a.write_done);
    BOOST_TEST(b.write_done);
    BOOST_TEST(a.read_done);
    BOOST_TEST(b.read_done);
    BOOST_TEST(a.sent == total);
    BOOST_TEST(b.sent == total);
    BOOST_TEST(a.received == total);
    BOOST_TEST(b.received == total);
  }
}

} // namespace

BOOST_AUTO_TEST_CASE(both_ways_default_capacity) {
  run_stress(sluice::pipe_options{}.capacity);
}

BOOST_AUTO_TEST_CASE(both_ways_capacity_1000) {
  run_stress(1000);
}

BOOST_AUTO_TEST_CASE(both_ways_capacity_0) {
  run_stress(0);
}

// Small operations, a quarter of the bytes: many more hand-offs between the threads, where
// the races would be.
BOOST_AUTO_TEST_CASE(both_ways_small_operations) {
  run_stress(1000, 2000, stream_bytes() / 4);
  run_stress(0, 2000, stream_bytes() / 4);
}
