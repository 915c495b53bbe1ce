#include "filters/cases.hpp"
#include "filters/transfer.hpp"
#include "support/measure.hpp"
#include "support/page_buffer.hpp"
#include "support/report.hpp"

#include <sluice/filtered_stream.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace sluice::bench::filter_bench {
namespace {

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

} // namespace

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

} // namespace sluice::bench::filter_bench
