#include "filters/cases.hpp"
#include "filters/transfer.hpp"
#include "support/measure.hpp"
#include "support/page_buffer.hpp"
#include "support/report.hpp"

#include <sluice/filters/zlib.hpp>

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace sluice::bench::filter_bench {
namespace {

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

} // namespace

void zlib_over_pipe(const page_buffer& data, std::uint64_t bytes, int level, int reps) {
  compare(format("zlib level %d: deflate on the writer, inflate on the reader, over a pipe", level)
              .c_str(),
          {{"filtered_stream<pipe, zlib>",
            [&] {
              return filtered_pipe(data, bytes / 8, first::writer,
                                   sluice::zlib::deflate_filter(level),
                                   sluice::zlib::inflate_filter());
            },
            [&] {
              return filtered_pipe(data, bytes, first::writer, sluice::zlib::deflate_filter(level),
                                   sluice::zlib::inflate_filter());
            }},
           {"zlib deflate()+inflate() alone", [&] { return zlib_alone(data, bytes / 8, level); },
            [&] { return zlib_alone(data, bytes, level); }}},
          reps, 0.9);
}

} // namespace sluice::bench::filter_bench
