// filtered_stream against the bare stream and against zlib alone, in one run, one thread:
//
//   pass-through  64 KiB writes through filtered_stream<pipe, pass_through, pass_through> on
//                 both ends, against a bare pipe pair (target: >= 0.8x). Twice: with the
//                 writer first, every chunk goes through the pipe's buffer (a copy in, a copy
//                 out); with the reader first, a parked read takes each chunk straight from
//                 the write (one copy). The filters add a copy on each side, whatever the
//                 filter (the output filter writes into the write buffer, the input filter
//                 reads from the read buffer): 4 copies against 2, or 3 against 1.
//   zlib          the same compressible data through deflate_filter on the writer and
//                 inflate_filter on the reader over a pipe, against deflate() then inflate()
//                 called directly on the same chunks at the same level (target: >= 0.9x).
//
// The pass-through figures are copy-bound, so next to them the same copies and check are
// timed without any I/O ("memory floor"): how near each path is to what those copies cost on
// this machine, and the best ratio those copy counts leave (the floors' ratio). The counts
// were checked with valgrind --tool=callgrind: per byte, byte_ring::push and ::pop (writer
// first) or pipe_state::give_to (reader first), plus one memcpy in each pass-through filter.
//
// Each figure is the best of 4 x --reps runs (20 by default) after an untimed warm-up, the
// contenders taking turns. Runs are short (256 MiB pass-through, 32 MiB zlib) and many, so
// that on a busy machine some of each contender's runs are undisturbed.
// Every run checks all the bytes that arrive against what was sent (the same memcmp for
// every contender, zlib alone included).
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

// Who issues the first operation. On a pipe this decides, for the whole run, whether each
// write finds the reader's buffer waiting (direct hand-off) or the pipe's own buffer.
enum class first { writer, reader };

// Checks what a reader received against what was sent, chunk by chunk.
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

// Moves `total` bytes of `data` (repeated) from `writer` to `reader` with chunk-sized writes
// and reads, one of each in flight; `finish` ends the writer's stream. Returns bytes read.
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

std::uint64_t bare_pipe(const page_buffer& data, std::uint64_t total, first who) {
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

// The memory traffic of a transfer without the I/O: each chunk copied `copies` times, through
// chunk-sized page-aligned buffers, into the reader's buffer, then checked as a reader checks
// it. A path that makes those copies, and does anything else besides, is slower.
std::uint64_t copy_floor(const page_buffer& data, std::uint64_t total, int copies) {
  std::vector<page_buffer> hops;
  for (int k = 1; k < copies; ++k)
    hops.emplace_back(chunk);
  page_buffer in(chunk);
  receipt got{data};
  for (std::uint64_t done = 0; done < total; done += chunk) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, total - done));
    const std::byte* from = data.data() + done % data.size();
    for (auto& hop : hops) {
      std::memcpy(hop.data(), from, n);
      keep(hop.data()); // each copy happens, none is folded into the next
      from = hop.data();
    }
    std::memcpy(in.data(), from, n);
    keep(in.data());
    got.add(in.data(), n);
  }
  got.verify(total);
  return total;
}

// zlib by hand: deflate the chunks into a buffer, then inflate them back, same level.
std::uint64_t zlib_alone(const page_buffer& data, std::uint64_t total, int level) {
  z_stream d{}, i{};
  deflateInit(&d, level);
  inflateInit(&i);
  page_buffer compressed(chunk + chunk / 2 + 1024), out(chunk);
  receipt got{data};
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
      // Until the input is used up and inflate stops filling `out`: a full `out` may leave
      // output pending inside inflate.
      for (bool more = i.avail_in > 0; more; more = i.avail_in > 0 || i.avail_out == 0) {
        i.next_out = reinterpret_cast<Bytef*>(out.data());
        i.avail_out = static_cast<uInt>(out.size());
        int rc = inflate(&i, Z_NO_FLUSH);
        check(rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR, "inflate");
        got.add(out.data(), out.size() - i.avail_out);
      }
    } while (d.avail_out == 0);
    done += n;
  }
  deflateEnd(&d);
  inflateEnd(&i);
  got.verify(total);
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

