// filtered_stream against the bare stream and against zlib alone, in one run, one thread:
//
//   pass-through  64 KiB writes through filtered_stream<pipe, pass_through, pass_through> on
//                 both ends, against a bare pipe pair (target: >= 0.8x).
//   zlib          the same compressible data through deflate_filter on the writer and
//                 inflate_filter on the reader over a pipe, against deflate() then inflate()
//                 called directly on the same chunks at the same level (target: >= 0.9x).
//
// Each figure is the best of --reps runs after an untimed warm-up; contenders take turns.
// Every run checks the bytes that arrive.
#include "bench_util.hpp"

#include <sluice/filtered_stream.hpp>
#include <sluice/filters/zlib.hpp>
#include <sluice/pipe.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>

#include <zlib.h>

#include <cstring>
#include <random>

namespace net = boost::asio;
using namespace sluice::bench;

namespace {

constexpr std::size_t chunk = 64 * 1024;
constexpr double mib = 1024.0 * 1024.0;

// Runs of letters with some noise: compresses about 4:1 at level 1, like text-ish traffic.
page_buffer make_data(std::size_t n) {
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

// Moves `total` bytes of `data` (repeated) from `writer` to `reader` with chunk-sized writes
// and reads, one of each in flight; `finish` ends the writer's stream. Returns bytes read.
template <class Writer, class Reader, class Finish>
std::uint64_t transfer(net::io_context& ctx, Writer& writer, Reader& reader,
                       const page_buffer& data, std::uint64_t total, Finish finish) {
  page_buffer in(chunk);
  std::uint64_t sent = 0, received = 0;
  bool mismatch = false;
  std::function<void()> write_next = [&] {
    if (sent == total)
      return finish();
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, total - sent));
    net::async_write(writer, net::buffer(data.data() + sent % data.size(), n),
                     [&, n](boost::system::error_code ec, std::size_t) {
                       check(!ec, "write: " + ec.message());
                       sent += n;
                       write_next();
                     });
  };
  std::function<void()> read_next = [&] {
    reader.async_read_some(
        net::buffer(in.data(), in.size()), [&](boost::system::error_code ec, std::size_t n) {
          if (n && std::memcmp(in.data(), data.data() + received % data.size(),
                               std::min<std::size_t>(n, data.size() - received % data.size())))
            mismatch = true;
          received += n;
          if (!ec)
            read_next();
        });
  };
  write_next();
  read_next();
  ctx.restart();
  ctx.run();
  check(!mismatch, "bytes differ");
  check(received == total, "received " + std::to_string(received) + " of " + std::to_string(total));
  return received;
}

std::uint64_t bare_pipe(const page_buffer& data, std::uint64_t total) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  return transfer(ctx, a, b, data, total, [&] { a.shutdown(net::socket_base::shutdown_send); });
}

template <class In, class Out>
std::uint64_t filtered_pipe(const page_buffer& data, std::uint64_t total, Out out, In in) {
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
  return transfer(ctx, writer, reader, data, total, [&] {
    writer.async_flush(sluice::flush_mode::finished, [&](boost::system::error_code ec) {
      check(!ec, "flush: " + ec.message());
      writer.next_layer().shutdown(net::socket_base::shutdown_send);
    });
  });
}

// zlib by hand: deflate the chunks into a buffer, then inflate them back, same level.
std::uint64_t zlib_alone(const page_buffer& data, std::uint64_t total, int level) {
  z_stream d{}, i{};
  deflateInit(&d, level);
  inflateInit(&i);
  page_buffer compressed(chunk + chunk / 2 + 1024), out(chunk);
  std::uint64_t done = 0;
  while (done < total) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, total - done));
    d.next_in = reinterpret_cast<Bytef*>(data.data() + done % data.size());
    d.avail_in = static_cast<uInt>(n);
    bool last = done + n == total;
    do {
      d.next_out = reinterpret_cast<Bytef*>(compressed.data());
      d.avail_out = static_cast<uInt>(compressed.size());
      deflate(&d, last ? Z_FINISH : Z_NO_FLUSH);
      i.next_in = reinterpret_cast<Bytef*>(compressed.data());
      i.avail_in = static_cast<uInt>(compressed.size() - d.avail_out);
      while (i.avail_in > 0) {
        i.next_out = reinterpret_cast<Bytef*>(out.data());
        i.avail_out = static_cast<uInt>(out.size());
        int rc = inflate(&i, Z_NO_FLUSH);
        check(rc == Z_OK || rc == Z_STREAM_END, "inflate");
        keep(out.data());
      }
    } while (d.avail_out == 0);
    done += n;
  }
  deflateEnd(&d);
  inflateEnd(&i);
  return total;
}

void compare(const char* title, std::vector<contender> contenders, int reps, double target) {
  measure_round_robin(contenders, reps);
  std::printf("\n%s\n", title);
  table t({34, 14, 16});
  t.row({"", "MiB/s", "vs baseline"});
  double base = contenders.back().result.best();
  for (auto& c : contenders) {
    if (!c.failure.empty()) {
      t.row({c.name, "failed", c.failure});
      continue;
    }
    double r = c.result.best();
    t.row({c.name, format("%.0f", r / mib), ratio(r, base)});
  }
  print_target(std::string(contenders.front().name) + " / " + contenders.back().name,
               base > 0 ? contenders.front().result.best() / base : 0, target);
}

} // namespace

int main(int argc, char** argv) {
  std::uint64_t pass_bytes = 1ull << 30, zlib_bytes = 128ull << 20;
  int reps = 5, level = 1;
  for (int k = 1; k < argc; ++k) {
    std::string_view arg = argv[k];
    if (arg == "--quick") {
      pass_bytes = 64ull << 20;
      zlib_bytes = 8ull << 20;
      reps = 1;
    } else if (arg == "--level" && k + 1 < argc) {
      level = std::atoi(argv[++k]);
    } else {
      std::fprintf(stderr, "usage: filter_bench [--quick] [--level 0-9]\n");
      return 2;
    }
  }
  auto data = make_data(8 << 20);
  std::printf("filtered_stream, 64 KiB writes, one thread; best of %d (higher is better)\n", reps);

  compare("pass-through filter on both ends of a pipe, against the bare pipe",
          {{"filtered_stream<pipe, pass-through>",
            [&] {
              return filtered_pipe(data, pass_bytes / 8, sluice::pass_through_filter{},
                                   sluice::pass_through_filter{});
            },
            [&] {
              return filtered_pipe(data, pass_bytes, sluice::pass_through_filter{},
                                   sluice::pass_through_filter{});
            }},
           {"bare pipe", [&] { return bare_pipe(data, pass_bytes / 8); },
            [&] { return bare_pipe(data, pass_bytes); }}},
          reps, 0.8);

  compare(
      format("zlib level %d: deflate on the writer, inflate on the reader, over a pipe", level)
          .c_str(),
      {{"filtered_stream<pipe, zlib>",
        [&] {
          return filtered_pipe(data, zlib_bytes / 8, sluice::zlib::deflate_filter(level),
                               sluice::zlib::inflate_filter());
        },
        [&] {
          return filtered_pipe(data, zlib_bytes, sluice::zlib::deflate_filter(level),
                               sluice::zlib::inflate_filter());
        }},
       {"zlib deflate()+inflate() alone", [&] { return zlib_alone(data, zlib_bytes / 8, level); },
        [&] { return zlib_alone(data, zlib_bytes, level); }}},
      reps, 0.9);
  return 0;
}
