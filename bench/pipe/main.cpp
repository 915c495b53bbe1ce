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
#include "pipe/peers.hpp"
#include "support/command_line.hpp"
#include "support/measure.hpp"
#include "support/page_buffer.hpp"
#include "support/report.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::bench::pipe_bench {
namespace {

constexpr double gib = 1024.0 * 1024.0 * 1024.0;

struct peer {
  const char* key;                       // for --peers
  const char* label;                     // in the table
  std::array<double, case_count> best{}; // 0: not measured (or failed)
};

/// The workload of a peer for a case; an empty one when the peer has no such case.
using workload_maker = workload (*)(bench_case, const config&);

const std::map<std::string, workload_maker> workloads = {
    {"sluice", sluice_workload},         {"beast", beast_workload},
    {"socketpair", socketpair_workload}, {"libevent", libevent_workload},
    {"memcpy", memcpy_workload},
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
} // namespace sluice::bench::pipe_bench

int main(int argc, char** argv) {
  using namespace sluice::bench;
  using namespace sluice::bench::pipe_bench;
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
  print_target("round trips:   sluice >= 1.5x libevent bufferevent_pair",
               sluice_over("libevent", round_trip), 1.5);

  if (failures) {
    std::printf("\n%d measurement%s FAILED (see above): exit code 1\n", failures,
                failures == 1 ? "" : "s");
    return 1;
  }
  return 0;
}