// One pass-through case: filtered_stream and the bare pipe, each next to the memory floor of
// the copies it makes, all four taking turns.
void pass_through(const page_buffer& data, std::uint64_t bytes, first who, int reps) {
  int bare_copies = who == first::writer ? 2 : 1, filtered_copies = bare_copies + 2;
  auto floor_of = [&](int copies) {
    return contender{format("memory floor: %d %s + check", copies, copies > 1 ? "copies" : "copy"),
                     [&, copies] { return copy_floor(data, bytes / 8, copies); },
                     [&, copies] { return copy_floor(data, bytes, copies); }};
  };
  std::vector<contender> contenders{
      {"filtered_stream<pipe, pass-through>",
       [&] {
         return filtered_pipe(data, bytes / 8, who, sluice::pass_through_filter{},
                              sluice::pass_through_filter{});
       },
       [&] {
         return filtered_pipe(data, bytes, who, sluice::pass_through_filter{},
                              sluice::pass_through_filter{});
       }},
      {"bare pipe", [&] { return bare_pipe(data, bytes / 8, who); },
       [&] { return bare_pipe(data, bytes, who); }},
      floor_of(filtered_copies),
      floor_of(bare_copies)};
  measure_round_robin(contenders, reps);

  std::printf("\npass-through filter on both ends of a pipe, against the bare pipe: %s\n",
              who == first::writer ? "writer first, each chunk through the pipe's buffer"
                                   : "reader first, each chunk handed straight to the parked read");
  table t({38, 10, 16, 14});
  t.row({"", "MiB/s", "vs bare pipe", "of its floor"});
  auto best = [&](std::size_t k) {
    return contenders[k].failure.empty() ? contenders[k].result.best() : 0.0;
  };
  for (std::size_t k = 0; k < contenders.size(); ++k) {
    if (!contenders[k].failure.empty()) {
      t.row({contenders[k].name, "failed", contenders[k].failure});
      continue;
    }
    double r = best(k);
    t.row({contenders[k].name, format("%.0f", r / mib), ratio(r, best(1)),
           k < 2 ? ratio(r, best(k + 2)) : ""});
  }
  print_target("filtered_stream<pipe, pass-through> / bare pipe",
               best(1) > 0 ? best(0) / best(1) : 0, 0.8);
  std::printf("  %-52s %8s  (%d copies against %d, at memory speed)\n",
              "best ratio these copies allow (the floors' ratio)", ratio(best(2), best(3)).c_str(),
              filtered_copies, bare_copies);
}

} // namespace

int main(int argc, char** argv) {
  std::uint64_t pass_bytes = 256ull << 20, zlib_bytes = 32ull << 20;
  int reps = 5, level = 1;
  bool pass = true, zlib = true;
  for (int k = 1; k < argc; ++k) {
    std::string_view arg = argv[k];
    if (arg == "--quick") {
      pass_bytes = 16ull << 20;
      zlib_bytes = 2ull << 20;
      reps = 1;
    } else if (arg == "--level" && k + 1 < argc) {
      level = std::atoi(argv[++k]);
    } else if (arg == "--reps" && k + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++k]));
    } else if (arg == "--only" && k + 1 < argc &&
               (argv[k + 1] == std::string_view("pass") ||
                argv[k + 1] == std::string_view("zlib"))) {
      pass = argv[++k] == std::string_view("pass");
      zlib = !pass;
    } else {
      std::fprintf(stderr,
                   "usage: filter_bench [--quick] [--reps N] [--level 0-9] [--only pass|zlib]\n");
      return 2;
    }
  }
  auto data = make_data(8 << 20);
  reps *= 4;
  std::printf("filtered_stream, 64 KiB writes, one thread; best of %d runs of %s (pass-through), "
              "%s (zlib); higher is better\n",
              reps, format_size(pass_bytes).c_str(), format_size(zlib_bytes).c_str());

  if (pass) {
    pass_through(data, pass_bytes, first::writer, reps);
    pass_through(data, pass_bytes, first::reader, reps);
  }

  if (zlib)
    compare(
        format("zlib level %d: deflate on the writer, inflate on the reader, over a pipe", level)
            .c_str(),
        {{"filtered_stream<pipe, zlib>",
          [&] {
            return filtered_pipe(data, zlib_bytes / 8, first::writer,
                                 sluice::zlib::deflate_filter(level),
                                 sluice::zlib::inflate_filter());
          },
          [&] {
            return filtered_pipe(data, zlib_bytes, first::writer,
                                 sluice::zlib::deflate_filter(level),
                                 sluice::zlib::inflate_filter());
          }},
         {"zlib deflate()+inflate() alone", [&] { return zlib_alone(data, zlib_bytes / 8, level); },
          [&] { return zlib_alone(data, zlib_bytes, level); }}},
        reps, 0.9);
  return 0;
}
