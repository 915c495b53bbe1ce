// The filter benchmark's cases, each measured and printed by its own file.
#ifndef SLUICE_BENCH_FILTERS_CASES_HPP
#define SLUICE_BENCH_FILTERS_CASES_HPP

#include "filters/transfer.hpp"
#include "support/page_buffer.hpp"

#include <cstdint>

namespace sluice::bench::filter_bench {

/// 64 KiB writes through filtered_stream<pipe, pass_through, pass_through> on both ends,
/// against a bare pipe pair, each next to the memory floor of the copies it makes
/// (pass_through_case.cpp).
void pass_through(const page_buffer& data, std::uint64_t bytes, first who, int reps);

/// deflate_filter on the writer and inflate_filter on the reader over a pipe, against
/// deflate() then inflate() called directly on the same chunks at the same level
/// (zlib_case.cpp).
void zlib_over_pipe(const page_buffer& data, std::uint64_t bytes, int level, int reps);

} // namespace sluice::bench::filter_bench

#endif
