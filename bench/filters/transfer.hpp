// What the filter benchmark moves, and how: compressible data in 64 KiB writes through a
// pipe, bare or with a filtered_stream at each end, every byte checked on arrival.
#ifndef SLUICE_BENCH_FILTERS_TRANSFER_HPP
#define SLUICE_BENCH_FILTERS_TRANSFER_HPP

#include "support/measure.hpp"
#include "support/page_buffer.hpp"

#include <sluice/filtered_stream.hpp>
#include <sluice/pipe.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <utility>

namespace sluice::bench::filter_bench {

namespace net = boost::asio;

constexpr std::size_t chunk = 64 * 1024;
constexpr double mib = 1024.0 * 1024.0;

/// Runs of letters with some noise: compressible, like text-ish traffic.
inline page_buffer make_data(std::size_t n) {
  page_buffer v(n);
  std::mt19937_64 rng(2026);
  for (std::size_t i = 0; i < n;) {
    std::size_t run = rng() % 64 + 1;
    auto c = static_cast<std::byte>('a' + rng() % 26);
    for (; run > 0 && i < n; --run)
      v.data()[i++] = (rng() % 8 == 0) ? static_cast<std::byte>(rng()) : c;
  }
  return v;
}

/// Who issues the first operation. On a pipe this decides, for the whole run, whether each
/// write finds the reader's buffer waiting (direct hand-off) or the pipe's own buffer.
enum class first { writer, reader };

/// Checks what a reader received against what was sent, chunk by chunk.
struct receipt {
  const page_buffer& data;
  std::uint64_t received = 0;
  bool mismatch = false;

  void add(const std::byte* p, std::size_t n) {
    while (n > 0) { // in two pieces where the bytes wrap around the end of `data`
      std::size_t at = static_cast<std::size_t>(received % data.size());
      std::size_t k = std::min(n, data.size() - at);
      if (std::memcmp(p, data.data() + at, k))
        mismatch = true;
      p += k;
      n -= k;
      received += k;
    }
  }
  void verify(std::uint64_t total) const {
    check(!mismatch, "bytes differ");
    check(received == total,
          "received " + std::to_string(received) + " of " + std::to_string(total));
  }
};

/// Moves `total` bytes of `data` (repeated) from `writer` to `reader` with chunk-sized writes
/// and reads, one of each in flight; `finish` ends the writer's stream. Returns bytes read.
template <class Writer, class Reader, class Finish>
std::uint64_t transfer(net::io_context& ctx, Writer& writer, Reader& reader,
                       const page_buffer& data, std::uint64_t total, first who, Finish finish) {
  page_buffer in(chunk);
  std::uint64_t sent = 0;
  receipt got{data};
  std::function<void()> write_next = [&] {
    if (sent == total)
      return finish();
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, total - sent));
    net::async_write(writer, net::buffer(data.data() + sent % data.size(), n),
                     [&, n](boost::system::error_code ec, std::size_t) {
                       if (ec)
                         check(false, "write: " + ec.message());
                       sent += n;
                       write_next();
                     });
  };
  std::function<void()> read_next = [&] {
    reader.async_read_some(net::buffer(in.data(), in.size()),
                           [&](boost::system::error_code ec, std::size_t n) {
                             got.add(in.data(), n);
                             if (!ec)
                               read_next();
                           });
  };
  if (who == first::writer) {
    write_next();
    read_next();
  } else {
    read_next();
    write_next();
  }
  ctx.restart();
  ctx.run();
  got.verify(total);
  return got.received;
}

inline std::uint64_t bare_pipe(const page_buffer& data, std::uint64_t total, first who) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  return transfer(ctx, a, b, data, total, who,
                  [&] { a.shutdown(net::socket_base::shutdown_send); });
}

template <class In, class Out>
std::uint64_t filtered_pipe(const page_buffer& data, std::uint64_t total, first who, Out out,
                            In in) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  sluice::filtered_stream<sluice::pipe, sluice::pass_through_filter, Out> writer(std::move(a), {},
                                                                                 std::move(out));
  sluice::filtered_stream<sluice::pipe, In, sluice::pass_through_filter> reader(std::move(b),
                                                                                std::move(in));
  if (const char* size = std::getenv("FILTER_BUFFER")) {
    writer.set_buffer_size(std::stoul(size));
    reader.set_buffer_size(std::stoul(size));
  }
  return transfer(ctx, writer, reader, data, total, who, [&] {
    writer.async_flush(sluice::flush_mode::finished, [&](boost::system::error_code ec) {
      if (ec)
        check(false, "flush: " + ec.message());
      writer.next_layer().shutdown(net::socket_base::shutdown_send);
    });
  });
}

} // namespace sluice::bench::filter_bench

#endif
