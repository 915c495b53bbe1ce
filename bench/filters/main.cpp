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
// this machine, and the best ratio those copy counts leave (the floors' ratio).
//
// Each figure is the best of 4 x --reps runs (20 by default) after an untimed warm-up, the
// contenders taking turns. Runs are short (256 MiB pass-through, 32 MiB zlib) and many, so
// that on a busy machine some of each contender's runs are undisturbed.
// Every run checks all the bytes that arrive against what was sent (the same memcmp for
// every contender, zlib alone included).
//
// This file is the command line; the cases are in pass_through_case.cpp and zlib_case.cpp.
#include "filters/cases.hpp"
#include "filters/transfer.hpp"
#include "support/page_buffer.hpp"
#include "support/report.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

int main(int argc, char** argv) {
  using namespace sluice::bench;
  using namespace sluice::bench::filter_bench;
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
    zlib_over_pipe(data, zlib_bytes, level, reps);
  return 0;
}
